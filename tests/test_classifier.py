"""The shipped model through the runtime classifier, and refusal of tampered models (no TensorFlow needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from monitor.audio.convert import read_audio
from monitor.dsp.features import FeatureParams, log_mel
from monitor.dsp.segmenter import segment_audio
from monitor.errors import ModelError
from monitor.inference.classifier import METADATA_FORMAT, EmotionClassifier, sha256_file
from monitor.labels import LABELS

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "emotion.tflite"
CLIPS = sorted((REPO / "tests" / "data").glob("*.flac"))


@pytest.fixture(scope="module")
def shipped() -> EmotionClassifier:
    assert MODEL.exists(), f"the shipped model {MODEL} is missing"
    return EmotionClassifier(MODEL, num_threads=1)


@pytest.fixture()
def model_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "emotion.tflite"
    shutil.copy(MODEL, dst)
    shutil.copy(MODEL.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def edit_metadata(path: Path, change) -> None:
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(meta))


def test_shipped_files_and_metadata() -> None:
    meta = json.loads(MODEL.with_suffix(".json").read_text())
    assert meta["format"] == METADATA_FORMAT
    assert meta["labels"] == list(LABELS)
    assert meta["tflite_sha256"] == sha256_file(MODEL)
    FeatureParams.from_dict(meta["features"])
    assert MODEL.stat().st_size < 1_000_000
    assert "RAVDESS" in meta["licence"] and "CC BY-NC-SA" in meta["licence"]


def test_int8_input_and_output(shipped: EmotionClassifier) -> None:
    inp = shipped._interp.get_input_details()[0]
    out = shipped._interp.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert tuple(inp["shape"]) == (1, *shipped.features.shape, 1)
    assert tuple(out["shape"]) == (1, len(LABELS))


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c.stem)
def test_valid_distribution_on_real_clips(shipped: EmotionClassifier, clip: Path) -> None:
    audio, _ = read_audio(clip)
    windows = segment_audio(audio)
    assert windows, f"{clip.name}: the segmenter found no speech"
    for w in windows:
        pred = shipped.predict(w.audio)
        p = np.array([pred.probabilities[label] for label in LABELS])
        assert p.shape == (8,)
        assert np.isfinite(p).all() and (p >= 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-5)
        assert pred.label in LABELS and pred.confidence == pytest.approx(p.max())
        # the int8 softmax itself already sums to ~1 (the runtime's renormalisation only removes rounding)
        raw = shipped.probabilities(log_mel(w.audio, shipped.features))
        assert raw.sum() == pytest.approx(1.0, abs=1e-5)


def test_label_order_sanity(shipped: EmotionClassifier) -> None:
    """The eight clips (one per emotion; their actors were in the training set) are mostly recognised.

    Not an accuracy figure (see models/REPORT.md for held-out speakers); it catches a scrambled label order
    or a broken export, which would leave about one clip in eight right.
    """
    right = 0
    for clip in CLIPS:
        audio, _ = read_audio(clip)
        probs = np.mean([shipped.probabilities(log_mel(w.audio, shipped.features)) for w in segment_audio(audio)],
                        axis=0)
        right += LABELS[int(np.argmax(probs))] == LABELS[int(clip.stem.split("-")[2]) - 1]
    assert right >= 5


def test_missing_metadata_is_refused(model_copy: Path) -> None:
    model_copy.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="metadata"):
        EmotionClassifier(model_copy)


def test_invalid_json_is_refused(model_copy: Path) -> None:
    model_copy.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        EmotionClassifier(model_copy)


def test_wrong_format_is_refused(model_copy: Path) -> None:
    edit_metadata(model_copy, lambda m: m.update(format="something-else/2"))
    with pytest.raises(ModelError, match="format"):
        EmotionClassifier(model_copy)


def test_missing_key_is_refused(model_copy: Path) -> None:
    edit_metadata(model_copy, lambda m: m.pop("tflite_sha256"))
    with pytest.raises(ModelError, match="incomplete metadata"):
        EmotionClassifier(model_copy)


def test_changed_model_bytes_are_refused(model_copy: Path) -> None:
    data = bytearray(model_copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        EmotionClassifier(model_copy)


def test_mismatching_checksum_is_refused(model_copy: Path) -> None:
    edit_metadata(model_copy, lambda m: m.update(tflite_sha256="0" * 64))
    with pytest.raises(ModelError, match="checksum"):
        EmotionClassifier(model_copy)


def test_wrong_feature_kind_is_refused(model_copy: Path) -> None:
    edit_metadata(model_copy, lambda m: m["features"].update(kind="mfcc-v1"))
    with pytest.raises(ModelError, match="features 'mfcc-v1'"):
        EmotionClassifier(model_copy)


def test_unknown_feature_parameter_is_refused(model_copy: Path) -> None:
    edit_metadata(model_copy, lambda m: m["features"].update(preemphasis=0.97))
    with pytest.raises(ModelError, match="incomplete metadata"):
        EmotionClassifier(model_copy)


@pytest.mark.parametrize("change", [{"n_mels": 40}, {"hop_length": 160}, {"window_s": 2.0}])
def test_wrong_feature_shape_is_refused(model_copy: Path, change: dict) -> None:
    edit_metadata(model_copy, lambda m: m["features"].update(change))
    with pytest.raises(ModelError, match="input shape"):
        EmotionClassifier(model_copy)


def test_wrong_label_count_is_refused(model_copy: Path) -> None:
    edit_metadata(model_copy, lambda m: m.update(labels=list(LABELS[:6])))
    with pytest.raises(ModelError, match="labels .* are not the monitor's labels"):
        EmotionClassifier(model_copy)


def test_not_a_tflite_is_refused(model_copy: Path) -> None:
    model_copy.write_bytes(b"not a flatbuffer at all" * 10)
    edit_metadata(model_copy, lambda m: m.update(tflite_sha256=sha256_file(model_copy)))
    with pytest.raises(ModelError, match="not a loadable TFLite model"):
        EmotionClassifier(model_copy)


def _windows_features(shipped: EmotionClassifier) -> list[np.ndarray]:
    feats = []
    for clip in CLIPS[:4]:
        audio, _ = read_audio(clip)
        feats += [log_mel(w.audio, shipped.features) for w in segment_audio(audio)]
    return feats


def test_temperature_in_the_metadata_calibrates_the_real_model(shipped: EmotionClassifier, model_copy: Path) -> None:
    """The shipped .tflite with a temperature added to a copy of its metadata (the checksum covers the .tflite
    only): softmax(log p / T) of the uncalibrated probabilities, same top label, flatter for T > 1."""
    edit_metadata(model_copy, lambda m: m.pop("temperature", None))
    uncalibrated = EmotionClassifier(model_copy)
    assert uncalibrated.temperature is None
    feats = _windows_features(shipped)
    raw = [uncalibrated.probabilities(f) for f in feats]
    step = shipped._interp.get_output_details()[0]["quantization"][0]
    for t in (1.0, 2.0, 0.5):
        edit_metadata(model_copy, lambda m, t=t: m.update(temperature=t))
        calibrated = EmotionClassifier(model_copy)
        assert calibrated.temperature == t
        for f, p in zip(feats, raw, strict=True):
            q = calibrated.probabilities(f)
            z = np.log(np.maximum(p.astype(np.float64), step / 2)) / t
            expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            assert q.sum() == pytest.approx(1.0, abs=1e-5)
            assert np.allclose(q, p if t == 1.0 else expected, atol=1e-6)
            assert int(np.argmax(q)) == int(np.argmax(p))
            if t == 2.0:
                assert q.max() < p.max() - 1e-3 or p.max() > 0.999
            if t == 0.5:
                assert q.max() > p.max() + 1e-3 or p.max() > 0.999
        pred = calibrated.predict_features(feats[0])
        assert pred.confidence == pytest.approx(float(calibrated.probabilities(feats[0]).max()))


@pytest.mark.parametrize("bad", [0, -1.5, "2", True, float("inf")])
def test_bad_temperature_is_refused(model_copy: Path, bad) -> None:
    edit_metadata(model_copy, lambda m: m.update(temperature=bad))
    with pytest.raises(ModelError, match="temperature must be a number > 0"):
        EmotionClassifier(model_copy)
