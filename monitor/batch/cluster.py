"""``voice-monitor score --cluster``: the files scored as Dask tasks (the optional ``cluster`` extra).

``--cluster tcp://HOST:PORT`` connects to a running ``dask scheduler``; ``--cluster local:N`` starts a
LocalCluster of N single-threaded worker processes on this machine. Files go to the workers in groups (up to
``GROUP_BYTES`` of file size or ``GROUP_FILES`` files: one task, ``monitor.batch.cluster_task.score_files``,
per group, so short clips do not pay a scheduler round trip each; a long file is a group of its own). A task
returns the same :class:`FileResult` objects the local pool returns and the client turns them into rows, so
the rows are the local run's. At most ``TASKS_PER_THREAD`` tasks per worker thread are submitted at a time, so
an archive of millions of files never sits in the scheduler at once.

Faults: a worker that dies mid-task has its task rerun elsewhere by the scheduler; a group that kills
``distributed.scheduler.allowed-failures`` + 1 workers is split and its files rerun one by one, and the file
that still kills them gets an error row. Each path is emitted once, whatever the scheduler reruns. No worker
yet: the run waits for one and says so. The scheduler unreachable at start, or lost for good mid-run: a
one-line error (the rows written so far are whole; ``--resume`` carries on).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.batch.executor import StopCheck
from monitor.batch.score import FileResult, ScoreOptions, WorkerInitError, one_line
from monitor.batch.voices import voice_units
from monitor.errors import ConfigError, MonitorError

LOCAL_PREFIX = "local:"
CONNECT_TIMEOUT_S = 10.0  # scheduler unreachable at start: the error comes after this
LOST_SCHEDULER_S = 30.0  # scheduler gone mid-run for this long: stop with an error
TASKS_PER_THREAD = 2  # submitted ahead per worker thread: one running, one queued
# Files go to the workers in groups of up to this many bytes (or files): a Dask task costs the scheduler about
# a millisecond and a round trip, more than scoring a 3 s clip (~10 ms); a long file is a group of its own.
GROUP_BYTES = 4 << 20
GROUP_FILES = 64
GROUPS_PER_THREAD = 4  # at least this many groups per worker thread connected at the start, when files allow
SHARED_FS_NOTE = "workers open the files by path: they must see them at the same paths (a shared filesystem)"
INSTALL_HINT = "--cluster needs the cluster extra: pip install 'voice-monitor[cluster]' (dask[distributed])"


@dataclass(frozen=True)
class ClusterSpec:
    """Where the tasks run: a scheduler address, or ``local_workers`` processes of a LocalCluster."""

    scheduler: str | None = None
    local_workers: int = 0

    def __str__(self) -> str:
        return self.scheduler or f"a local Dask cluster of {self.local_workers} worker processes"


def parse_cluster(value: str) -> ClusterSpec:
    """``tcp://HOST:PORT`` (any Dask address: tls://, HOST:PORT) or ``local:N``; ConfigError otherwise."""
    value = value.strip()
    if value.startswith(LOCAL_PREFIX):
        n = value[len(LOCAL_PREFIX) :]
        if not n.isdigit() or int(n) < 1:
            raise ConfigError(f"--cluster {value}: local:N needs a number of workers of at least 1, e.g. local:4")
        return ClusterSpec(local_workers=int(n))
    host_port = value.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"--cluster {value}: give the scheduler's address as tcp://HOST:PORT (dask scheduler prints it; "
            "its default port is 8786) or local:N"
        )
    return ClusterSpec(scheduler=value if "://" in value else f"tcp://{value}")


def chunks(paths: list[str], max_bytes: int = GROUP_BYTES, max_files: int = GROUP_FILES) -> list[list[str]]:
    """Consecutive paths grouped up to ``max_bytes`` of file size or ``max_files`` files (each group one task)."""
    groups: list[list[str]] = []
    size = 0
    for path in paths:
        try:
            n = os.stat(path).st_size
        except OSError:
            n = 0
        if groups and size + n <= max_bytes and len(groups[-1]) < max_files:
            groups[-1].append(path)
            size += n
        else:
            groups.append([path])
            size = n
    return groups


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return distributed


