"""Speaker/session normalisation (monitor.inference.normalise): the shrinkage, the frames it leaves alone, the
speaker profile within the session, the metadata contract, and `--normalise on|off` in `score` and `live`.
Real clips, real features, the real TFLite model (a copy whose metadata carries a normalisation entry)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import load_clip
from test_cli import run

from monitor.dsp.features import log_mel
from monitor.dsp.segmenter import segment_audio
from monitor.errors import ModelError
from monitor.inference.classifier import EmotionClassifier
from monitor.inference.normalise import ACTIVE, NormParams, SessionNormaliser, band_profile, shift


@pytest.fixture(scope="module")
def windows(clips, classifier) -> list[np.ndarray]:
    """Features of the windows of the eight test clips (eight RAVDESS actors' voices)."""
    out = []
    for c in clips:
        for w in segment_audio(load_clip(c)):
            out.append(log_mel(w.audio, classifier.features))
    assert len(out) >= 8
    return out


@pytest.fixture(scope="module")
def population(windows) -> NormParams:
    meta = json.loads(Path(EmotionClassifier().info.path).with_suffix(".json").read_text())
    if "normalisation" in meta:
        return NormParams.from_metadata(meta, windows[0].shape[1])
    return NormParams(np.mean([band_profile(w) for w in windows], axis=0).astype(np.float32), 4.0)


def test_one_window_moves_a_fifth_of_the_way_then_more_as_more_is_heard(windows, population):
    norm = SessionNormaliser(population)
    g = population.global_mean
    first = windows[0]
    out = norm.normalise(first)
    expected = 0.2 * (band_profile(first) - g)  # n / (n + 4) with n = 1
    np.testing.assert_allclose(norm.offset(), expected, atol=1e-6)
    np.testing.assert_allclose(out, shift(first, expected), atol=1e-6)
    heard = [first]
    for _ in range(40):  # the same voice again and again: the correction grows towards the whole difference
        norm.normalise(windows[0])
        heard.append(windows[0])
    full = band_profile(first) - g
    np.testing.assert_allclose(norm.offset(), 41 / 45 * full, atol=1e-5)
    assert norm.windows() == 41


def test_frames_without_sound_are_left_alone_and_values_stay_in_range(windows, population):
    w = windows[0].copy()
    w[-30:] = 0.0  # the zero padding of a short window
    offset = np.full(w.shape[1], -0.5, dtype=np.float32)  # a large shift up
    out = shift(w, offset)
    assert np.all(out[-30:] == 0.0)
    active = w.max(axis=1) > ACTIVE
    assert active.sum() > 50
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.all(out[active] >= w[active])
    assert band_profile(np.zeros_like(w)) is None  # silence teaches nothing
    norm = SessionNormaliser(population)
    norm.normalise(np.zeros_like(w))
    assert norm.windows() == 0


def test_a_new_speaker_starts_from_the_session_not_from_nothing(windows, population):
    norm = SessionNormaliser(population)
    for w in windows[:6]:
        norm.normalise(w, "S1")
    session = norm.offset()
    assert np.abs(session).max() > 0.0
    # A second speaker's first window: its own profile at a fifth, the session's for the rest.
    s2 = windows[-1]
    norm.normalise(s2, "S2")
    sess_mean = norm.offset("") + population.global_mean  # the session now includes S2's window
    expected = 0.2 * band_profile(s2) + 0.8 * sess_mean - population.global_mean
    np.testing.assert_allclose(norm.offset("S2"), expected, atol=1e-5)
    assert norm.windows("S2") == 1 and norm.windows("S1") == 6 and norm.windows() == 7
    assert not np.allclose(norm.offset("S1"), norm.offset("S2"))


def _model_with(tmp_path: Path, model_path: Path, entry) -> Path:
    dst = tmp_path / "model" / "emotion.tflite"
    dst.parent.mkdir(exist_ok=True)
    shutil.copy(model_path, dst)
    meta = json.loads(model_path.with_suffix(".json").read_text())
    if entry is None:
        meta.pop("normalisation", None)
    else:
        meta["normalisation"] = entry
    dst.with_suffix(".json").write_text(json.dumps(meta))
    return dst


@pytest.mark.parametrize("entry, says", [
    ({"global_mean": [0.5] * 3, "prior_windows": 4}, "global_mean must be 64 numbers"),
    ({"global_mean": [0.5] * 64, "prior_windows": 0}, "prior_windows must be a number > 0"),
    ("yes", "normalisation must be a table"),
])
def test_a_malformed_entry_is_refused_in_one_line(tmp_path, model_path, clips, entry, says):
    path = _model_with(tmp_path, model_path, entry)
    with pytest.raises(ModelError) as e:
        EmotionClassifier(path)
    assert says in str(e.value) and "\n" not in str(e.value)
    proc = run(["score", str(clips[0]), "--model", str(path), "--transcriber", "none"])
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err and says in err, err


def _windows_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def test_score_normalises_each_file_on_its_own_and_off_is_the_raw_model(tmp_path, clips, model_path, population):
    import soundfile as sf

    # One file of four clips of one actor's session (two of them twice), another of a single clip.
    long = tmp_path / "session.wav"
    sf.write(long, np.concatenate([load_clip(c) for c in (clips[1], clips[2], clips[1], clips[2])]), 16000)
    short = tmp_path / "single.wav"
    sf.write(short, load_clip(clips[3]), 16000)
    normed = _model_with(tmp_path, model_path, population.to_metadata())
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(normed, raw / "emotion.tflite")
    meta = json.loads(normed.with_suffix(".json").read_text())
    meta.pop("normalisation")
    (raw / "emotion.json").write_text(json.dumps(meta))
    rows = {}
    for name, model, flag in (("on", normed, "on"), ("off", normed, "off"), ("raw", raw / "emotion.tflite", "on")):
        win = tmp_path / f"win-{name}.csv"
        proc = run(["score", str(long), str(short), "--model", str(model), "--transcriber", "none",
                    "--speakers", "off", "--normalise", flag, "-j", "1", "--out", str(tmp_path / f"{name}.csv"),
                    "--windows", str(win), "--baseline", "off"])  # each file alone (tests/test_baseline.py: the run's)
        assert proc.returncode == 0, proc.stderr.decode()
        rows[name] = _windows_csv(win)
    probs = [c for c in rows["on"][0] if c.startswith("p_")]
    assert probs

    def table(name):
        return np.array([[float(r[c]) for c in probs] for r in rows[name]])

    # Off is exactly the model without normalisation: today's behaviour.
    np.testing.assert_allclose(table("off"), table("raw"), atol=1e-6)
    on, off = table("on"), table("off")
    assert on.shape == off.shape and len(on) >= 5
    changed = np.abs(on - off).max(axis=1)
    assert changed.max() > 0.01  # normalisation changes what the model says
    # Each file is its own session: recomputing it here by hand for the second file's first window gives the same
    # window features as the monitor used (a file's first window is shifted by a fifth of its own difference).
    clf = EmotionClassifier(normed)
    first_short = [i for i, r in enumerate(rows["on"]) if r["path"].endswith("single.wav")][0]
    w = segment_audio(load_clip(clips[3]))[0]
    feats = log_mel(w.audio, clf.features)
    expect = clf.probabilities(shift(feats, 0.2 * (band_profile(feats) - population.global_mean)))
    np.testing.assert_allclose(on[first_short], expect, atol=2e-3)


def test_live_normalise_flag(tmp_path, clips, model_path, population):
    normed = _model_with(tmp_path, model_path, population.to_metadata())
    out = {}
    for flag in ("on", "off"):
        csv_path = tmp_path / f"live-{flag}.csv"
        proc = run(["--file", str(clips[2]), "--no-dashboard", "--transcriber", "none", "--speakers", "off",
                    "--model", str(normed), "--normalise", flag, "--csv", str(csv_path)])
        assert proc.returncode == 0, proc.stderr.decode()
        out[flag] = _windows_csv(csv_path)
    assert len(out["on"]) == len(out["off"]) >= 1
    a = [float(r["confidence"]) for r in out["on"]]
    b = [float(r["confidence"]) for r in out["off"]]
    assert a != b


def test_the_dashboard_says_how_well_it_knows_the_voice(classifier, clips, tmp_path, model_path, population):
    from rich.console import Console

    from monitor.analysis import WindowAnalyzer
    from monitor.sinks.dashboard import Dashboard

    normed = EmotionClassifier(_model_with(tmp_path, model_path, population.to_metadata()))
    analyzer = WindowAnalyzer(normed)
    events = [analyzer.analyze(w) for c in clips[:3] for w in segment_audio(load_clip(c))]
    assert [round(e.adapted, 3) for e in events[:3]] == [0.2, 0.333, 0.429]  # n / (n + 4)
    assert WindowAnalyzer(normed, normalise=False).analyze(segment_audio(load_clip(clips[0]))[0]).adapted == -1.0
    dash = Dashboard(list(normed.labels), "test", "emotion.tflite", "none")
    for e in events:
        dash.on_event(e)
    console = Console(width=120, height=40, record=True, file=open(tmp_path / "screen.txt", "w"))
    console.print(dash.render())
    assert f"voice known {events[-1].adapted:.0%}" in console.export_text()
