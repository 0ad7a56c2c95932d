"""Offline, real-time speech-emotion monitor (runtime package: no TensorFlow, no librosa)."""

import os

# The features' small matrix products are fastest on one BLAS thread; a threaded OpenBLAS on a busy machine
# made log_mel ~6x slower (12.6 ms instead of 1.9 ms per window). Set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from monitor.labels import LABELS  # noqa: E402

__version__ = "0.1.0"
SAMPLE_RATE = 16000

__all__ = ["LABELS", "SAMPLE_RATE", "__version__"]
