"""Offline, real-time speech-emotion monitor (runtime package: no TensorFlow, no librosa)."""

from monitor.labels import LABELS

__version__ = "0.1.0"
SAMPLE_RATE = 16000

__all__ = ["LABELS", "SAMPLE_RATE", "__version__"]
