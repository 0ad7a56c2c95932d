"""Training side: manifests of both RAVDESS layouts, augmentation, folds, and a tiny end-to-end training run."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from monitor.audio.convert import read_audio
from monitor.dsp.features import log_mel
from monitor.labels import LABELS

REPO = Path(__file__).resolve().parents[1]
CLIPS = sorted((REPO / "tests" / "data").glob("*.flac"))


def ravdess_dir() -> Path:
    return Path(os.environ.get("RAVDESS_DIR", REPO.parent / "shared" / "data" / "ravdess16k"))


def need_ravdess() -> Path:
    path = ravdess_dir()
    if not (path / "Actor_01").is_dir():
        pytest.skip(f"RAVDESS not found at {path}: set RAVDESS_DIR to a ravdess16k or original RAVDESS folder")
    return path


def write_original_layout(root: Path) -> list[Path]:
    """A fake original download made from the real clips: 48 kHz 16-bit WAV in Actor_XX folders."""
    import soxr

    out = []
    for clip in CLIPS:
        audio, _ = read_audio(clip)
        wav48 = soxr.resample(audio.astype(np.float32) / 32768.0, 16000, 48000)
        actor = clip.stem.split("-")[-1]
        dst = root / f"Actor_{actor}" / f"{clip.stem}.wav"
        dst.parent.mkdir(parents=True, exist_ok=True)
        sf.write(dst, wav48, 48000, subtype="PCM_16")
        out.append(dst)
    # things a real download may hold that are not speech clips: song, video, other files
    song = root / "Actor_01" / "03-02-01-01-01-01-01.wav"
    sf.write(song, np.zeros(4800, dtype=np.float32), 48000)
    (root / "Actor_01" / "notes.txt").write_text("not audio")
    return out


# --- manifests -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("nested", [True, False], ids=["Audio_Speech_Actors_01-24", "Actor_XX"])
def test_manifest_original_layout(tmp_path: Path, nested: bool) -> None:
    from training.manifest import ORIGINAL_SUBDIR, load_manifest

    base = tmp_path / ORIGINAL_SUBDIR if nested else tmp_path
    written = write_original_layout(base)
    m = load_manifest(tmp_path)
    assert m.layout == "original"
    assert sorted(c.path for c in m.clips) == sorted(written)  # song and notes left out
    assert m.actors == list(range(1, 9))
    for c in m.clips:
        code, intensity, statement, repetition, actor = (int(v) for v in c.path.stem.split("-")[2:])
        assert c.emotion == LABELS[code - 1] and c.emotion_index == code - 1
        assert c.actor == actor and c.gender == ("male" if actor % 2 else "female")
        assert c.intensity == ("normal" if intensity == 1 else "strong")
        assert (c.statement, c.repetition) == (statement, repetition)
    # the 48 kHz WAV reads as the 16 kHz clip it was made from
    audio, duration = read_audio(m.clips[0].path)
    ref, ref_duration = read_audio(CLIPS[0])
    assert abs(len(audio) - len(ref)) <= 2 and duration == pytest.approx(ref_duration, abs=1e-3)


def test_manifest_ravdess16k_layout_in_tmp(tmp_path: Path) -> None:
    from training.manifest import load_manifest

    for clip in CLIPS:
        dst = tmp_path / f"Actor_{clip.stem[-2:]}" / clip.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(clip.read_bytes())
    m = load_manifest(tmp_path)
    assert m.layout == "ravdess16k" and len(m.clips) == 8
    assert sorted(c.emotion for c in m.clips) == sorted(LABELS)


def test_manifest_ravdess16k_matches_its_csv() -> None:
    from training.manifest import load_manifest

    root = need_ravdess()
    m = load_manifest(root)
    if m.layout != "ravdess16k" or not (root / "manifest.csv").exists():
        pytest.skip(f"{root} is not the ravdess16k layout with manifest.csv")
    assert len(m.clips) == 60 * len(m.actors)
    by_path = {str(c.path.relative_to(root)): c for c in m.clips}
    with (root / "manifest.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(m.clips)
    for row in rows:
        c = by_path[row["path"]]
        assert (c.actor, c.gender, c.emotion, c.intensity) == (
            int(row["actor"]), row["gender"], row["emotion"], row["intensity"])
        assert (c.statement, c.repetition) == (int(row["statement"]), int(row["repetition"]))


@pytest.mark.parametrize("setup", ["empty", "mp3_only", "wrong_names", "missing"])
def test_wrong_folder_is_refused(tmp_path: Path, setup: str) -> None:
    from training.manifest import DatasetLayoutError, load_manifest

    root = tmp_path / "data"
    if setup != "missing":
        root.mkdir()
    if setup == "mp3_only":
        (root / "Actor_01").mkdir()
        (root / "Actor_01" / "03-01-01-01-01-01-01.mp3").write_bytes(b"x")
    if setup == "wrong_names":
        (root / "speakers" / "a").mkdir(parents=True)
        sf.write(root / "speakers" / "a" / "hello.wav", np.zeros(1600, dtype=np.float32), 16000)
    with pytest.raises(DatasetLayoutError) as err:
        load_manifest(root)
    msg = str(err.value)
    assert str(root) in msg and "expected" in msg and "Actor_XX" in msg and "\n" not in msg


def test_cli_reports_wrong_folder_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from training.train import main

    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--folds", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(tmp_path) in err and "\n" not in err


def test_parse_name_ignores_non_speech() -> None:
    from training.manifest import parse_name

    assert parse_name(Path("03-01-05-02-01-01-12.wav")).emotion == "angry"
    assert parse_name(Path("01-01-05-02-01-01-12.mp4")) is None  # audio-video
    assert parse_name(Path("03-02-05-02-01-01-12.wav")) is None  # song
    assert parse_name(Path("03-01-09-02-01-01-12.wav")) is None  # no such emotion
    assert parse_name(Path("readme.wav")) is None


# --- folds and augmentation ------------------------------------------------------------------------------------
def test_folds_hold_out_whole_actors_balanced_by_gender() -> None:
    from training.train import make_folds, validation_actors

    folds = make_folds(list(range(1, 21)), 5)
    assert sorted(a for f in folds for a in f) == list(range(1, 21))
    for i, f in enumerate(folds):
        assert len(f) == 4 and sum(a % 2 for a in f) == 2
        val = validation_actors([a for a in range(1, 21) if a not in f], i)
        assert len(val) == 2 and not set(val) & set(f) and sum(a % 2 for a in val) == 1


def test_noise_at_requested_snr() -> None:
    from training.augment import add_noise, speech_power

    rng = np.random.default_rng(0)
    audio, _ = read_audio(CLIPS[4])
    x = audio.astype(np.float32) / 32768.0
    for snr in (5.0, 20.0):
        noisy = add_noise(x, snr, rng, colour="pink")
        measured = 10 * np.log10(speech_power(x) / np.mean((noisy - x) ** 2))
        assert measured == pytest.approx(snr, abs=0.2)


def test_speed_and_pitch_and_level() -> None:
    from training.augment import AugmentOptions, augment_clip, peak_dbfs, pitch_shift, speed_perturb

    audio, _ = read_audio(CLIPS[3])
    x = audio.astype(np.float32) / 32768.0
    assert len(speed_perturb(x, 1.1)) == pytest.approx(len(x) / 1.1, abs=2)
    assert len(pitch_shift(x, 2.0)) == len(x)
    rng = np.random.default_rng(3)
    for _ in range(3):
        y, done = augment_clip(x, AugmentOptions(), rng)
        assert np.isfinite(y).all()
        assert peak_dbfs(y) == pytest.approx(done["peak_dbfs"], abs=0.06)  # recorded to 0.1 dB


def test_spec_augment_and_mixup() -> None:
    from training.augment import SpecAugmentOptions, mixup, spec_augment

    rng = np.random.default_rng(0)
    x = np.ones((16, 149, 64), dtype=np.float32)
    masked = spec_augment(x, SpecAugmentOptions(time_masks=1, max_time=10, freq_masks=1, max_freq=5), rng)
    assert masked.shape == x.shape and x.min() == 1.0  # input untouched
    zero_frac = 1 - masked.mean(axis=(1, 2))
    assert zero_frac.max() > 0 and zero_frac.max() < 0.25
    y = np.eye(8, dtype=np.float32)[rng.integers(0, 8, 16)]
    xm, ym = mixup(x, y, 0.2, rng, prob=1.0)
    np.testing.assert_allclose(ym.sum(axis=1), 1.0, atol=1e-6)
    assert (ym.max(axis=1) >= 0.5 - 1e-6).all()


def test_windows_keep_copies_with_their_actor(tmp_path: Path) -> None:
    """Augmented copies carry their clip's actor, so an actor split never puts a clip's copies on both sides."""
    from training.dataset import DatasetOptions, build_windows
    from training.manifest import load_manifest

    for clip in CLIPS[:2]:
        dst = tmp_path / "data" / f"Actor_{clip.stem[-2:]}" / clip.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(clip.read_bytes())
    m = load_manifest(tmp_path / "data")
    ws = build_windows(m, DatasetOptions(copies=2), tmp_path / "cache", log=lambda _: None)
    assert set(ws.copy.tolist()) == {0, 1, 2}
    for i, cid in enumerate(ws.clip_ids):
        actors = set(ws.actor[ws.clip == i].tolist())
        assert actors == {int(cid.split("-")[-1])}
    test = ws.where({1}, originals_only=True)
    assert set(test.copy.tolist()) == {0} and set(test.actor.tolist()) == {1}
    again = build_windows(m, DatasetOptions(copies=2), tmp_path / "cache", log=lambda _: None)
    np.testing.assert_array_equal(again.x, ws.x)  # from the cache, same values


# --- end to end ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_training_run_gives_a_loadable_int8_model(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="training needs the train extra (tensorflow-cpu)")
    root = need_ravdess()
    from monitor.inference.classifier import EmotionClassifier
    from training.train import main

    out = tmp_path / "models"
    rc = main(["--data", str(root), "--out", str(out), "--cache", str(tmp_path / "cache"), "--actors", "1,2,3",
               "--folds", "3", "--epochs", "1", "--copies", "1", "--no-baseline", "--jobs", "1",
               "--members", "2"])
    assert rc == 0
    for name in ("emotion.tflite", "emotion.json", "REPORT_RAVDESS.md", "confusion.csv", "confusion.png",
                 "cv_results.json"):
        assert (out / name).exists(), name
    results = json.loads((out / "cv_results.json").read_text())
    assert [f["test_actors"] for f in results["cv"]["folds"]] == [[1], [2], [3]]
    assert all(len(f["member_uars"]) == len(f["member_epochs"]) == 2 for f in results["cv"]["folds"])
    assert results["training"]["ensemble_members"] == 2 and results["final"]["members"] == 2
    assert results["final"]["int8_float_agreement"] > 0.5
    clf = EmotionClassifier(out / "emotion.tflite", num_threads=1)
    assert clf._interp.get_input_details()[0]["dtype"] == np.int8
    audio, _ = read_audio(CLIPS[0])
    p = clf.probabilities(log_mel(audio, clf.features))
    assert p.shape == (8,) and np.isfinite(p).all() and p.sum() == pytest.approx(1.0, abs=1e-5)
    assert clf.features.hop_length == 320 and clf.info.metadata["training"]["actors"] == [1, 2, 3]
