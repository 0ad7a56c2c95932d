"""A file that only ever holds whole lines, even when the disk fills up.

Each line goes out with one ``os.write`` loop on an ``O_APPEND`` descriptor (no Python buffer that
could flush half a row later). A write that fails (disk full, quota, I/O error) is rolled back to the
last whole line with ``ftruncate`` and the line stays in a bounded backlog, retried before the next one:
when space comes back the rows are written in order; what never fits is counted as lost. ``written``
is the number of lines really in the file, so a summary built from it matches the file.
"""

from __future__ import annotations

import errno
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import MonitorError

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is too large",
    errno.EIO: "an input/output error (a failing disk?)",
    errno.EROFS: "the file system is read-only",
}


def write_problem(exc: OSError) -> str:
    """A short reason for a failed write: 'the disk is full', ..."""
    return _REASONS.get(exc.errno or 0, exc.strerror or str(exc))


@dataclass(frozen=True)
class FileState:
    written: int = 0  # lines in the file from this run
    lost: int = 0  # lines given up on (backlog overflow, or still unwritten at close)
    pending: int = 0  # lines waiting for space
    problem: str | None = None  # while writes fail: 'the disk is full', ...
    last_problem: str | None = None  # the latest failure, even if writes work again

    def __add__(self, other: FileState) -> FileState:
        return FileState(self.written + other.written, self.lost + other.lost, self.pending + other.pending,
                         other.problem or self.problem, other.last_problem or self.last_problem)


class RowFile:
    """Append-only lines with rollback of partial writes and a bounded backlog (see the module doc)."""

    def __init__(self, path: str | Path, fsync: bool = False, backlog_lines: int = 20000) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.backlog_lines = backlog_lines
        self.written = 0  # lines in the file (this run)
        self.lost = 0  # lines given up on (backlog overflow, or still unwritten at close)
        self.failures = 0  # writes that failed (each retry counts)
        self.problem: str | None = None  # set while writes fail: 'the disk is full', ...
        self.last_problem: str | None = None
        self._backlog: deque[tuple[bytes, bool]] = deque()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def state(self) -> FileState:
        pending = sum(counted for _, counted in self._backlog)
        return FileState(self.written, self.lost, pending, self.problem, self.last_problem)

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def ends_with_newline(self) -> bool:
        size = self.size()
        if size == 0:
            return True
        with self.path.open("rb") as f:
            f.seek(size - 1)
            return f.read(1) in (b"\n", b"\r")

    def _write_whole(self, data: bytes) -> None:
        before = self.size()
        try:
            done = 0
            while done < len(data):
                done += os.write(self._fd, data[done:])
            if self.fsync:
                os.fsync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, before)  # no partial line is left behind
            except OSError:
                pass  # a device such as /dev/full: nothing was written
            raise

    def write_now(self, data: bytes, what: str) -> None:
        """Write at once or raise a one-line MonitorError (used when opening: a full disk stops the start)."""
        try:
            self._write_whole(data)
        except OSError as exc:
            raise MonitorError(f"cannot write {what}: {write_problem(exc)}; free some space or choose another "
                               "path") from None

    def append(self, line: bytes, counted: bool = True) -> None:
        """Queue ``line`` and write everything queued, in order, as far as the disk allows. Never raises.
        A line not ``counted`` (a header) is not in ``written`` nor ``lost``."""
        self._backlog.append((line, counted))
        if len(self._backlog) > self.backlog_lines:
            self.lost += int(self._backlog.popleft()[1])
        self._drain()

    def _drain(self) -> None:
        while self._backlog:
            try:
                self._write_whole(self._backlog[0][0])
            except OSError as exc:
                self.failures += 1
                self.problem = self.last_problem = write_problem(exc)
                return
            self.written += int(self._backlog.popleft()[1])
        self.problem = None

    def close(self) -> None:
        if self._fd < 0:
            return
        self._drain()
        self.lost += sum(counted for _, counted in self._backlog)
        self._backlog.clear()
        os.close(self._fd)
        self._fd = -1
