"""Scoring uploaded files with the batch scorer: at most ``max_parallel`` at once (a semaphore), the others wait.

Each slot owns one :class:`~monitor.batch.score.FileScorer` (a classifier, and a transcriber when asked), made
the first time the slot is used; a scorer is never shared by two threads. The rows are the batch CLI's own
(``file_row`` / ``window_rows`` as ``json_row`` shapes them), so ``POST /api/score`` returns exactly what
``voice-monitor score --format jsonl`` writes for the same file.
"""

from __future__ import annotations

import asyncio
import queue
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
    """``score`` is a coroutine: an upload waits for a free slot on the event loop (no thread is held while it
    waits), then is scored in a worker thread. The counters are only touched on the loop."""

    def __init__(self, options: ScoreOptions, labels: tuple[str, ...], max_parallel: int) -> None:
        self.options = options
        self.labels = labels
        self.max_parallel = max_parallel
        self._idle: queue.SimpleQueue[FileScorer | None] = queue.SimpleQueue()
        for _ in range(max_parallel):
            self._idle.put(None)  # a slot whose scorer is made at its first use
        self._slots: asyncio.Semaphore | None = None  # made on the server's loop
        self.scoring = 0  # files being scored now
        self.waiting = 0  # files waiting for a free slot

    async def score(self, path: str, name: str) -> Scored:
        """Wait for a slot, score ``path`` and report it as ``name`` (the uploaded file's name)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_parallel)
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.scoring += 1
        try:
            return await asyncio.to_thread(self._score_now, path, name)
        finally:
            self.scoring -= 1
            self._slots.release()

    def _score_now(self, path: str, name: str) -> Scored:
        scorer = self._idle.get_nowait()  # the semaphore leaves one idle for every holder
        try:
            if scorer is None:
                scorer = FileScorer(self.options)
            result = scorer.score(path)
        finally:
            self._idle.put(scorer)
        result.path = name
        result.error = result.error.replace(path, name)
        on = self.options.speakers.enabled  # the columns `score` writes with the same settings
        summary = json_row(file_row(result, self.labels), file_columns(self.labels, on))
        windows = [json_row(r, window_columns(self.labels, on)) for r in window_rows(result, self.labels)]
        return Scored(summary, windows, result.failed, result.error)
