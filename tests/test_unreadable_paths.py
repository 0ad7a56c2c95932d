"""Paths the user gives that cannot be inspected: one line naming the problem (or an error row), no traceback.

``Path.is_file()``/``exists()``/``is_dir()`` raise for such paths instead of returning False. chmod does not
stop root, and CI runs as root, so two kinds of test:

- paths that no user can inspect, root included: a name longer than the file system allows (ENAMETOOLONG),
  a regular file used as a folder (ENOTDIR), a symbolic link loop (ELOOP);
- folders and files that are really unreadable: with chmod as a normal user, and as root in a child process
  that drops to ``nobody`` (as tests/test_batch.py does for an unreadable file).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, VOICE_MONITOR
from test_cli import assert_one_line_error, run

from monitor.audio.sources import FileSource
from monitor.batch.discover import discover
from monitor.batch.score import FileScorer, ScoreOptions
from monitor.config import load_config
from monitor.errors import AudioError, ConfigError, ModelError, TranscriberError
from monitor.inference.classifier import EmotionClassifier
from monitor.transcription.factory import make_transcriber
from monitor.transcription.models import locate_vosk_model

KINDS = ["name too long", "file as folder", "link loop"]
REASONS = {
    "name too long": "name is too long",
    "file as folder": "a part of the path is a file",
    "link loop": "symbolic links",
}


def bad_path(kind: str, tmp_path: Path, suffix: str) -> Path:
    if kind == "name too long":
        return tmp_path / ("x" * 300 + suffix)
    if kind == "file as folder":
        (tmp_path / "somefile.txt").write_text("a file, not a folder\n")
        return tmp_path / "somefile.txt" / f"inner{suffix}"
    a, b = tmp_path / f"loop_a{suffix}", tmp_path / f"loop_b{suffix}"
    if not os.path.lexists(a):
        a.symlink_to(b)
        b.symlink_to(a)
    return a


@pytest.mark.parametrize("kind", KINDS)
def test_every_user_path_gives_a_one_line_error(kind, tmp_path, model_path) -> None:
    cases = [
        (AudioError, lambda: FileSource(bad_path(kind, tmp_path, ".wav"))),
        (ConfigError, lambda: load_config(bad_path(kind, tmp_path, ".toml"))),
        (ModelError, lambda: EmotionClassifier(bad_path(kind, tmp_path, ".tflite"))),
        (TranscriberError, lambda: locate_vosk_model(bad_path(kind, tmp_path, ""))),
        (TranscriberError, lambda: make_transcriber("vosk", bad_path(kind, tmp_path, ""))),
        (TranscriberError, lambda: make_transcriber("auto", bad_path(kind, tmp_path, ""))),
    ]
    for error, call in cases:
        with pytest.raises(error) as info:
            call()
        message = str(info.value)
        assert REASONS[kind] in message and "\n" not in message, message


def test_batch_rows_for_paths_that_cannot_be_inspected(tmp_path, model_path, clips) -> None:
    bad = [str(bad_path(k, tmp_path, ".wav")) for k in KINDS]
    found = discover([*bad, str(clips[0])])
    assert found.files == [str(clips[0])]
    assert [m.path for m in found.missing] == bad
    for m, k in zip(found.missing, KINDS, strict=True):
        assert REASONS[k] in m.error, m.error
    scorer = FileScorer(ScoreOptions(model_path=str(model_path)))
    for path, k in zip(bad, KINDS, strict=True):  # a worker handed such a path (it vanished after discovery...)
        r = scorer.score(path)
        assert r.failed and REASONS[k] in r.error and "internal error" not in r.error, r.error


def test_cli_reports_them_without_traceback(tmp_path, model_path, clips) -> None:
    long_name = bad_path("name too long", tmp_path, "")
    for flag in ("--file", "--model", "--config"):
        args = ["--file", str(clips[0]), "--no-dashboard", "--transcriber", "none", "--model", str(model_path),
                "--config", str(REPO / "config.toml")]
        args[args.index(flag) + 1] = str(long_name)
        proc = run(args)
        assert_one_line_error(proc, str(long_name), "name is too long")
    proc = run(["--file", str(clips[0]), "--no-dashboard", "--transcriber", "vosk", "--vosk-model", str(long_name),
                "--model", str(model_path)])
    assert_one_line_error(proc, "name is too long")
    for flag in ("--csv", "--csv-dir"):
        proc = run(["--file", str(clips[0]), "--no-dashboard", "--transcriber", "none", flag, str(long_name),
                    "--model", str(model_path)])
        assert_one_line_error(proc, "too long")
    loop = bad_path("link loop", tmp_path, ".wav")
    proc = subprocess.run(VOICE_MONITOR + ["score", str(loop), str(clips[0]), "--progress", "none", "--model",
                                           str(model_path)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    rows = {r["path"]: r for r in csv.DictReader(proc.stdout.splitlines())}
    assert "symbolic links" in rows[str(loop)]["error"] and rows[str(clips[0])]["error"] == ""
    proc = subprocess.run(VOICE_MONITOR + ["score", str(clips[0]), "--model", str(long_name)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "name is too long" in proc.stderr, proc.stderr


# --- really unreadable: chmod, and as root a child that drops to nobody -----------------------------------------
CHILD = r"""
import json, os, sys
from pathlib import Path
from monitor.audio.sources import FileSource
from monitor.batch.discover import discover
from monitor.config import load_config
from monitor.errors import MonitorError
from monitor.inference.classifier import EmotionClassifier
from monitor.transcription.models import locate_vosk_model

