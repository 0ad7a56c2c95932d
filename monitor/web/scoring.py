"""Scoring uploaded files with the batch scorer: at most ``max_parallel`` at once, the others wait.

Each slot owns one :class:`~monitor.batch.score.FileScorer` (a classifier, and a transcriber when asked), made
the first time the slot is used; a scorer is never shared by two threads. The rows are the batch CLI's own
(``file_row`` / ``window_rows`` as ``json_row`` shapes them), so ``POST /api/score`` returns exactly what
``voice-monitor score --format jsonl`` writes for the same file.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

from monitor.batch.outputs import file_columns, file_row, json_row, window_columns, window_rows
from monitor.batch.score import FileScorer, ScoreOptions


@dataclass
class Scored:
    """One upload's outcome: ``failed`` means it could not be read at all (a 4xx for the API)."""

    summary: dict[str, Any]
    windows: list[dict[str, Any]]
    failed: bool
    error: str


class UploadScoring:
    def __init__(self, options: ScoreOptions, labels: tuple[str, ...], max_parallel: int) -> None:
        self.options = options
        self.labels = labels
        self.max_parallel = max_parallel
        self._idle: queue.LifoQueue[FileScorer | None] = queue.LifoQueue()
        for _ in range(max_parallel):
            self._idle.put(None)  # a slot whose scorer is made at its first use
        self._lock = threading.Lock()
        self.scoring = 0  # files being scored now
        self.waiting = 0  # files waiting for a free slot

    def _count(self, attr: str, delta: int) -> None:
        with self._lock:
            setattr(self, attr, getattr(self, attr) + delta)

    def score(self, path: str, name: str) -> Scored:
        """Blocking: waits for a slot, scores ``path`` and reports it as ``name`` (the uploaded file's name)."""
        self._count("waiting", 1)
        scorer = self._idle.get()
        self._count("waiting", -1)
        self._count("scoring", 1)
        try:
            if scorer is None:
                scorer = FileScorer(self.options)
            result = scorer.score(path)
        finally:
            self._idle.put(scorer)
            self._count("scoring", -1)
        result.path = name
        result.error = result.error.replace(path, name)
        summary = json_row(file_row(result, self.labels), file_columns(self.labels))
        windows = [json_row(r, window_columns(self.labels)) for r in window_rows(result, self.labels)]
        return Scored(summary, windows, result.failed, result.error)
