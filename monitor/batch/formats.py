"""Output formats of ``voice-monitor score``: CSV and JSON lines (monitor.batch.outputs) and Parquet
(monitor.batch.parquet, needs pyarrow). The run loop opens writers, checks targets and reads ``--resume``
state through these functions, whatever the format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monitor.batch import outputs

FORMATS = (*outputs.FORMATS, "parquet")


def guess_format(path: str | None) -> str:
    if path and path.rstrip("/").lower().endswith(".parquet"):
        return "parquet"
    return outputs.guess_format(path)


def open_writer(target: str, columns: Sequence[str], fmt: str, append: bool = False, closes_before: Any = None) -> Any:
    """A writer with ``write(rows)`` and ``close()``. ``closes_before``: the writer whose rows depend on this
    one's (the file rows on their windows): a Parquet part of this one is closed before each of its parts."""
    if fmt != "parquet":
        return outputs.RowWriter(target, columns, fmt, append=append)
    from monitor.batch.parquet import ParquetRowWriter

    writer = ParquetRowWriter(target, columns, append=append)
    if isinstance(closes_before, ParquetRowWriter):
        closes_before.before_part_close.append(writer.roll)
    return writer


def check_target(target: str, flag: str, fmt: str) -> bool:
    """Parquet targets are checked here (a folder); returns False for the others (checked by the caller)."""
    if fmt != "parquet":
        return False
    from monitor.batch.parquet import check_target as check_parquet

    check_parquet(target, flag)
    return True


def done_paths(path: str, fmt: str, columns: Sequence[str], retry_failed: bool = False) -> set[str]:
    if fmt != "parquet":
        return outputs.done_paths(path, fmt, columns, retry_failed=retry_failed)
    from monitor.batch import parquet

    return parquet.done_paths(path, columns, retry_failed=retry_failed)


def keep_windows_of(path: str, fmt: str, columns: Sequence[str], done: set[str]) -> int:
    if fmt != "parquet":
        return outputs.keep_windows_of(path, fmt, columns, done)
    from monitor.batch import parquet

    return parquet.keep_windows_of(path, columns, done)
