"""The transcript beside the CSV timeline: one row per recognised utterance, keyed by utterance and time.

Every utterance with words gets a row (``utterance, start_s, end_s, time, text, late``), so words are never
lost: ``late`` is 1 when they arrived after the utterance's emotion rows had been written without them
(an overloaded transcriber, ``text_wait_s`` exceeded). ``t.csv`` -> ``t.transcript.csv``; with ``--csv-dir``,
``transcript-YYYY-MM-DD.csv`` beside ``emotions-YYYY-MM-DD.csv``. Written whole, row by row (RowFile).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from monitor.sinks.csv_timeline import csv_line
from monitor.sinks.row_file import FileState, RowFile

COLUMNS = ["utterance", "start_s", "end_s", "time", "text", "late"]


def transcript_path_for_csv(csv_path: str | Path) -> Path:
    p = Path(csv_path)
    return p.with_name(f"{p.stem}.transcript.csv")


def daily_transcript_path(folder: str | Path) -> Callable[[float], Path]:
    return lambda wall: Path(folder) / f"transcript-{datetime.fromtimestamp(wall).strftime('%Y-%m-%d')}.csv"


class TranscriptFile:
    """Appends transcript rows to ``path_for(wall_clock)`` (one file, or one per day)."""

    def __init__(self, path_for: Callable[[float], Path], fsync: bool = False) -> None:
        self.path_for = path_for
        self.fsync = fsync
        self._file: RowFile | None = None
        self._closed = FileState()
        self.late = 0  # utterances whose words came after their rows

    @property
    def path(self) -> Path:
        return self._file.path if self._file is not None else self.path_for(datetime.now().timestamp())

    def _open(self, wall: float) -> RowFile:
        path = self.path_for(wall)
        if self._file is not None and self._file.path == path:
            return self._file
        if self._file is not None:
            self._file.close()
            self._closed = self._closed + self._file.state()
        new = RowFile(path, fsync=self.fsync)
        if new.size() == 0:
            new.append(csv_line(COLUMNS), counted=False)
        self._file = new
        return new

    def add(self, utterance: int, start_s: float, end_s: float, wall: float, text: str, late: bool) -> None:
        when = datetime.fromtimestamp(wall, tz=UTC).astimezone().isoformat(timespec="milliseconds")
        row = [str(utterance), f"{start_s:.3f}", f"{end_s:.3f}", when, text, "1" if late else "0"]
        self.late += int(late)
        try:
            self._open(wall).append(csv_line(row))
        except OSError as exc:  # cannot even create the file: counted as a lost row
            self._closed = self._closed + FileState(lost=1, last_problem=exc.strerror or str(exc))

    def state(self) -> FileState:
        return self._closed + (self._file.state() if self._file is not None else FileState())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
