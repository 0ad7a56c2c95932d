"""Rows out: one per file (``--out``) and one per window (``--windows``), as CSV or JSON lines.

Every row is formatted in full, then written with one ``write`` call and flushed, so an interrupted run leaves
only whole rows. ``--resume`` reads the paths already in ``--out`` (a partial last line left by a hard kill is
cut off first) and drops window rows of files whose file row never made it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

from monitor.batch.score import FileResult
from monitor.errors import ConfigError

FORMATS = ("csv", "jsonl")
Row = dict[str, Any]


def prob_columns(labels: Sequence[str]) -> list[str]:
    return [f"p_{lab}" for lab in labels]


def file_columns(labels: Sequence[str], speakers: bool = False) -> list[str]:
    return [
        "path",
        "duration_s",
        "speech_s",
        "windows",
        *(["speakers"] if speakers else []),
        "emotion",
        "confidence",
        *prob_columns(labels),
        "text",
        "error",
    ]


def window_columns(labels: Sequence[str], speakers: bool = False) -> list[str]:
    speaker = ["speaker"] if speakers else []
    return ["path", "start_s", "end_s", *speaker, "emotion", "confidence", *prob_columns(labels), "text"]


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None else round(float(x), digits)


def file_row(result: FileResult, labels: Sequence[str]) -> Row:
    row: Row = {
        "path": result.path,
        "duration_s": _r(result.duration_s, 3),
        "speech_s": _r(result.speech_s, 3) if result.duration_s is not None else None,
        "windows": len(result.events) if result.duration_s is not None else None,
        "speakers": result.speakers,
        "emotion": result.emotion,
        "confidence": _r(result.confidence, 4),
    }
    for lab in labels:
        row[f"p_{lab}"] = _r(result.probabilities.get(lab), 4)
    row["text"] = result.text
    row["error"] = result.error
    return row


def window_rows(result: FileResult, labels: Sequence[str]) -> list[Row]:
    rows = []
    for e in result.events:
        row: Row = {
            "path": result.path,
            "start_s": _r(e.start_s, 3),
            "end_s": _r(e.end_s, 3),
            "speaker": e.speaker,
            "emotion": e.emotion,
            "confidence": _r(e.confidence, 4),
        }
        for lab in labels:
            row[f"p_{lab}"] = _r(e.probabilities.get(lab), 4)
        row["text"] = e.text
        rows.append(row)
    return rows


def guess_format(path: str | None) -> str:
    return "jsonl" if path and path.lower().endswith((".jsonl", ".ndjson", ".json")) else "csv"


def _one_line_text(v: Any) -> Any:
    return v.replace("\r", " ").replace("\n", " ") if isinstance(v, str) else v


class RowWriter:
    """Writes rows of fixed ``columns`` to ``target`` ("-" is stdout), each row whole and flushed."""

    def __init__(self, target: str, columns: Sequence[str], fmt: str, append: bool = False) -> None:
        if fmt not in FORMATS:
            raise ConfigError(f"--format must be csv or jsonl, not {fmt!r}")
        self.target = target
        self.columns = list(columns)
        self.fmt = fmt
        self.rows = 0
        self._own = target != "-"
        if self._own:
            try:
                # surrogateescape: a file name that is not valid UTF-8 is written back byte for byte
                self._f: IO[str] = open(
                    target, "a" if append else "w", encoding="utf-8", errors="surrogateescape", newline=""
                )
            except OSError as exc:
                raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
        else:
            self._f = sys.stdout
        if fmt == "csv" and (not self._own or self._f.tell() == 0):
            self._write([self._csv_line(self.columns)])

    def _csv_line(self, values: Iterable[Any]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(["" if v is None else _one_line_text(v) for v in values])
        return buf.getvalue()

    def _format(self, row: Row) -> str:
        if self.fmt == "csv":
            return self._csv_line(row.get(c) for c in self.columns)
        return json.dumps({c: _one_line_text(row.get(c)) for c in self.columns}, ensure_ascii=False) + "\n"

    def _write(self, lines: list[str]) -> None:
        text = "".join(lines)
        if not self._own:  # stdout's encoding may not take undecodable file-name bytes
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        try:
            self._f.write(text)
            self._f.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:  # disk full, file system gone: the rows before are whole
            raise ConfigError(f"cannot write {self.target}: {exc.strerror or exc}") from None

    def write(self, rows: Sequence[Row]) -> None:
        """Write ``rows`` (e.g. all the windows of one file) in one call, then flush."""
        if rows:
            self._write([self._format(r) for r in rows])
            self.rows += len(rows)

    def close(self) -> None:
        if self._own:
            self._f.close()


# --- resume --------------------------------------------------------------------------------------------
def _cut_partial_line(path: str) -> None:
    """Drop an unfinished last line (left by a hard kill in the middle of a write)."""
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        pos = size
        chunk = 4096
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            data = f.read(pos - start)
            nl = data.rfind(b"\n")
            if nl >= 0:
                f.truncate(start + nl + 1)
                return
            pos = start
        f.truncate(0)


def read_rows(path: str, fmt: str, columns: Sequence[str], flag: str) -> list[Row]:
    """The rows of an existing output file, checked against the columns this run writes."""
    _cut_partial_line(path)
    rows: list[Row] = []
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        if fmt == "csv":
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                return []
            if list(reader.fieldnames) != list(columns):
                raise ConfigError(
                    f"{flag} {path}: its columns differ from this run's (another model or format?); "
                    "use a new file or drop --resume"
                )
            rows = list(reader)
        else:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise ConfigError(f"{flag} {path}: line {n} is not JSON; is it a CSV file?") from None
                if not isinstance(row, dict) or list(row) != list(columns):
                    raise ConfigError(
                        f"{flag} {path}: line {n} has other fields than this run writes; "
                        "use a new file or drop --resume"
                    )
                rows.append(row)
    return rows


def _rewrite(path: str, fmt: str, columns: Sequence[str], rows: list[Row]) -> None:
    """Replace ``path`` by ``rows`` atomically (a temporary file, then rename)."""
    tmp = f"{path}.tmp{os.getpid()}"
    writer = RowWriter(tmp, columns, fmt)
    writer.write(rows)
    writer.close()
    os.replace(tmp, path)


def _failed(row: Row) -> bool:
    """A file that could not be read: it has an error and no duration (a file without speech has one)."""
    return bool(row.get("error")) and row.get("duration_s") in (None, "")


def done_paths(path: str, fmt: str, columns: Sequence[str], retry_failed: bool = False) -> set[str]:
    """Paths that already have a row in ``--out`` (empty if the file does not exist yet). With
    ``retry_failed``, the rows of files that could not be read are removed, so those files are scored again."""
    if not os.path.exists(path):
        return set()
    rows = read_rows(path, fmt, columns, "--out")
    if retry_failed:
        kept = [r for r in rows if not _failed(r)]
        if len(kept) != len(rows):
            _rewrite(path, fmt, columns, kept)
        rows = kept
    return {str(r["path"]) for r in rows}


def keep_windows_of(path: str, fmt: str, columns: Sequence[str], done: set[str]) -> int:
    """Drop window rows of files not in ``done`` (their file row was never written); return how many."""
    if not os.path.exists(path):
        return 0
    rows = read_rows(path, fmt, columns, "--windows")
    kept = [r for r in rows if str(r["path"]) in done]
    dropped = len(rows) - len(kept)
    if dropped:
        _rewrite(path, fmt, columns, kept)
    return dropped