import soundfile  # noqa: F401  # imported while still root (the venv may not be readable by nobody)

base = Path(sys.argv[1])
if os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)
out = {}
locked, open_ = base / "locked", base / "open"
found = discover([str(locked), str(locked / "in.wav"), str(open_)])
out["files"] = [Path(f).name for f in found.files]
out["missing"] = [[m.path, m.error] for m in found.missing]
calls = {
    "file": lambda: FileSource(locked / "in.wav"),
    "config": lambda: load_config(locked / "c.toml"),
    "model": lambda: EmotionClassifier(locked / "m.tflite"),
    "vosk": lambda: locate_vosk_model(locked / "model"),
}
for name, call in calls.items():
    try:
        call()
        out[name] = "no error"
    except MonitorError as exc:
        out[name] = "MonitorError: " + str(exc)
    except Exception as exc:
        out[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def test_unreadable_folders_and_files(clips) -> None:
    base = Path(tempfile.mkdtemp(prefix="unreadable-"))  # not under pytest's 0700 tmp: nobody must reach it
    try:
        base.chmod(0o755)
        locked, open_ = base / "locked", base / "open"
        (locked / "model").mkdir(parents=True)
        (open_ / "sub_locked").mkdir(parents=True)
        shutil.copy(clips[0], locked / "in.wav")
        shutil.copy(clips[0], open_ / "ok.flac")
        shutil.copy(clips[0], open_ / "sub_locked" / "hidden_from_nobody.flac")
        for p in (locked, open_ / "sub_locked"):
            p.chmod(0)
        open_.chmod(0o755)
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run([sys.executable, "-c", CHILD, str(base)], capture_output=True, text=True,
                              timeout=60, env=env, cwd=base)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.splitlines()[-1])
    finally:
        for p in (base / "locked", base / "open" / "sub_locked"):
            if p.exists():
                p.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
    assert out["files"] == ["ok.flac"]
    missing = dict((Path(p).relative_to(base).as_posix(), e) for p, e in out["missing"])
    # Nothing is skipped without a row: the locked folder, the file in it, the locked subfolder of a walk.
    assert set(missing) == {"locked", "locked/in.wav", "open/sub_locked"}, missing
    assert all("permission denied" in e for e in missing.values()), missing
    for name in ("file", "config", "model", "vosk"):
        assert out[name].startswith("MonitorError: ") and "permission denied" in out[name], (name, out[name])

