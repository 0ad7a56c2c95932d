"""What a newcomer meets first: the top-level help lists every command, each command has its own help, a
mistyped command is one line, and hints name the command the way it was typed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from test_cli import assert_one_line_error, no_sound_env, run

from monitor.commands import COMMANDS

SCRIPT = Path(sys.executable).parent / "voice-monitor"  # the console script pip installed beside the interpreter


def test_top_level_help_lists_every_command_with_one_line():
    for flag in ["--help", "-h"]:
        proc = run([flag])
        out = proc.stdout.decode()
        assert proc.returncode == 0, proc.stderr.decode()
        assert out.startswith("usage: voice-monitor [COMMAND]")
        for c in COMMANDS:
            assert f"  {c.name}  " in out and c.summary in out, c.name
        assert "--vad-mode" not in out  # the options of `live` belong to `voice-monitor live --help`


def test_each_command_shows_its_own_options():
    seen = {}
    for c in COMMANDS:
        proc = run([c.name, "--help"])
        assert proc.returncode == 0, (c.name, proc.stderr.decode())
        seen[c.name] = out = proc.stdout.decode()
        assert out.startswith(f"usage: voice-monitor {c.name}"), out[:80]
    assert "--device" in seen["live"] and "--device" not in seen["demo"]
    assert "--out" in seen["score"] and "fetch" in seen["models"]


def test_no_command_is_live_and_a_mistyped_one_is_named(clips, model_path):
    proc = run(["--file", str(clips[0]), "--no-dashboard", "--transcriber", "none", "--model", str(model_path)])
    assert proc.returncode == 0 and "done after" in proc.stderr.decode()
    proc = run(["sccore", str(clips[0])])
    assert_one_line_error(proc, "unknown command 'sccore'", "score", "voice-monitor --help")


def test_no_microphone_hint_names_the_command_as_typed(tmp_path, model_path):
    assert SCRIPT.exists(), f"{SCRIPT} is missing: scripts/setup.sh installs it"
    env = no_sound_env(tmp_path)
    path_dirs = [d for d in env.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "voice-monitor").exists()]
    typed = os.path.relpath(SCRIPT, REPO)  # e.g. .venv/bin/voice-monitor, as the README's set-up leaves it
    args = ["--no-dashboard", "--model", str(model_path)]
    proc = subprocess.run([typed, *args], cwd=REPO, capture_output=True, timeout=120,
                          env=dict(env, PATH=os.pathsep.join(path_dirs)))
    assert_one_line_error(proc, "no microphone", f"run `{typed} demo`")
    # On PATH (an activated venv), the bare name is what to type.
    proc = subprocess.run(["voice-monitor", *args], cwd=REPO, capture_output=True, timeout=120,
                          env=dict(env, PATH=os.pathsep.join([str(SCRIPT.parent), *path_dirs])))
    assert_one_line_error(proc, "no microphone", "run `voice-monitor demo`")
    # Through the interpreter (as the other tests run it), the hint still names a command that exists.
    proc = run(args, env=env)
    assert_one_line_error(proc, "no microphone", f"`{typed} demo`")
