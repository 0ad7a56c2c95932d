"""``scripts/virtual_mic.py play``, the virtual microphone a user can try the monitor with: stopped by SIGTERM (a
service manager, ``kill``) as by Ctrl-C, its private PulseAudio daemon goes with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import require_pulseaudio

REPO = Path(__file__).resolve().parents[1]


def _daemon_answers(env: dict[str, str]) -> bool:
    return subprocess.run(["pactl", "info"], env=env, capture_output=True, timeout=10).returncode == 0


def test_sigterm_stops_the_daemon_too(tmp_path):
    require_pulseaudio()
    clip = sorted((REPO / "tests" / "data").glob("*.flac"))[0]
    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "virtual_mic.py"), "play", str(clip)],
                            env=env, stdout=subprocess.PIPE, text=True)
    client: dict[str, str] | None = None
    try:
        first = proc.stdout.readline()
        assert first.startswith("virtual microphone running"), first
        server = proc.stdout.readline().split("PULSE_SERVER=", 1)[1].strip()
        run = Path(server.removeprefix("unix:")).parent.parent
        client = dict(os.environ, PULSE_SERVER=server, XDG_RUNTIME_DIR=str(run))
        assert _daemon_answers(client)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while _daemon_answers(client) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _daemon_answers(client), "the PulseAudio daemon outlived the script"
    finally:
        if proc.poll() is None:
            proc.kill()
        if client is not None:  # a failed run must not leave its daemon behind
            subprocess.run(["pulseaudio", "--kill"], env=client, capture_output=True, timeout=10)
