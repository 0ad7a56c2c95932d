"""`voice-monitor demo` in a real 80x24 terminal (a tmux pane), read back with capture-pane: the counters line and
the newest transcript line stay on screen during the demo, after 30 s of it, and when it ends."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from conftest import REPO

from monitor.labels import LABELS

COUNTERS = re.compile(r"windows \d+ +dropped blocks \d+ +dropped windows \d+")
# a transcript line: its start, an optional speaker (S1, S2, ...), the [emotion] tag, the words
TAGGED = re.compile(rf"(\d+\.\d)s (?:S\d+ )?\[({'|'.join(LABELS)})\] (\w.*?)\s*│?$")


def require_tmux() -> None:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is missing in CI: scripts/setup.sh --dev installs it")
        pytest.skip("tmux is not installed: run scripts/setup.sh --dev")


def tagged_lines(screen: str) -> list[tuple[float, str, str]]:
    return [(float(m[1]), m[2], m[3]) for line in screen.splitlines() if (m := TAGGED.search(line))]


def whole(screen: str) -> bool:
    """A capture may catch a redraw half done; a frame that is wrong for three captures in a row is not that."""
    return "DEMO-EXIT" in screen or (bool(COUNTERS.search(flat(screen))) and bool(tagged_lines(screen)))


def flat(screen: str) -> str:
    return " ".join(r.strip() for r in screen.splitlines())  # the counters may wrap to two rows


@pytest.mark.slow
def test_demo_in_an_80x24_terminal_keeps_counters_and_newest_line(tmp_path, model_path):
    require_tmux()
    sock = tmp_path / "tmux.sock"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
    env["TERM"] = "xterm-256color"
    demo = f"{sys.executable} -m monitor.cli demo --model {model_path}"
    tmux = ["tmux", "-S", str(sock)]
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", f"{demo}; echo DEMO-EXIT $?; sleep 120"],
                   cwd=REPO, env=env, check=True, timeout=30)
    started = time.monotonic()
    shots: list[tuple[float, str]] = []
    try:
        while time.monotonic() - started < 120:
            for _ in range(3):
                screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True, timeout=10,
                                        check=True).stdout
                if whole(screen):
                    break
                time.sleep(0.1)
            shots.append((time.monotonic() - started, screen))
            if "DEMO-EXIT" in screen:
                break
            time.sleep(0.5)
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=10)
    final = shots[-1][1]
    assert "DEMO-EXIT 0" in final, final
    running = [(t, s) for t, s in shots if "voice-monitor  device:" in s and "DEMO-EXIT" not in s]
    assert running, shots[-1][1]
    for t, screen in running:
        rows = screen.rstrip("\n").split("\n")
        assert len(rows) <= 24 and all(len(r) <= 80 for r in rows)
        assert rows[-1].strip() != "..." and "..." not in rows, screen  # nothing cut off at the bottom
        assert COUNTERS.search(flat(screen)), f"no counters line at {t:.1f} s:\n{screen}"
    with_text = [(t, s) for t, s in running if tagged_lines(s)]
    assert with_text, running[-1][1]
    during = [(t, s) for t, s in with_text if t < 20]
    after_30 = [(t, s) for t, s in with_text if t >= 30]
    assert during and after_30, [t for t, _ in with_text]
    # Once a transcript line is on screen, there is one on every later screen, and the newest one never goes
    # (the unit tests in test_dashboard_layout.py check that older lines are the ones that give way).
    first = shots.index(with_text[0])
    newest = 0.0
    for t, screen in shots[first:]:
        lines = tagged_lines(screen)
        assert lines, f"the transcript went at {t:.1f} s:\n{screen}"
        assert max(s for s, _, _ in lines) >= newest, f"an older line replaced the newest at {t:.1f} s:\n{screen}"
        newest = max(s for s, _, _ in lines)
    # When it ends, the dashboard's last frame stays above the summary: the newest line last, and the counters.
    assert tagged_lines(final)[-1][0] == newest and COUNTERS.search(flat(final)), final
