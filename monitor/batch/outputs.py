"""Rows out: one per file (``--out``) and one per window (``--windows``), as CSV or JSON lines.

Every row is formatted in full, then written with one ``write`` call and flushed, so an interrupted run leaves
only whole rows. ``--resume`` reads the paths already in ``--out`` (a partial last line left by a hard kill is
cut off first) and drops window rows of files whose file row never made it.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from monitor.affect import older_columns, older_version_message
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
        "arousal",
        "valence",
        "text",
        "error",
    ]


def window_columns(labels: Sequence[str], speakers: bool = False) -> list[str]:
    speaker = ["speaker"] if speakers else []
    return ["path", "start_s", "end_s", *speaker, "emotion", "confidence", *prob_columns(labels), "arousal", "valence",
            "text"]


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
    row["arousal"] = _r(result.arousal, 4)
    row["valence"] = _r(result.valence, 4)
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
        row["arousal"] = _r(e.arousal, 4)
        row["valence"] = _r(e.valence, 4)
        row["text"] = e.text
        rows.append(row)
    return rows


def guess_format(path: str | None) -> str:
    return "jsonl" if path and path.lower().endswith((".jsonl", ".ndjson", ".json")) else "csv"


def _one_line_text(v: Any) -> Any:
    return v.replace("\r", " ").replace("\n", " ") if isinstance(v, str) else v


def json_row(row: Row, columns: Sequence[str]) -> Row:
    """The object one JSON line holds: ``columns`` in order, text on one line (also the web API's rows)."""
    return {c: row.get(c) if c == "path" else _one_line_text(row.get(c)) for c in columns}


class RowWriter:
    """Writes rows of fixed ``columns`` to ``target`` ("-" is stdout), each row whole and flushed.

    A file target is written without a buffer, every batch of rows with one ``write``; a write that fails
    part-way (the disk filled up) is cut back to the last whole row before the error is raised, so the file
    never ends in a partial row and ``--resume`` carries on from it.
    """

    def __init__(self, target: str, columns: Sequence[str], fmt: str, append: bool = False) -> None:
        if fmt not in FORMATS:
            raise ConfigError(f"--format must be csv or jsonl, not {fmt!r}")
        self.target = target
        self.columns = list(columns)
        self.fmt = fmt
        self.rows = 0
        self._raw: io.FileIO | None = None
        if target != "-":
            try:
                self._raw = io.FileIO(target, "a" if append else "w")
                self._size = os.lseek(self._raw.fileno(), 0, os.SEEK_END)
            except OSError as exc:
                raise ConfigError(write_problem(target, exc)) from None
        if fmt == "csv" and (self._raw is None or self._size == 0):
            self._write([self._csv_line(self.columns)])

    @property
    def size(self) -> int:
        """Bytes of whole rows in the file (0 for stdout)."""
        return self._size if self._raw is not None else 0

    def _csv_line(self, values: Iterable[Any]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(["" if v is None else v for v in values])
        return buf.getvalue()

    def _format(self, row: Row) -> str:
        # The path is kept exactly (CSV quotes a newline in it, JSON escapes it): --resume must match it.
        values = json_row(row, self.columns)
        if self.fmt == "csv":
            return self._csv_line(values.values())
        return json.dumps(values, ensure_ascii=False) + "\n"

    def _write(self, lines: list[str]) -> None:
        text = "".join(lines)
        if self._raw is None:  # stdout's encoding may not take undecodable file-name bytes
            try:
                sys.stdout.write(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
                sys.stdout.flush()
            except BrokenPipeError:
                raise
            except OSError as exc:
                raise ConfigError(write_problem("standard output", exc)) from None
            return
        # surrogateescape: a file name that is not valid UTF-8 is written back byte for byte
        encoded = text.encode("utf-8", "surrogateescape")
        data = memoryview(encoded)
        try:
            while data:
                n = self._raw.write(data)
                data = data[n or 0 :]
        except OSError as exc:
            self.rollback(self._size)
            raise ConfigError(write_problem(self.target, exc)) from None
        self._size += len(encoded)

    def rollback(self, size: int) -> None:
        """Cut the file back to ``size`` bytes (an earlier ``size``): rows written since are removed."""
        if self._raw is None:
            return
        with contextlib.suppress(OSError):  # a device such as /dev/full cannot be truncated
            os.ftruncate(self._raw.fileno(), size)
            self._size = size

    def write(self, rows: Sequence[Row]) -> None:
        """Write ``rows`` (e.g. all the windows of one file) in one call."""
        if rows:
            self._write([self._format(r) for r in rows])
            self.rows += len(rows)

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()


def write_problem(target: str, exc: OSError) -> str:
    """One line for an output that cannot be written: what happened, and how to go on."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        problem, fix = f"the disk is full ({exc.strerror})", "free some space"
    elif exc.errno == errno.EFBIG:
        problem, fix = f"the file has reached the size limit ({exc.strerror})", "raise the limit or free space"
    else:
        problem, fix = exc.strerror or str(exc), "fix that"
    if target == "standard output":
        return f"cannot write {target}: {problem}"
    return f"cannot write {target}: {problem}; the rows written so far are whole: {fix} and rerun with --resume"


def _looks_like_ours(first_line: str) -> bool:
    """A first line of rows written by ``score`` (any model's labels, any version's extra columns)."""
    line = first_line.strip()
    try:
        fields = list(json.loads(line)) if line.startswith("{") else next(csv.reader([line]))
    except (ValueError, StopIteration):
        return False
    return bool(fields) and fields[0] == "path" and {"emotion", "confidence"} <= set(fields)


def check_overwrite(target: str, flag: str, force: bool) -> None:
    """ConfigError if ``target`` is a file with something in it that ``score`` did not write: a run without
    --resume would replace it. Earlier output of ``score`` is replaced as before; --force replaces anything."""
    if force or target == "-":
        return
    try:
        if not os.path.isfile(target) or os.path.getsize(target) == 0:
            return
        with open(target, encoding="utf-8", errors="replace") as f:
            first = f.readline(1 << 16)
    except OSError:
        return  # not readable: check_writable and the first write report it
    if not _looks_like_ours(first):
        raise ConfigError(
            f"{flag} {target} already exists and was not written by voice-monitor score: choose another file, "
            "or pass --force to overwrite it"
        )


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


def _older(flag: str, path: str) -> str:
    return older_version_message(f"{flag} {path}", f"move it away or choose another {flag} path")


def _cut_partial_csv_record(path: str, ncols: int) -> None:
    """Drop a last CSV record that ends inside a quoted field (a path holding a newline, cut by a hard kill
    after that newline): it has fewer fields than a whole row."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        lines = f.read().split("\n")
    lines = [line + "\n" for line in lines[:-1]]  # the text ends with a newline (cut to the last one)
    reader = csv.reader(iter(lines))
    start = last_start = last_fields = 0
    for record in reader:
        last_start, last_fields = start, len(record)
        start = reader.line_num
    if last_start > 0 and last_fields != ncols:  # never the header: a wrong header is reported by the caller
        keep = "".join(lines[:last_start]).encode("utf-8", "surrogateescape")
        with open(path, "rb+") as f:
            f.truncate(len(keep))


def read_rows(path: str, fmt: str, columns: Sequence[str], flag: str) -> list[Row]:
    """The rows of an existing output file, checked against the columns this run writes."""
    if fmt == "csv":  # a file of another version or with other columns is refused before anything is cut
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
            header = next(csv.reader(f), None)
        if header and older_columns(header, columns):
            raise ConfigError(_older(flag, path))
    _cut_partial_line(path)
    if fmt == "csv":
        _cut_partial_csv_record(path, len(columns))
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
                if isinstance(row, dict) and older_columns(list(row), columns):
                    raise ConfigError(_older(flag, path))
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
    try:
        writer = RowWriter(tmp, columns, fmt)
        try:
            writer.write(rows)
        finally:
            writer.close()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