class DaskExecutor:
    """The :class:`~monitor.batch.executor.Executor` for a Dask cluster. ``notify``: one-line messages for
    the user (waiting for workers, workers joining or leaving)."""

    def __init__(self, spec: ClusterSpec, options: ScoreOptions, notify: Callable[[str], None]) -> None:
        self.spec = spec
        self.options = options
        self.notify = notify
        self.client: Any = None
        self.cluster: Any = None
        self.run_id = uuid.uuid4().hex[:12]
        self._inflight: dict[str, tuple[Any, list[str]]] = {}  # task key -> (future, paths as given)
        self._threads = 0
        self._threads_checked = 0.0
        self.verb = "scoring"

    def use(self, options: ScoreOptions, verb: str = "scoring") -> None:
        self.options = options  # sent with every task: the workers build a pipeline per options, once
        self.verb = verb

    # --- connection ----------------------------------------------------------------------------------
    def connect(self) -> None:
        distributed = _distributed()
        logging.getLogger("distributed").setLevel(logging.ERROR)  # its warnings are retold here, in one line
        if self.spec.local_workers:
            self.cluster = distributed.LocalCluster(
                n_workers=self.spec.local_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = distributed.Client(self.cluster)
            return
        self._probe()
        try:
            self.client = distributed.Client(self.spec.scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {self.spec.scheduler} ({one_line(exc)}); start one with "
                "'dask scheduler' and check --cluster"
            ) from None
        except ValueError as exc:  # a malformed address
            raise ConfigError(f"--cluster {self.spec.scheduler}: {one_line(exc)}") from None

    def _probe(self) -> None:
        """A refused TCP connection is known at once (the Dask client would retry until its timeout)."""
        address = self.spec.scheduler or ""
        if not address.startswith("tcp://"):
            return
        host, _, port = address[len("tcp://") :].rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(
                f"cannot reach the Dask scheduler at {address} ({reason}); start one with 'dask scheduler' "
                "and check --cluster"
            ) from None

    def _worker_threads(self, force: bool = False) -> int:
        """Worker threads now connected (asked of the scheduler at most once a second)."""
        now = time.monotonic()
        if force or now - self._threads_checked >= 1.0:
            self._threads_checked = now
            try:
                threads = sum(self.client.nthreads().values())
            except (OSError, TimeoutError):
                threads = 0
            if threads != self._threads:
                if self._threads and threads:
                    self.notify(f"cluster: now {threads} worker thread{'s' if threads != 1 else ''}")
                elif self._threads and not threads:
                    self.notify(f"cluster: no worker left; waiting for one to connect to {self.spec}")
            self._threads = threads
        return self._threads

    def _wait_for_workers(self, stop: StopCheck) -> None:
        if self._worker_threads(force=True):
            return
        self.notify(
            f"waiting for a Dask worker to connect to {self.spec} (start one with: dask worker "
            f"{self.spec.scheduler} --nthreads 1)"
        )
        while True:
            stop.check()
            try:
                self.client.wait_for_workers(1, timeout=0.5)
            except TimeoutError:
                continue
            if self._worker_threads(force=True):
                return

    # --- the run -------------------------------------------------------------------------------------
    def run(self, todo: list[str], emit: Callable[[FileResult], None], stop: StopCheck) -> None:
        from monitor.batch.cluster_task import score_files

        if self.client is None:
            self.connect()
        self._wait_for_workers(stop)
        n = self._threads
        self.notify(
            f"{self.verb} {len(todo)} file{'s' if len(todo) != 1 else ''} on {self.spec} "
            f"({n} worker thread{'s' if n != 1 else ''}); {SHARED_FS_NOTE}"
        )
        # groups small enough that every worker thread gets several (balance), large enough to amortise a task
        per_group = max(1, min(GROUP_FILES, -(-len(todo) // (n * GROUPS_PER_THREAD))))
        units = voice_units(todo, self.options.voice_group)
        # one_voice: a task's files are one --voice-group group (one normaliser); a chunk of files that share no
        # group (e.g. one file per folder) must not be scored as one voice
        one_voice = not all(len(u) == 1 for u in units)
        if not one_voice:
            pending: deque[list[str]] = deque(chunks(todo, max_files=per_group))
        else:  # --voice-group: each group is one task, its files in order on one worker thread
            pending = deque(units)
        finished: queue.Queue[Any] = queue.Queue()
        counter = itertools.count()
        lost_since: float | None = None
        while pending or self._inflight:
            stop.check()
            room = max(1, self._worker_threads()) * TASKS_PER_THREAD - len(self._inflight)
            while pending and room > 0:
                paths = pending.popleft()
                key = f"voice-monitor-score-{self.run_id}-{next(counter)}"
                absolute = [os.path.abspath(p) for p in paths]
                fut = self.client.submit(score_files, absolute, self.options, one_voice, key=key, pure=False)
                self._inflight[key] = (fut, paths)
                fut.add_done_callback(finished.put)
                room -= 1
            try:
                fut = finished.get(timeout=0.25)
            except queue.Empty:
                lost_since = self._check_scheduler(lost_since)
                continue
            entry = self._inflight.pop(fut.key, None)
            if entry is None:  # a task the scheduler reran can finish twice: its files are emitted once
                continue
            paths = entry[1]
            results = self._results(fut, paths)
            if results is None:  # the workers died on this group: its files one by one, to find the culprit
                pending.extendleft([p] for p in reversed(paths))
                continue
            for result in results:
                emit(result)

    def _check_scheduler(self, lost_since: float | None) -> float | None:
        if self.client.status == "running":
            return None
        now = time.monotonic()
        if lost_since is None:
            self.notify(f"cluster: lost the connection to the Dask scheduler at {self.spec}; reconnecting")
            return now
        if now - lost_since > LOST_SCHEDULER_S:
            raise ConfigError(
                f"lost the Dask scheduler at {self.spec} for {LOST_SCHEDULER_S:.0f} s; the rows written so far "
                "are whole: rerun with --resume once it is back"
            )
        return lost_since

    def _results(self, fut: Any, paths: list[str]) -> list[FileResult] | None:
        """The group's results with the paths as the user gave them (the workers saw absolute paths); None
        when workers died on a group of several files."""
        distributed = _distributed()
        try:
            results: list[FileResult] = fut.result()
        except WorkerInitError:
            raise
        except distributed.KilledWorker:
            if len(paths) > 1:
                return None
            results = [FileResult.failure(paths[0], f"{paths[0]}: the Dask workers scoring this file died each "
                                          "time it was tried (crash or kill)")]  # fmt: skip
        except distributed.client.FutureCancelledError:
            raise ConfigError(
                f"the Dask scheduler at {self.spec} dropped the tasks (restarted?); the rows written so far are "
                "whole: rerun with --resume"
            ) from None
        except MonitorError as exc:
            results = [FileResult.failure(p, f"{p}: {one_line(exc)}") for p in paths]
        except Exception as exc:  # e.g. results that could not be sent back: cost these files only
            why = f"internal error ({type(exc).__name__}: {one_line(exc)})"
            results = [FileResult.failure(p, f"{p}: {why}") for p in paths]
        finally:
            fut.release()
        for result, path in zip(results, paths, strict=True):
            if result.path != path:
                result.error = result.error.replace(result.path, path)
                result.path = path
        return results

    def close(self, kill: bool = False) -> None:
        client, self.client = self.client, None
        cluster, self.cluster = self.cluster, None
        futures = [f for f, _ in self._inflight.values()]
        self._inflight.clear()
        if client is not None:
            try:
                if futures:
                    client.cancel(futures)
                client.close(timeout=5 if kill else 30)
            except Exception:  # the scheduler may be gone already: nothing left to release
                pass
        if cluster is not None:
            try:
                cluster.close(timeout=5 if kill else 30)
            except Exception:
                pass
