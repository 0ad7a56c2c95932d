"""A real Dask scheduler and workers as subprocesses on 127.0.0.1 (for the cluster tests and benchmark).

The ``dask`` command is the one beside the running Python (``scripts/setup.sh --dev`` installs the cluster
extra into .venv). Workers get PYTHONPATH pointing at this checkout, so they import the same ``monitor`` as
the client. Each process runs in its own session: killing a worker kills its nanny and its worker process,
as losing a machine would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).parent / "dask"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


class DaskProcesses:
    """``start_scheduler()``, then ``start_worker()`` as often as needed; ``close()`` ends them all."""

    def __init__(self, logs: Path, nice: int = 0) -> None:
        assert DASK.exists(), f"{DASK} is missing: install the cluster extra (scripts/setup.sh --dev)"
        self.logs = logs
        self.nice = nice
        self.address = ""
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _spawn(self, name: str, args: list[str], prefix: list[str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        cmd = [*(prefix or []), *(["nice", "-n", str(self.nice)] if self.nice else []), str(DASK), *args]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
        log.close()
        return proc

    def start_scheduler(self, timeout: float = 60) -> str:
        port = free_port()
        self.scheduler = self._spawn("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port),
                                                   "--no-dashboard"])  # fmt: skip
        self.address = f"tcp://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited: {(self.logs / 'scheduler.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return self.address
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("dask scheduler did not start listening")

    def start_worker(self, prefix: list[str] | None = None) -> subprocess.Popen[bytes]:
        name = f"worker{len(self.workers)}"
        args = ["worker", self.address, "--nthreads", "1", "--no-dashboard", "--name", name]
        proc = self._spawn(name, args, prefix)
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=timeout)

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process and everything in its session (a dask worker's nanny and worker process)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def close(self) -> None:
        for proc in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill(proc)
