"""Chooses the TFLite interpreter in one place: ai-edge-litert, else tflite-runtime, else tensorflow.lite."""

from __future__ import annotations

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


def load_interpreter(model_path: str, num_threads: int = 1) -> tuple[Any, str]:
    cls, name = interpreter_class()
    try:
        interp = cls(model_path=model_path, num_threads=num_threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        reason = str(exc).strip().split("\n")[0]
        raise ModelError(f"{model_path}: not a loadable TFLite model ({reason})") from None
    return interp, name
