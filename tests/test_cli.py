"""The command line as a user runs it: bad input is one line before anything starts; stdin, file, demo."""

from __future__ import annotations

import csv
import os
import subprocess

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, VOICE_MONITOR, load_clip


def run(args, env=None, input=None, timeout=120):
    return subprocess.run(VOICE_MONITOR + args, capture_output=True, env=env, input=input, timeout=timeout,
                          cwd=REPO)


def assert_one_line_error(proc, *fragments):
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("voice-monitor: ")
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "listening" not in err


def no_sound_env(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    return dict(os.environ, XDG_RUNTIME_DIR=str(run_dir), PULSE_SERVER=f"unix:{tmp_path}/none")


def test_no_microphone_points_to_the_demo(tmp_path, model_path):
    proc = run(["--no-dashboard", "--model", str(model_path)], env=no_sound_env(tmp_path))
    assert_one_line_error(proc, "no microphone", "voice-monitor demo")


def test_unknown_device_lists_the_real_ones(virtual_mic, model_path):
    proc = run(["--device", "no-such-mic", "--no-dashboard", "--model", str(model_path)], env=virtual_mic.env)
    assert_one_line_error(proc, "no input device matches 'no-such-mic'", "pulse")


def test_devices_lists_the_virtual_microphone(virtual_mic):
    proc = run(["devices"], env=virtual_mic.env)
    assert proc.returncode == 0
    assert "pulse" in proc.stdout.decode()


def test_unwritable_csv(tmp_path, clips, model_path):
    for bad in ["/etc/hostname/timeline.csv", str(tmp_path)]:
        proc = run(["--file", str(clips[0]), "--no-dashboard", "--csv", bad, "--model", str(model_path)])
        assert_one_line_error(proc, "CSV")


def test_csv_with_other_columns_is_not_appended_to(tmp_path, clips, model_path):
    p = tmp_path / "old.csv"
    p.write_text("a,b,c\n1,2,3\n")
    proc = run(["--file", str(clips[0]), "--no-dashboard", "--csv", str(p), "--model", str(model_path)])
    assert_one_line_error(proc, "exists with other columns")
    assert p.read_text() == "a,b,c\n1,2,3\n"


def test_bad_config_key_and_value(tmp_path, clips, model_path):
    p = tmp_path / "c.toml"
    p.write_text("[vad]\nagressiveness = 2\n")
    proc = run(["--config", str(p), "--file", str(clips[0]), "--model", str(model_path)])
    assert_one_line_error(proc, "unknown key 'agressiveness' in [vad]")
    p.write_text("[windows]\nhop_s = -1\n")
    proc = run(["--config", str(p), "--file", str(clips[0]), "--model", str(model_path)])
    assert_one_line_error(proc, "hop_s")


def test_missing_model_and_bad_files(tmp_path, clips, model_path):
    proc = run(["--file", str(clips[0]), "--model", str(tmp_path / "none.tflite")])
    assert_one_line_error(proc, "not found")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    proc = run(["--file", str(text), "--model", str(model_path)])
    assert_one_line_error(proc, "not a readable audio file")
    proc = run(["--file", str(tmp_path / "missing.flac"), "--model", str(model_path)])
    assert_one_line_error(proc, "no such file")


def test_stdin_raw_pcm_to_csv_then_append(tmp_path, clips, model_path):
    audio = np.concatenate([np.zeros(16000, np.int16), load_clip(clips[4]), np.zeros(16000, np.int16)])
    out = tmp_path / "t.csv"
    for _ in range(2):
        proc = run(["--stdin", "--no-dashboard", "--transcriber", "none", "--csv", str(out), "--model",
                    str(model_path)], input=audio.astype("<i2").tobytes())
        assert proc.returncode == 0, proc.stderr.decode()
    rows = list(csv.reader(out.open()))
    header, body = rows[0], rows[1:]
    assert header[:8] == ["index", "utterance", "speaker", "start_s", "end_s", "time", "emotion", "confidence"]
    assert {r[2] for r in body} == {"S1"}  # speaker turns are on by default: one voice, one speaker
    assert [h for h in header if h.startswith("p_")] == [
        "p_neutral", "p_calm", "p_happy", "p_sad", "p_angry", "p_fearful", "p_disgust", "p_surprised"]
    assert header[-1] == "text"
    assert len(body) >= 2 and len(body) % 2 == 0  # both runs appended the same windows, one header
    assert body[: len(body) // 2][0][3:5] == body[len(body) // 2][3:5]
    # The headless line per window went to stdout.
    assert proc.stdout.decode().count("\n") == len(body) // 2


def test_stdin_from_a_regular_file_is_read_without_pacing_or_drops(tmp_path, clips, model_path):
    raw = tmp_path / "speech.raw"
    parts = [np.zeros(8000, np.int16)]
    for c in clips:
        parts += [load_clip(c), np.zeros(16000, np.int16)]
    raw.write_bytes(np.concatenate(parts).astype("<i2").tobytes())
    out = tmp_path / "t.csv"
    with raw.open("rb") as f:
        proc = subprocess.run(VOICE_MONITOR + ["--stdin", "--no-dashboard", "--transcriber", "none", "--csv", str(out),
                                               "--model", str(model_path)], stdin=f, capture_output=True, cwd=REPO,
                              timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "dropped windows 0" in err
    assert len(list(csv.DictReader(out.open()))) >= len(clips)


def test_file_at_another_rate_and_stereo_gives_the_same_windows(tmp_path, clips, model_path):
    audio = load_clip(clips[2])
    import soxr

    stereo44 = soxr.resample(audio.astype(np.float32) / 32768, 16000, 44100)
    wav = tmp_path / "stereo44.wav"
    sf.write(wav, np.stack([stereo44, stereo44], axis=1), 44100)
    rows = {}
    for name, path in [("orig", clips[2]), ("stereo44", wav)]:
        out = tmp_path / f"{name}.csv"
        proc = run(["--file", str(path), "--no-dashboard", "--transcriber", "none", "--csv", str(out), "--model",
                    str(model_path)])
        assert proc.returncode == 0, proc.stderr.decode()
        rows[name] = list(csv.DictReader(out.open()))
    assert len(rows["orig"]) == len(rows["stereo44"]) >= 1
    for a, b in zip(rows["orig"], rows["stereo44"], strict=True):
        assert abs(float(a["start_s"]) - float(b["start_s"])) <= 0.1


@pytest.mark.slow
def test_demo_streams_the_sample_in_real_time(model_path):
    proc = run(["demo", "--no-dashboard", "--duration", "6", "--transcriber", "none", "--model", str(model_path)])
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "file demo.flac" in err
    lines = proc.stdout.decode().splitlines()
    assert 1 <= len(lines) <= 2  # real time: only the first clip or two in 6 s
    assert "done after 6." in err or "done after 5.9" in err
