"""Worker processes that die with the process that started them, even when it is killed with SIGKILL.

A ``ProcessPoolExecutor`` worker waits for work on a pipe whose both ends it holds itself, so it never sees
its parent go; with the forkserver start method its parent is not even the scoring process but the
forkserver, which lives as long as any worker holds its "alive" pipe. A ``score`` run killed with SIGKILL
left the forkserver, the workers and the resource tracker running for good (about 165 MB).

Each worker therefore watches the scoring process itself: :func:`parent_token` (in the parent) names it by
pid and start time, and :func:`die_with` (in the worker's initializer) starts a daemon thread that waits
on a pidfd of that process (``os.pidfd_open``, Linux 5.3+; else it checks every second) and ends the
worker with ``os._exit`` when it is gone. ``PR_SET_PDEATHSIG`` is set too: the worker also dies if its
direct parent (the forkserver, or the scoring process under the spawn method) dies. Once the workers are
gone the forkserver reads EOF on its alive pipe and exits, and then the resource tracker does.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 1.0


@dataclass(frozen=True)
class ParentToken:
    """A process named so that a reused pid is not mistaken for it."""

    pid: int
    start: str  # field 22 of /proc/PID/stat (start time in clock ticks); "" where /proc is missing


def _start_time(pid: int) -> str | None:
    """The process's start time, "" if /proc cannot tell, None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    # the command name (field 2) is in parentheses and may hold spaces: split after its last ")"
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else ""


def parent_token() -> ParentToken:
    return ParentToken(os.getpid(), _start_time(os.getpid()) or "")


def is_alive(token: ParentToken) -> bool:
    start = _start_time(token.pid)
    if start is None:
        return False
    if start and token.start:
        return start == token.start
    try:
        os.kill(token.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _set_pdeathsig(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent ends (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(token: ParentToken) -> None:
    pidfd = -1
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(token.pid)
    if pidfd >= 0 and is_alive(token):  # opened on the right process: it becomes readable when it ends
        select.select([pidfd], [], [])
    else:
        while is_alive(token):
            threading.Event().wait(POLL_S)
    os._exit(1)  # the scoring process is gone: nobody is left to read this worker's results


def die_with(token: ParentToken | None) -> None:
    """Called in a worker: end this process when the process named by ``token`` ends."""
    if token is None:
        _set_pdeathsig()
        return
    if os.getppid() != token.pid:  # forked by the forkserver: it dies too if that one does
        _set_pdeathsig()  # (not under spawn: the signal would come when the parent's forking thread ends)
    if not is_alive(token):
        os._exit(1)
    threading.Thread(target=_watch, args=(token,), name="parent-watch", daemon=True).start()
