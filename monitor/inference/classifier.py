"""The runtime emotion classifier: a quantised TFLite model plus its metadata contract.

A model is two files side by side: ``NAME.tflite`` and ``NAME.json``. The metadata names the labels, the
feature parameters (``monitor.dsp.features.FeatureParams``) and the SHA-256 of the .tflite it describes. The
classifier refuses, with a one-line ModelError, a model whose metadata is missing, malformed, made for other
features or another file, or whose tensors do not match.

Optional metadata keys: ``"temperature": T`` (a number > 0, fitted on validation folds) calibrates the
confidence: the probabilities become ``softmax(log(p) / T)``, which is temperature scaling of the logits since
the int8 model outputs a softmax (T > 1 flattens, T < 1 sharpens; the most probable label never changes).
``"affect"``: the model's own arousal/valence coordinates per label (``monitor.affect``).
``"normalisation"``: the population's band profile for speaker/session normalisation
(``monitor.inference.normalise``); a model without it is scored on raw features.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.affect import AffectMap
from monitor.dsp.features import FeatureParams, log_mel
from monitor.dsp.functionals import NAMES as FUNCTIONAL_NAMES
from monitor.errors import ModelError
from monitor.inference.normalise import NormParams
from monitor.inference.prosody import RETRAIN_PROSODY, RETRAIN_VOICE, ProsodyHead
from monitor.inference.runtime import load_interpreter
from monitor.labels import LABELS
from monitor.paths import FILE, MISSING, access_problem, path_kind

METADATA_FORMAT = "voice-monitor-emotion/1"
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "emotion.tflite"


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    labels: tuple[str, ...]
    features: FeatureParams
    metadata: dict
    runtime: str


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probabilities: dict[str, float]
    arousal: float = 0.0
    valence: float = 0.0


def read_temperature(meta: dict) -> float | None:
    """The metadata's ``temperature`` (None if absent); ValueError unless it is a number > 0."""
    t = meta.get("temperature")
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < float("inf"):
        raise ValueError(f"temperature must be a number > 0, not {t!r}")
    return float(t)


def metadata_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def prosody_path(model_path: Path) -> Path:
    """The prosody head beside a model: ``emotion.tflite`` -> ``emotion.prosody.json``."""
    return model_path.with_suffix(".prosody.json")


def voice_head_path(model_path: Path) -> Path:
    """The voice head beside a model: ``emotion.tflite`` -> ``emotion.voice.json``."""
    return model_path.with_suffix(".voice.json")


def load_prosody_head(model_path: Path, labels: tuple[str, ...], emotion_sha256: str,
                      voice: bool = False) -> ProsodyHead | None:
    """The model's prosody head (``monitor.inference.prosody``; ``voice``: its voice head, which also reads the
    speaker encoder's states), or None when it has none. ``emotion_sha256``: the model's checksum from its metadata (a
    head records the model it was calibrated on)."""
    path = voice_head_path(model_path) if voice else prosody_path(model_path)
    if not path.exists():
        return None
    head = ProsodyHead.load(path, labels, FUNCTIONAL_NAMES, voice)
    # its weights and temperatures were chosen on this emotion model's outputs: another model needs its own
    if head.emotion_sha256 and head.emotion_sha256 != emotion_sha256:
        raise ModelError(f"{path}: made for another emotion model than {model_path.name} (checksum differs); "
                         f"retrain it ({RETRAIN_VOICE if voice else RETRAIN_PROSODY}) or delete it to judge "
                         f"{'with the prosody head instead' if voice else 'without it'}")
    return head


