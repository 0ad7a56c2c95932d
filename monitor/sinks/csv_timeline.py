"""CSV timeline: one row per window, flushed row by row, appending safely to an existing file.

Columns (documented in the README): index, utterance, speaker (with speaker turns on), start_s, end_s, time,
emotion, confidence, p_<label> for every label, arousal, valence, latency_ms, text. A row with an empty index
marks audio that is missing (microphone lost, overrun): its time is where the gap starts and its text says how
long and why.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from monitor.affect import older_columns, older_version_message
from monitor.errors import MonitorError
from monitor.events import AudioGap, Event
from monitor.sinks.row_file import FileState, RowFile, write_problem


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


def gap_row(gap: AudioGap, labels: Sequence[str], speakers: bool = False) -> list[str]:
    """A row without an index: audio is missing here (its text says how long and why)."""
    when = datetime.fromtimestamp(gap.wall_from, tz=UTC).astimezone().isoformat(timespec="milliseconds")
    at = f"{gap.at_s:.3f}"
    return (["", "", *([""] if speakers else []), at, at, when, "", ""] + [""] * len(labels)
            + ["", "", "", gap.text])


def csv_line(fields: Sequence[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerow(fields)
    return buf.getvalue().encode("utf-8")


def open_timeline(path: str | Path, labels: Sequence[str], fsync: bool = False, speakers: bool = False) -> RowFile:
    """Open ``path`` for appending; write the header if new; refuse a file with other columns.

    A disk that is already full (or ``/dev/full``) is a one-line MonitorError here, before anything starts.
    """
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
        created = not p.exists()
        f = RowFile(p, fsync=fsync)
    except MonitorError:
        raise
    except OSError as exc:
        raise MonitorError(f"cannot write the CSV timeline {p}: {write_problem(exc)}") from None
    try:
        if needs_header:
            f.write_now(csv_line(columns), f"the CSV timeline {p}")
        elif not f.ends_with_newline():
            # A previous run killed mid-line would leave a partial row; start on a fresh line.
            f.write_now(b"\n", f"the CSV timeline {p}")
    except MonitorError:
        f.close()
        if created:
            p.unlink(missing_ok=True)  # do not leave an empty file behind
        raise
    return f


class CsvTimeline:
    """Appends one row per event to a single file; each row is written whole, at once (see RowFile)."""

    def __init__(self, path: str | Path, labels: Sequence[str], fsync: bool = False, speakers: bool = False) -> None:
        self.path = Path(path)
        self.labels = list(labels)
        self.speakers = speakers
        self._file = open_timeline(self.path, self.labels, fsync, speakers)

    @property
    def rows(self) -> int:
        """Rows (windows and gap marks) really in the file from this run."""
        return self._file.written

    def state(self) -> FileState:
        return self._file.state()

    def handle(self, event: Event) -> None:
        self._file.append(csv_line(event_row(event, self.labels, self.speakers)))

    def handle_gap(self, gap: AudioGap) -> None:
        self._file.append(csv_line(gap_row(gap, self.labels, self.speakers)))

    def close(self) -> None:
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
        self._closed = FileState()
        self._switch(datetime.now().strftime("%Y-%m-%d"))

    def path_for(self, day: str) -> Path:
        return self.folder / f"emotions-{day}.csv"

    def _switch(self, day: str) -> None:
        # open first: keep the old on failure
        new = CsvTimeline(self.path_for(day), self.labels, fsync=self.fsync, speakers=self.speakers)
        if self._sink is not None:
            self._sink.close()
            self._closed = self._closed + self._sink.state()
        self._day = day
        self._sink = new

    @property
    def path(self) -> Path:
        return self.path_for(self._day)

    @property
    def rows(self) -> int:
        return self.state().written

    def state(self) -> FileState:
        return self._closed + (self._sink.state() if self._sink else FileState())

    def _current(self, wall: float) -> CsvTimeline:
        day = datetime.fromtimestamp(wall).strftime("%Y-%m-%d")
        if day != self._day:
            self._switch(day)
        assert self._sink is not None
        return self._sink

    def handle(self, event: Event) -> None:
        self._current(event.wall_start).handle(event)

    def handle_gap(self, gap: AudioGap) -> None:
        self._current(gap.wall_from).handle_gap(gap)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
