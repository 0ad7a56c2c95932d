"""Chooses the TFLite interpreter in one place: ai-edge-litert, else tflite-runtime, else tensorflow.lite."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from monitor.errors import ModelError


def interpreter_class() -> tuple[Any, str]:
    """Return (Interpreter class, name of the package that provides it)."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf  # heavy; only when nothing lighter is installed

        return tf.lite.Interpreter, "tensorflow"
    except ImportError:
        pass
    raise ModelError(
        "no TFLite runtime is installed: run `pip install ai-edge-litert` (or tflite-runtime on numpy 1.26)"
    )


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the runtime's C++ start-up chatter ("INFO: Created TensorFlow Lite XNNPACK delegate")."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def load_interpreter(model_path: str, num_threads: int = 1) -> tuple[Any, str]:
    cls, name = interpreter_class()
    try:
        with _quiet_stderr():
            interp = cls(model_path=model_path, num_threads=num_threads)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        reason = str(exc).strip().split("\n")[0]
        raise ModelError(f"{model_path}: not a loadable TFLite model ({reason})") from None
    return interp, name
