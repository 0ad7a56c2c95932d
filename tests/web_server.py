"""A real ``voice-monitor serve`` process for the web tests: started on a free port (--port 0), its address
read from what it prints, stopped with SIGTERM (then SIGKILL) by its own pid."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from conftest import REPO, VOICE_MONITOR

# Live rows wait for their words up to [transcriber] text_wait_s (8 s by default), then go without them. On a
# machine shared by many jobs the recogniser's process can take longer than that to start: the tests that
# check words in live rows give it a minute (a row is still sent as soon as its words are known).
SLOW_MACHINE = "[transcriber]\ntext_wait_s = 60.0\n"


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path
    token: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_server(tmp: Path, *args: str, config: str = "", env: dict[str, str] | None = None,
                 timeout: float = 60.0, command: tuple[str, ...] = ("serve",)) -> Server:
    """``voice-monitor serve --port 0 ARGS`` (or another ``command``) with ``config`` (TOML) as its config file."""
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = tmp / "config.toml"
    cfg.write_text(config)
    log = tmp / "server.log"
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    full_env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **(env or {}))
    with log.open("wb") as out:
        proc = subprocess.Popen([*VOICE_MONITOR, *command, "--port", "0", "--config", str(cfg), *args],
                                cwd=tmp, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    url = ""
    while time.monotonic() < deadline:
        m = re.search(r"open (http://\S+)", log.read_text(errors="replace"))
        if m:
            url = m.group(1)
            break
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}):\n{log.read_text()}")
        time.sleep(0.1)
    assert url, f"the server printed no address in {timeout} s:\n{log.read_text()}"
    token = ""
    if "?token=" in url:
        url, token = url.split("?token=")
    server = Server(url, proc, log, token, full_env)
    while time.monotonic() < deadline:  # uvicorn is up once health answers
        try:
            if httpx.get(url + "api/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"the server did not answer /api/health:\n{log.read_text()}")
