"""Export a trained Keras model to a full-integer int8 .tflite plus the metadata the runtime checks.

The model file ``NAME.tflite`` and ``NAME.json`` (format ``voice-monitor-emotion/1``, labels in the order of
``monitor.labels.LABELS``, the feature parameters, the SHA-256 of the .tflite, and whatever ``extra`` adds) are
what ``monitor.inference.classifier.EmotionClassifier`` loads.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from monitor.dsp.features import FeatureParams
from monitor.inference.classifier import METADATA_FORMAT
from monitor.labels import LABELS


def to_int8_tflite(model, representative: np.ndarray, max_samples: int = 300, seed: int = 0) -> bytes:
    """Full-integer quantisation (int8 input and output) calibrated on ``representative`` features."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(representative))[:max_samples]
    samples = representative[idx].astype(np.float32)

    def gen():
        for s in samples:
            yield [s.reshape(1, *s.shape[:2], 1)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def write_model(tflite: bytes, path: Path, params: FeatureParams, extra: dict | None = None) -> dict:
    """Write ``path`` (.tflite) and its metadata ``path.with_suffix('.json')``; return the metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tflite)
    meta = {
        "format": METADATA_FORMAT,
        "labels": list(LABELS),
        "features": params.to_dict(),
        "tflite_sha256": hashlib.sha256(tflite).hexdigest(),
        "input": "int8 (1, frames, mels, 1): log_mel features in [0, 1], quantised with the input tensor's scale",
        "output": "int8 softmax probabilities over labels",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    meta.update(extra or {})
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
