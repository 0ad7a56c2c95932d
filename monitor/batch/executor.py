"""The one interface between ``voice-monitor score``'s run loop and whatever scores the files.

``monitor.batch.cli`` finds the files, reads what ``--resume`` skips, writes the rows and reports progress; an
executor only turns paths into :class:`~monitor.batch.score.FileResult` objects. Two exist: the local process
pool (``--jobs``, in ``monitor.batch.cli``) and a Dask cluster (``--cluster``, in ``monitor.batch.cluster``).
Neither knows about output formats or resume, and the run loop does not know which one runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from monitor.batch.score import FileResult, ScoreOptions


class StopCheck(Protocol):
    def check(self) -> None:
        """Raise KeyboardInterrupt once the user asked to stop (Ctrl-C, SIGTERM)."""


class Executor(Protocol):
    def run(self, todo: list[str], emit: Callable[[FileResult], None], stop: StopCheck) -> None:
        """Score every path of ``todo`` and call ``emit`` exactly once per path, as files finish.

        A file that cannot be scored is a failed result, not an exception. Raises MonitorError when the run
        cannot go on at all (the model cannot load, the cluster is gone) and KeyboardInterrupt on ``stop``.
        ``emit`` is called from the calling thread only; an exception it raises ends the run."""

    def use(self, options: ScoreOptions, verb: str = "scoring") -> None:
        """Score the next ``run`` with ``options`` (e.g. the survey of ``--baseline run``, then the scoring with its
        baseline); ``verb`` says what the run does, in the messages to the user."""

    def close(self, kill: bool = False) -> None:
        """Release the workers; ``kill``: do not wait for the files in flight (after an interrupt)."""