def sha256_file(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelError(f"model {path}: cannot read it: {access_problem(exc)}") from None


def check_model_path(path: Path) -> None:
    """ModelError (one line) unless ``path`` names an accessible model file."""
    try:
        kind = path_kind(path)
    except OSError as exc:
        raise ModelError(f"model {path}: cannot access it: {access_problem(exc)}") from None
    if kind == MISSING:
        raise ModelError(f"model {path} not found: set [model] path in config.toml or pass --model")
    if kind != FILE:
        raise ModelError(f"model {path} is not a file: pass --model FILE.tflite")


def read_metadata(model_path: Path) -> dict:
    meta_path = metadata_path(model_path)
    try:
        kind = path_kind(meta_path)
        text = meta_path.read_text() if kind == FILE else None
    except OSError as exc:
        raise ModelError(f"{meta_path}: cannot read the model's metadata: {access_problem(exc)}") from None
    if text is None:
        raise ModelError(f"{model_path}: metadata {meta_path.name} is missing; re-export the model (training.train)")
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{meta_path}: not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != METADATA_FORMAT:
        raise ModelError(f"{meta_path}: metadata format is not {METADATA_FORMAT!r}; re-export the model")
    check_labels(meta.get("labels"), meta_path)
    return meta


def check_labels(labels: object, meta_path: Path) -> None:
    """ModelError unless ``labels`` are monitor.labels.LABELS in the order the models are trained with: the
    checksum covers only the .tflite, and reversed or renamed labels would mislabel every window."""
    if labels == list(LABELS):
        return
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        found = "not a list of label names"
    elif sorted(labels) == sorted(LABELS):
        found = "the right names in another order"
    else:
        found = f"{', '.join(labels[:8])}{', ...' if len(labels) > 8 else ''}"
    raise ModelError(
        f"{meta_path}: its labels ({found}) are not the monitor's labels in the trained order "
        f"({', '.join(LABELS)}); re-export the model (training.train)"
    )


class EmotionClassifier:
    """Loads a model once; ``predict(window_audio)`` and ``predict_features(x)`` are thread-safe."""

    def __init__(self, model_path: str | Path | None = None, num_threads: int = 1) -> None:
        path = Path(model_path) if model_path else DEFAULT_MODEL
        check_model_path(path)
        meta = read_metadata(path)
        try:
            labels = tuple(str(x) for x in meta["labels"])
            features = FeatureParams.from_dict(meta["features"])
            expected_sha = str(meta["tflite_sha256"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{metadata_path(path)}: incomplete metadata ({exc}); re-export the model") from None
        try:
            self.temperature = read_temperature(meta)
            self.affect = AffectMap.from_metadata(meta, labels)
        except ValueError as exc:
            raise ModelError(f"{metadata_path(path)}: {exc}; fix or re-export the metadata") from None
        if features.kind != FeatureParams.kind:
            raise ModelError(
                f"{path}: made for features {features.kind!r}, this monitor computes {FeatureParams.kind!r}"
            )
        if sha256_file(path) != expected_sha:
            raise ModelError(f"{path}: the .tflite does not match its metadata (checksum differs); re-export both")
        self._interp, runtime = load_interpreter(str(path), num_threads)
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        shape = tuple(int(v) for v in inp["shape"])
        if shape[1:3] != features.shape:
            raise ModelError(f"{path}: input shape {shape} does not match the metadata's features {features.shape}")
        if int(out["shape"][-1]) != len(labels):
            raise ModelError(f"{path}: {out['shape'][-1]} outputs but {len(labels)} labels in the metadata")
        try:
            self.norm = NormParams.from_metadata(meta, features.n_mels)
        except ValueError as exc:
            raise ModelError(f"{metadata_path(path)}: {exc}; fix or re-export the metadata") from None
        self._in_index = inp["index"]
        self._out_index = out["index"]
        self._in_dtype = inp["dtype"]
        self._in_scale, self._in_zero = inp["quantization"]
        self._out_scale, self._out_zero = out["quantization"]
        self._in_shape = shape
        self._lock = threading.Lock()
        self.info = ModelInfo(path, labels, features, meta, runtime)
        self.prosody = load_prosody_head(path, labels, expected_sha)
        self.voice_head = load_prosody_head(path, labels, expected_sha, voice=True)  # used with speaker turns

    @property
    def labels(self) -> tuple[str, ...]:
        return self.info.labels

    @property
    def features(self) -> FeatureParams:
        return self.info.features

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        if self._in_dtype == np.float32 or not self._in_scale:
            return x.astype(self._in_dtype)
        info = np.iinfo(self._in_dtype)
        q = np.round(x / self._in_scale + self._in_zero)
        return np.clip(q, info.min, info.max).astype(self._in_dtype)

    def probabilities(self, feats: np.ndarray) -> np.ndarray:
        """Features of shape ``features.shape`` -> probabilities for every label (sums to 1)."""
        x = self._quantize(np.asarray(feats, dtype=np.float32).reshape(self._in_shape))
        with self._lock:
            self._interp.set_tensor(self._in_index, x)
            self._interp.invoke()
            raw = self._interp.get_tensor(self._out_index)[0]
        if self._out_scale:
            p = (raw.astype(np.float32) - self._out_zero) * self._out_scale
        else:
            p = raw.astype(np.float32)
        p = np.clip(p, 0.0, None)
        total = float(p.sum())
        p = p / total if total > 0 else np.full(len(p), 1.0 / len(p), dtype=np.float32)
        if self.temperature is not None and self.temperature != 1.0:
            p = self._calibrate(p)
        return p

    def _calibrate(self, p: np.ndarray) -> np.ndarray:
        """softmax(log(p) / T). An int8 output of 0 means p below half a quantisation step: taken as that."""
        floor = 0.5 * self._out_scale if self._out_scale else 1e-6
        z = np.log(np.maximum(p.astype(np.float64), floor)) / self.temperature
        e = np.exp(z - z.max())
        return (e / e.sum()).astype(np.float32)

    def predict_features(self, feats: np.ndarray) -> Prediction:
        return self.prediction(self.probabilities(feats))

    def prediction(self, p: np.ndarray) -> Prediction:
        """Probabilities for every label -> the label, its confidence, arousal and valence."""
        best = int(np.argmax(p))
        probabilities = dict(zip(self.labels, map(float, p), strict=True))
        arousal, valence = self.affect.of(probabilities)
        return Prediction(self.labels[best], float(p[best]), probabilities, arousal, valence)

    def predict(self, audio: np.ndarray) -> Prediction:
        """16 kHz mono audio of one window (padded or cut to the window by the features)."""
        return self.predict_features(log_mel(audio, self.features))
