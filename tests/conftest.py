"""Shared fixtures: the repository's clips, the shipped model, RAVDESS (optional), a virtual microphone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
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


@dataclass
class VirtualMic:
    fifo: Path
    env: dict[str, str]

    def writer(self):
        """Open the FIFO for writing (PulseAudio holds the read end)."""
        return open(self.fifo, "wb", buffering=0)


@pytest.fixture(scope="session")
def virtual_mic(tmp_path_factory) -> VirtualMic:
    """A PulseAudio pipe source named vmic, fed through a FIFO: a real microphone path for PortAudio."""
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        pytest.skip("pulseaudio is not installed: run scripts/setup.sh --dev (CI installs it)")
    d = tmp_path_factory.mktemp("vmic")
    run, home = d / "run", d / "home"
    run.mkdir(mode=0o700)
    home.mkdir()
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run), HOME=str(home), PULSE_SERVER=f"unix:{run}/pulse/native")
    fifo = d / "vmic.fifo"
    cmd = [
        "pulseaudio", "-D", "-n", "--exit-idle-time=-1", f"--log-target=file:{d}/pa.log",
        "-L", "module-native-protocol-unix auth-anonymous=1",
        "-L", f"module-pipe-source source_name=vmic file={fifo} format=s16le rate=16000 channels=1",
        "-L", "module-always-sink",
    ]
    subprocess.run(cmd, env=env, check=True, timeout=30)
    for _ in range(50):
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    subprocess.run(["pactl", "set-default-source", "vmic"], env=env, check=True, timeout=10)
    yield VirtualMic(fifo, env)
    subprocess.run(["pulseaudio", "--kill"], env=env, timeout=10)
