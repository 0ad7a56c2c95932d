"""``--format parquet``: the per-file and per-window rows as a Parquet dataset (a folder of part files).

``-o scores.parquet`` is a folder (as Spark writes it) that pandas (``pd.read_parquet("scores.parquet")``),
DuckDB (``read_parquet('scores.parquet/*.parquet')``), Spark and pyarrow read as one table. Rows are buffered
and written as a row group every ``row_group_rows`` rows or ``flush_s`` seconds, so memory stays bounded on
archives of millions of windows; a part file is closed (its footer written, then renamed from a hidden
``.part-N.parquet.inprogress`` to ``part-N.parquet``) every ``part_s`` seconds and at the end of the run, a
Ctrl-C included. Readers ignore the hidden in-progress file, so the folder always reads as whole rows.

A run killed outright (SIGKILL, power loss) loses the rows of its open part only: ``--resume`` deletes the
leftover and scores those files again. The windows part is closed before the file-rows part, so a file row
that is visible always has its windows (the CSV writer's rule). ``--resume`` without ``--retry-failed`` keeps
the parts as they are; dropping rows (failed files, windows of unfinished files) rewrites only the parts
concerned, each atomically.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from monitor.errors import ConfigError

Row = dict[str, Any]
STRING_COLUMNS = frozenset({"path", "emotion", "text", "error", "speaker"})
INT_COLUMNS = frozenset({"windows", "speakers"})
_PART = re.compile(r"part-(\d{5,})\.parquet")
_LEFTOVER = re.compile(r"\.part-\d{5,}\.parquet\.(inprogress|rewrite)")


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "--format parquet needs pyarrow: pip install 'voice-monitor[cluster]' (or pip install pyarrow)"
        ) from None
    return pa, pq


def schema_for(columns: Sequence[str]) -> Any:
    """Text columns are strings, ``windows`` an integer, every other column (times, probabilities) a float."""
    pa, _ = _pyarrow()

    def kind(c: str) -> Any:
        return pa.string() if c in STRING_COLUMNS else pa.int64() if c in INT_COLUMNS else pa.float64()

    return pa.schema([(c, kind(c)) for c in columns])


def parts(folder: str) -> list[str]:
    """The closed part files of ``folder``, in the order they were written."""
    names = sorted((int(m.group(1)), n) for n in os.listdir(folder) if (m := _PART.fullmatch(n)))
    return [os.path.join(folder, n) for _, n in names]


def check_target(target: str, flag: str) -> None:
    """Fail before any work if ``target`` cannot be a Parquet output folder (or pyarrow is missing)."""
    _pyarrow()
    if target == "-":
        raise ConfigError(f"--format parquet needs {flag} FOLDER (Parquet cannot be written to stdout)")
    if os.path.exists(target) and not os.path.isdir(target):
        raise ConfigError(
            f"cannot write {flag} {target}: it is a file; Parquet output is a folder of part files: "
            "choose a new name or remove the file"
        )
    if os.path.isdir(target):
        foreign = [n for n in os.listdir(target) if not (_PART.fullmatch(n) or _LEFTOVER.fullmatch(n))]
        if foreign:
            raise ConfigError(
                f"cannot write {flag} {target}: the folder holds other files ({foreign[0]}); "
                "Parquet output needs a new or empty folder"
            )
    where = target if os.path.isdir(target) else os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(where):
        raise ConfigError(f"cannot write {flag} {target}: the folder {where} does not exist")
    if not os.access(where, os.W_OK):
        raise ConfigError(f"cannot write {flag} {target}: permission denied")


def _utf8_rows(rows: list[Row]) -> list[Row]:
    """Parquet strings are UTF-8: a file name that is not (kept in Python with surrogate escapes) gets
    U+FFFD for its undecodable bytes."""

    def fix(v: Any) -> Any:
        return v.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if isinstance(v, str) else v

    return [{k: fix(v) for k, v in r.items()} for r in rows]


class ParquetRowWriter:
    """The Parquet counterpart of :class:`monitor.batch.outputs.RowWriter` (same ``write``/``close``)."""

    def __init__(
        self,
        target: str,
        columns: Sequence[str],
        append: bool = False,
        row_group_rows: int = 10_000,
        flush_s: float = 5.0,
        part_s: float = 60.0,
    ) -> None:
        self.pa, self.pq = _pyarrow()
        self.target = target
        self.columns = list(columns)
        self.schema = schema_for(columns)
        self.row_group_rows = row_group_rows
        self.flush_s = flush_s
        self.part_s = part_s
        self.rows = 0
        self.before_part_close: list[Callable[[], None]] = []  # e.g. the windows writer's roll()
        self._buffer: list[Row] = []
        self._writer: Any = None
        self._part_started = self._flushed = time.monotonic()
        try:
            os.makedirs(target, exist_ok=True)
            for name in os.listdir(target):
                if _LEFTOVER.fullmatch(name) or (not append and _PART.fullmatch(name)):
                    os.remove(os.path.join(target, name))  # a killed run's open part; or a previous run's
        except OSError as exc:
            raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
        existing = parts(target)
        self._seq = int(_PART.fullmatch(os.path.basename(existing[-1])).group(1)) + 1 if existing else 0  # type: ignore[union-attr]

    def _names(self) -> tuple[str, str]:
        final = f"part-{self._seq:05d}.parquet"
        return os.path.join(self.target, f".{final}.inprogress"), os.path.join(self.target, final)

    def write(self, rows: Sequence[Row]) -> None:
        self._buffer.extend(rows)
        self.rows += len(rows)
        now = time.monotonic()
        if len(self._buffer) >= self.row_group_rows or (self._buffer and now - self._flushed >= self.flush_s):
            self._flush()
        if self._writer is not None and time.monotonic() - self._part_started >= self.part_s:
            self.roll()

    def _flush(self) -> None:
        self._flushed = time.monotonic()
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        try:
            table = self.pa.Table.from_pylist(rows, schema=self.schema)
        except UnicodeEncodeError:
            table = self.pa.Table.from_pylist(_utf8_rows(rows), schema=self.schema)
        try:
            if self._writer is None:
                self._writer = self.pq.ParquetWriter(self._names()[0], self.schema)
                self._part_started = time.monotonic()
            self._writer.write_table(table, row_group_size=len(rows))
        except OSError as exc:  # disk full, folder gone: the closed parts are whole
            raise ConfigError(f"cannot write {self.target}: {exc.strerror or exc}") from None

    def roll(self) -> None:
        """Write out the buffer and close the open part, making its rows visible (dependents first)."""
        for before in self.before_part_close:
            before()
        self._flush()
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        tmp, final = self._names()
        try:
            writer.close()
            os.replace(tmp, final)
        except OSError as exc:
            raise ConfigError(f"cannot write {self.target}: {exc.strerror or exc}") from None
        self._seq += 1

    def close(self) -> None:
        self.roll()


# --- resume --------------------------------------------------------------------------------------------
def _checked(path: str, columns: Sequence[str], flag: str) -> Any:
    _, pq = _pyarrow()
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
        raise ConfigError(
            f"{flag} {path}: not a readable Parquet file ({exc}); move it away or drop --resume"
        ) from None
    if list(schema.names) != list(columns):
        raise ConfigError(
            f"{flag} {path}: its columns differ from this run's (another model or format?); "
            "use a new folder or drop --resume"
        )
    return pq


def _rewrite_part(path: str, table: Any) -> None:
    """Replace a closed part by ``table`` atomically."""
    _, pq = _pyarrow()
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.rewrite")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def done_paths(folder: str, columns: Sequence[str], retry_failed: bool = False) -> set[str]:
    """Paths with a row in the folder's closed parts; with ``retry_failed``, the rows of files that could not
    be read (an error and no duration) are removed first, so those files are scored again."""
    if not os.path.isdir(folder):
        return set()
    import pyarrow.compute as pc

    done: set[str] = set()
    for part in parts(folder):
        pq = _checked(part, columns, "--out")
        if retry_failed:
            table = pq.read_table(part)
            failed = pc.and_(pc.invert(pc.equal(pc.fill_null(table["error"], ""), "")), pc.is_null(table["duration_s"]))
            if pc.any(failed).as_py():
                table = table.filter(pc.invert(failed))
                _rewrite_part(part, table)
            paths = table["path"]
        else:
            paths = pq.read_table(part, columns=["path"])["path"]
        done.update(p for p in paths.to_pylist() if p is not None)
    return done


def keep_windows_of(folder: str, columns: Sequence[str], done: set[str]) -> int:
    """Drop window rows of files not in ``done`` (their file row was never written); return how many."""
    if not os.path.isdir(folder):
        return 0
    pa, _ = _pyarrow()
    import pyarrow.compute as pc

    dropped = 0
    keep_set = pa.array(sorted(done), type=pa.string())
    for part in parts(folder):
        pq = _checked(part, columns, "--windows")
        table = pq.read_table(part)
        keep = pc.is_in(table["path"], value_set=keep_set)
        kept = int(pc.sum(keep).as_py() or 0)
        if kept != table.num_rows:
            dropped += table.num_rows - kept
            _rewrite_part(part, table.filter(keep))
    return dropped
