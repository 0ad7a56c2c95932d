"""Shared fixtures: the repository's clips, the shipped model, RAVDESS (optional), a virtual microphone."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import virtual_mic as virtual_mic_tools  # noqa: E402

DATA = REPO / "tests" / "data"
SHIPPED_MODEL = Path(os.environ.get("VOICE_MONITOR_TEST_MODEL", REPO / "models" / "emotion.tflite"))
VOICE_MONITOR = [sys.executable, "-m", "monitor.cli"]


def ravdess_dir() -> Path:
    return Path(os.environ.get("RAVDESS_DIR", REPO.parent / "shared" / "data" / "ravdess16k"))


@pytest.fixture(scope="session")
def clips() -> list[Path]:
    files = sorted(DATA.glob("*.flac"))
    assert len(files) == 8, "tests/data must hold the eight RAVDESS clips"
    return files


@pytest.fixture(scope="session")
def model_path() -> Path:
    assert SHIPPED_MODEL.exists(), f"the shipped model {SHIPPED_MODEL} is missing"
    return SHIPPED_MODEL


@pytest.fixture(scope="session")
def classifier(model_path):
    from monitor.inference.classifier import EmotionClassifier

    return EmotionClassifier(model_path)


@pytest.fixture(scope="session")
def ravdess() -> Path:
    d = ravdess_dir()
    if not (d / "Actor_01").is_dir():
        pytest.skip(f"RAVDESS not found at {d}: set RAVDESS_DIR to a ravdess16k folder to run this test")
    return d


def load_clip(path: Path) -> np.ndarray:
    from monitor.audio.convert import read_audio

    return read_audio(path)[0]


def require_pulseaudio() -> None:
    """Skip without PulseAudio (an outside resource), but fail in CI, which must install it."""
    if not virtual_mic_tools.available():
        if os.environ.get("CI"):
            pytest.fail("pulseaudio is missing in CI: scripts/setup.sh --dev installs it")
        pytest.skip("pulseaudio is not installed: run scripts/setup.sh --dev")


@pytest.fixture(scope="session")
def virtual_mic(tmp_path_factory):
    """A PulseAudio pipe source named vmic, fed through a FIFO: a real microphone path for PortAudio."""
    require_pulseaudio()
    mic = virtual_mic_tools.start(tmp_path_factory.mktemp("vmic"))
    yield mic
    mic.stop()
