"""The runtime package stays light: importing every ``monitor`` module and classifying a real clip with the
shipped model must not load TensorFlow, Keras, librosa or numba (a Raspberry Pi install has none of them).

Each check runs in a fresh subprocess with the project's Python, so modules the test session itself imported
do not count. A control subprocess imports a forbidden module on purpose and must be caught.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
MODEL = Path(os.environ.get("VOICE_MONITOR_TEST_MODEL", REPO / "models" / "emotion.tflite"))
FORBIDDEN = ("tensorflow", "keras", "librosa", "numba")
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable

# Runs in the subprocess. argv: model path or "" (no classification), then extra modules to import first.
# PROBE_BLOCK: comma-separated top-level modules made unimportable (to force the runtime's fallback).
PROBE = r"""
import importlib, json, os, pkgutil, sys
model, extra = sys.argv[1], sys.argv[2:]
blocked = {b for b in os.environ.get("PROBE_BLOCK", "").split(",") if b}
if blocked:
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ImportError(f"{name} blocked by the test")
            return None
    sys.meta_path.insert(0, Block())
for name in extra:
    importlib.import_module(name)
import monitor
imported = ["monitor"]
for info in pkgutil.walk_packages(monitor.__path__, "monitor."):
    importlib.import_module(info.name)
    imported.append(info.name)
result = {"imported": imported}
if os.environ.get("PROBE_RUNTIME"):
    from monitor.inference.runtime import interpreter_class
    try:
        result["runtime"] = interpreter_class()[1]
    except Exception as exc:
        result["runtime"] = f"none ({exc})"
if model:
    from monitor.audio.convert import read_audio
    from monitor.dsp.segmenter import segment_audio
    from monitor.inference.classifier import EmotionClassifier
    clf = EmotionClassifier(model)
    audio, _ = read_audio(CLIP)
    windows = segment_audio(audio)
    preds = [clf.predict(w.audio) for w in windows]
    result["runtime"] = clf.info.runtime
    result["labels"] = [p.label for p in preds]
forbidden = set(FORBIDDEN)
result["forbidden"] = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in forbidden})
print("PROBE-RESULT " + json.dumps(result))
"""


def probe(model: Path | None, extra: tuple[str, ...] = (), env_extra: dict[str, str] | None = None) -> dict:
    clip = sorted(DATA.glob("*.flac"))[0]
    code = f"CLIP = {str(clip)!r}\nFORBIDDEN = {FORBIDDEN!r}\n" + PROBE
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    env.update(env_extra or {})
    proc = subprocess.run(
        [PYTHON, "-c", code, str(model) if model else "", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"probe failed:\n{proc.stdout}\n{proc.stderr}"
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PROBE-RESULT "))
    return json.loads(line.removeprefix("PROBE-RESULT "))


def test_importing_every_monitor_module_loads_no_heavy_package() -> None:
    result = probe(None)
    expected = {
        "monitor",
        "monitor.dsp.features",
        "monitor.dsp.segmenter",
        "monitor.audio.convert",
        "monitor.inference.classifier",
        "monitor.inference.runtime",
    }
    if (REPO / "monitor" / "cli.py").exists():
        expected.add("monitor.cli")
    if (REPO / "monitor" / "analysis.py").exists():
        expected.add("monitor.analysis")
    assert expected <= set(result["imported"])
    assert result["forbidden"] == [], f"importing monitor loaded {result['forbidden']}"


def test_classifying_a_clip_with_the_shipped_model_loads_no_heavy_package() -> None:
    assert MODEL.exists(), f"the shipped model {MODEL} is missing"
    result = probe(MODEL)
    assert result["labels"], "the clip gave no window to classify"
    assert result["runtime"] in ("ai-edge-litert", "tflite-runtime"), f"classified with {result['runtime']}"
    assert result["forbidden"] == [], f"classifying loaded {result['forbidden']}"


def test_the_check_catches_a_heavy_import() -> None:
    """Control: the same probe, with librosa (which pulls numba in when used) imported on purpose."""
    result = probe(None, extra=("librosa",))
    assert "librosa" in result["forbidden"]


@pytest.mark.slow
def test_the_check_catches_a_fallback_to_tensorflow() -> None:
    """Control for the real risk: with no light TFLite runtime, monitor.inference.runtime falls back to
    TensorFlow, and the probe must see it."""
    result = probe(None, env_extra={"PROBE_BLOCK": "ai_edge_litert,tflite_runtime", "PROBE_RUNTIME": "1"})
    if result["runtime"] != "tensorflow":
        pytest.skip(f"TensorFlow is not installed here (runtime: {result['runtime']})")
    assert "tensorflow" in result["forbidden"]
