"""CSV timeline: one row per window, flushed row by row, appending safely to an existing file.

Columns (documented in the README): index, utterance, speaker (with speaker turns on), start_s, end_s, time,
emotion, confidence, p_<label> for every label, arousal, valence, latency_ms, text.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from monitor.affect import older_columns, older_version_message
from monitor.errors import MonitorError
from monitor.events import Event


def timeline_columns(labels: Sequence[str], speakers: bool = False) -> list[str]:
    return (
        ["index", "utterance", *(["speaker"] if speakers else []), "start_s", "end_s", "time", "emotion", "confidence"]
        + [f"p_{lab}" for lab in labels]
        + ["arousal", "valence", "latency_ms", "text"]
    )


def event_row(event: Event, labels: Sequence[str], speakers: bool = False) -> list[str]:
    return (
        [
            str(event.index),
            str(event.utterance),
            *([event.speaker] if speakers else []),
            f"{event.start_s:.3f}",
            f"{event.end_s:.3f}",
            event.time_iso,
            event.emotion,
            f"{event.confidence:.4f}",
        ]
        + [f"{event.probabilities.get(lab, 0.0):.4f}" for lab in labels]
        + [f"{event.arousal:.4f}", f"{event.valence:.4f}", f"{event.latency_s * 1000:.1f}", event.text]
    )


def _read_header(path: Path) -> list[str] | None:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            first = f.readline()
    except UnicodeDecodeError:
        raise MonitorError(f"{path} exists and is not a UTF-8 CSV; choose another --csv path") from None
    if not first.strip():
        return None
    return next(csv.reader(io.StringIO(first)))


def open_timeline(path: str | Path, labels: Sequence[str], speakers: bool = False) -> tuple[TextIO, csv.writer]:
    """Open ``path`` for appending; write the header if new; refuse a file with other columns."""
    p = Path(path)
    columns = timeline_columns(labels, speakers)
    try:
        if p.is_dir():
            raise MonitorError(f"CSV path {p} is a folder; give a file name (or use --csv-dir for a folder)")
        if p.exists() and p.stat().st_size > 0:
            header = _read_header(p)
            if header is not None and older_columns(header, columns):
                raise MonitorError(older_version_message(p, "move it away or choose another --csv path"))
            if header != columns:
                hint = " (it was written with speaker turns the other way: --speakers on/off)" if (
                    header == timeline_columns(labels, not speakers)
                ) else ""
                raise MonitorError(
                    f"{p} exists with other columns{hint}; choose another --csv path or move the old file away"
                )
            needs_header = False
        else:
            needs_header = True
        if p.parent and not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        f = p.open("a", newline="", encoding="utf-8")
        # A previous run killed mid-line would leave a partial row; start on a fresh line.
        if not needs_header and p.stat().st_size > 0:
            with p.open("rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) not in (b"\n", b"\r"):
                    f.write("\n")
    except MonitorError:
        raise
    except OSError as exc:
        raise MonitorError(f"cannot write the CSV timeline {p}: {exc.strerror or exc}") from None
    writer = csv.writer(f)
    if needs_header:
        writer.writerow(columns)
        f.flush()
    return f, writer


class CsvTimeline:
    """Appends one row per event to a single file, flushing after each row."""

    def __init__(self, path: str | Path, labels: Sequence[str], fsync: bool = False, speakers: bool = False) -> None:
        self.path = Path(path)
        self.labels = list(labels)
        self.fsync = fsync
        self.speakers = speakers
        self._file, self._writer = open_timeline(self.path, self.labels, speakers)
        self.rows = 0

    def handle(self, event: Event) -> None:
        self._writer.writerow(event_row(event, self.labels, self.speakers))
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self.rows += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()


class DailyCsvTimeline:
    """One CSV per local day in ``folder`` (emotions-YYYY-MM-DD.csv): rotation for a long-running service."""

    def __init__(self, folder: str | Path, labels: Sequence[str], fsync: bool = True, speakers: bool = False) -> None:
        self.folder = Path(folder)
        self.labels = list(labels)
        self.fsync = fsync
        self.speakers = speakers
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MonitorError(f"cannot create the CSV folder {self.folder}: {exc.strerror or exc}") from None
        if not os.access(self.folder, os.W_OK):
            raise MonitorError(f"cannot write to the CSV folder {self.folder}: permission denied")
        self._day = ""
        self._sink: CsvTimeline | None = None
        self.rows = 0
        self._switch(datetime.now().strftime("%Y-%m-%d"))

    def path_for(self, day: str) -> Path:
        return self.folder / f"emotions-{day}.csv"

    def _switch(self, day: str) -> None:
        # open first: keep the old on failure
        new = CsvTimeline(self.path_for(day), self.labels, fsync=self.fsync, speakers=self.speakers)
        if self._sink is not None:
            self._sink.close()
        self._day = day
        self._sink = new

    @property
    def path(self) -> Path:
        return self.path_for(self._day)

    def handle(self, event: Event) -> None:
        day = datetime.fromtimestamp(event.wall_start).strftime("%Y-%m-%d")
        if day != self._day:
            self._switch(day)
        assert self._sink is not None
        self._sink.handle(event)
        self.rows += 1

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
