"""Fault suite, live path: odd input files, closed and silent stdin, bad settings, a full disk at start.

Each test runs the real command (``python -m monitor.cli``) as a user would, on real files and pipes.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import VOICE_MONITOR, load_clip

LIVE = VOICE_MONITOR + ["live", "--no-dashboard", "--transcriber", "none"]


def run(args: list[str], timeout: float = 120, text: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(LIVE + args, capture_output=True, text=text, timeout=timeout, **kw)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The run failed with one line on stderr, no traceback; returns that line."""
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Fatal Python error" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def csv_rows(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


# --- 1: a float WAV -----------------------------------------------------------------------------


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE", "PCM_24"])
def test_live_file_reads_float_and_24_bit_wavs_like_int16(tmp_path, clips, model_path, subtype):
    audio = load_clip(clips[1]).astype(np.float32) / 32768.0
    wav = tmp_path / f"clip-{subtype}.wav"
    sf.write(wav, audio, 16000, subtype=subtype)
    pcm = tmp_path / "clip-16.wav"
    sf.write(pcm, audio, 16000, subtype="PCM_16")
    got, want = tmp_path / "got.csv", tmp_path / "want.csv"
    a = run(["--file", str(wav), "--csv", str(got), "--model", str(model_path)])
    b = run(["--file", str(pcm), "--csv", str(want), "--model", str(model_path)])
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    def keyed(path) -> list[tuple[str, ...]]:  # where each window is and what it says, whatever the columns
        head, *rows = csv_rows(path)
        return [tuple(r[head.index(c)] for c in ("start_s", "end_s", "emotion")) for r in rows]

    rows_got, rows_want = keyed(got), keyed(want)
    assert rows_want, "the 16-bit file gave no windows"
    assert rows_got == rows_want


# --- 11 and 6: closed and silent stdin -------------------------------------------------------------


def test_closed_stdin_is_a_one_line_error(model_path):
    proc = run(["--stdin", "--model", str(model_path)], stdin=None, timeout=60, close_fds=True,
               preexec_fn=lambda: __import__("os").close(0))
    line = one_line_error(proc)
    assert "standard input" in line and "closed" in line, line


def test_stopping_stdin_while_the_producer_is_quiet_is_clean(tmp_path, model_path):
    producer = subprocess.Popen(["sleep", "60"], stdout=subprocess.PIPE)
    try:
        proc = subprocess.Popen(LIVE + ["--stdin", "--model", str(model_path), "--csv", str(tmp_path / "t.csv")],
                                stdin=producer.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        producer.stdout.close()
        assert proc.stderr.readline().startswith("listening"), "the monitor did not start"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        producer.kill()
        producer.wait()
    assert "Fatal Python error" not in err, err
    assert proc.returncode == 0, err
    assert err.splitlines()[0].startswith("stopped after"), err


# --- 12: settings out of range -----------------------------------------------------------------


@pytest.mark.parametrize(
    "section, key, value, allowed",
    [
        ("windows", "hop_s", "0.0001", "between 0.5 and 30"),
        ("vad", "pre_pad_ms", "-240", "between 0 and 1000"),
        ("windows", "max_utterance_s", "0", "between 3 and 600"),
        ("audio", "block_ms", "100000", "between 5 and 200"),
        ("audio", "stdin_rate", "1", "between 8000 and 192000"),
        ("audio", "ring_seconds", "1e9", "between 1 and 600"),
        ("vad", "hangover_ms", "100000", "between 90 and 3000"),
        ("transcriber", "text_wait_s", "1e6", "between 0 and 600"),
        ("pipeline", "queue_windows", "1000000", "between 1 and 1000"),
    ],
)
def test_out_of_range_settings_are_one_line_errors(tmp_path, clips, section, key, value, allowed):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[{section}]\n{key} = {value}\n")
    line = one_line_error(run(["--config", str(cfg), "--file", str(clips[0])], timeout=60))
    assert f"[{section}] {key}" in line and allowed in line, line


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--stdin", "--stdin-rate", "1"], "--stdin-rate"),
        (["--stdin", "--stdin-channels", "0"], "--stdin-channels"),
        (["--hop", "0.0001"], "--hop"),
        (["--threads", "0"], "--threads"),
    ],
)
def test_out_of_range_flags_are_one_line_errors(clips, flags, named):
    if "--stdin" not in flags:
        flags = flags + ["--file", str(clips[0])]
    line = one_line_error(run(flags, timeout=60, stdin=subprocess.DEVNULL))
    assert named in line and "between" in line, line


# --- 3: the disk is already full -----------------------------------------------------------------


def test_csv_on_a_full_device_at_start_is_a_one_line_error(clips, model_path):
    line = one_line_error(run(["--file", str(clips[0]), "--csv", "/dev/full", "--model", str(model_path)]))
    assert "/dev/full" in line and "disk is full" in line, line


# --- kill -9 of live: the CSV holds whole rows, and the next run appends to it ----------------------------


def test_kill_9_of_live_leaves_whole_rows_and_the_next_run_appends(tmp_path, clips, model_path):
    speech = np.concatenate([np.concatenate([load_clip(c), np.zeros(8000, np.int16)]) for c in clips])
    out = tmp_path / "t.csv"
    args = ["--stdin", "--csv", str(out), "--model", str(model_path)]
    proc = subprocess.Popen(LIVE + args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 6):
            proc.stdin.write(speech[:32000].astype("<i2").tobytes())  # 2 s at a time, faster than real time
            proc.stdin.flush()
            speech = np.roll(speech, -32000)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = csv_rows(out)
    assert len(before) >= 6 and all(len(r) == len(before[0]) for r in before), before
    again = run(args, input=np.concatenate([load_clip(clips[0]), np.zeros(16000, np.int16)]).astype("<i2")
                .tobytes(), text=False)
    assert again.returncode == 0, again.stderr
    after = csv_rows(out)
    assert after[: len(before)] == before and len(after) > len(before)
    assert all(len(r) == len(after[0]) for r in after) and after.count(after[0]) == 1
