"""``voice-monitor score --cluster``: the files scored as Dask tasks (the optional ``cluster`` extra).

``--cluster tcp://HOST:PORT`` connects to a running ``dask scheduler``; ``--cluster local:N`` starts a
LocalCluster of N single-threaded worker processes on this machine. Each file is one task
(``monitor.batch.cluster_task.score_task``) that returns the same :class:`FileResult` the local pool returns;
the client turns it into rows, so the rows are the local run's. At most a few tasks per worker thread are
submitted at a time, so an archive of millions of files never sits in the scheduler at once.

Faults: a worker that dies mid-file has its task rerun elsewhere by the scheduler (a file that kills
``distributed.scheduler.allowed-failures`` + 1 workers in a row gets an error row); each path is emitted once,
whatever the scheduler reruns. No worker yet: the run waits for one and says so. The scheduler unreachable at
start, or lost for good mid-run: a one-line error (the rows written so far are whole; ``--resume`` carries on).
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
from monitor.errors import ConfigError, MonitorError

LOCAL_PREFIX = "local:"
CONNECT_TIMEOUT_S = 10.0  # scheduler unreachable at start: the error comes after this
LOST_SCHEDULER_S = 30.0  # scheduler gone mid-run for this long: stop with an error
TASKS_PER_THREAD = 2  # submitted ahead per worker thread: one running, one queued
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
        self._inflight: dict[str, tuple[Any, str]] = {}  # task key -> (future, path as given)
        self._threads = 0
        self._threads_checked = 0.0

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
        from monitor.batch.cluster_task import score_task

        if self.client is None:
            self.connect()
        self._wait_for_workers(stop)
        n = self._threads
        self.notify(
            f"scoring {len(todo)} file{'s' if len(todo) != 1 else ''} on {self.spec} "
            f"({n} worker thread{'s' if n != 1 else ''}); {SHARED_FS_NOTE}"
        )
        pending = deque(todo)
        finished: queue.Queue[Any] = queue.Queue()
        counter = itertools.count()
        lost_since: float | None = None
        while pending or self._inflight:
            stop.check()
            room = max(1, self._worker_threads()) * TASKS_PER_THREAD - len(self._inflight)
            while pending and room > 0:
                path = pending.popleft()
                key = f"voice-monitor-score-{self.run_id}-{next(counter)}"
                fut = self.client.submit(score_task, os.path.abspath(path), self.options, key=key, pure=False)
                self._inflight[key] = (fut, path)
                fut.add_done_callback(finished.put)
                room -= 1
            try:
                fut = finished.get(timeout=0.25)
            except queue.Empty:
                lost_since = self._check_scheduler(lost_since)
                continue
            entry = self._inflight.pop(fut.key, None)
            if entry is not None:  # a task the scheduler reran can finish twice: its path is emitted once
                emit(self._result(fut, entry[1]))

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

    def _result(self, fut: Any, path: str) -> FileResult:
        """The task's result with the path as the user gave it (the worker saw the absolute path)."""
        distributed = _distributed()
        absolute = os.path.abspath(path)
        try:
            result: FileResult = fut.result()
        except WorkerInitError:
            raise
        except distributed.KilledWorker:
            result = FileResult.failure(
                path, f"{path}: the Dask workers scoring this file died each time it was tried (crash or kill)"
            )
        except distributed.client.FutureCancelledError:
            raise ConfigError(
                f"the Dask scheduler at {self.spec} dropped the tasks (restarted?); the rows written so far are "
                "whole: rerun with --resume"
            ) from None
        except MonitorError as exc:
            result = FileResult.failure(path, one_line(exc))
        except Exception as exc:  # e.g. a result that could not be sent back: costs this file only
            result = FileResult.failure(path, f"{path}: internal error ({type(exc).__name__}: {one_line(exc)})")
        finally:
            fut.release()
        if result.path != path:
            result.error = result.error.replace(absolute, path)
            result.path = path
        return result

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
