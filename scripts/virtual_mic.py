"""A virtual microphone without a sound card: a PulseAudio pipe source fed through a FIFO.

PortAudio (sounddevice) sees it as the ALSA devices ``pulse`` and ``default``. Used by the tests and the
live benchmark; also handy to try the monitor on a machine without a microphone:

    python scripts/virtual_mic.py play clip.flac [more.wav ...]   # starts the source, plays, keeps silence going

Needs Debian's pulseaudio, pulseaudio-utils and libasound2-plugins (``scripts/setup.sh --dev``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 16000
BLOCK = 320  # 20 ms


@dataclass
class VirtualMic:
    folder: Path
    fifo: Path
    env: dict[str, str]
    _stop: threading.Event = field(default_factory=threading.Event)

    def writer(self):
        """Open the FIFO for writing (PulseAudio holds the read end); never creates a plain file."""
        return os.fdopen(os.open(self.fifo, os.O_WRONLY), "wb", buffering=0)

    def stop(self) -> None:
        self._stop.set()
        subprocess.run(["pulseaudio", "--kill"], env=self.env, timeout=10, capture_output=True)


def available() -> bool:
    return shutil.which("pulseaudio") is not None and shutil.which("pactl") is not None


def start(folder: str | Path) -> VirtualMic:
    """Start a private PulseAudio daemon in ``folder`` with a pipe source ``vmic`` as the default source."""
    d = Path(folder)
    run, home = d / "run", d / "home"
    run.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.mkdir(exist_ok=True)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run), HOME=str(home), PULSE_SERVER=f"unix:{run}/pulse/native")
    fifo = d / "vmic.fifo"
    if fifo.exists():
        fifo.unlink()  # the module creates the FIFO and fails if it exists
    cmd = [
        "pulseaudio", "-D", "-n", "--exit-idle-time=-1", f"--log-target=file:{d}/pa.log",
        "-L", "module-native-protocol-unix auth-anonymous=1",
        "-L", f"module-pipe-source source_name=vmic file={fifo} format=s16le rate={RATE} channels=1",
        "-L", "module-always-sink",
    ]
    subprocess.run(cmd, env=env, check=True, timeout=30)
    for _ in range(50):
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    subprocess.run(["pactl", "set-default-source", "vmic"], env=env, check=True, timeout=10, capture_output=True)
    return VirtualMic(d, fifo, env)


def play(mic: VirtualMic, schedule: list[tuple[float, np.ndarray]], stop: threading.Event,
         played: list[float] | None = None) -> None:
    """Write silence, and each (start_s, int16 clip) of ``schedule`` at its time, in real time until ``stop``.

    ``played`` receives the wall-clock time at which each clip's first sample was written.
    """
    silence = np.zeros(BLOCK, dtype=np.int16)
    queue = sorted(schedule, key=lambda x: x[0])
    with mic.writer() as fifo:
        t0 = time.monotonic()
        sent = 0
        current: np.ndarray | None = None
        pos = 0
        while not stop.is_set():
            now_s = sent / RATE
            if current is None and queue and now_s >= queue[0][0]:
                current = queue.pop(0)[1]
                pos = 0
                if played is not None:
                    played.append(time.time() + (t0 + now_s - time.monotonic()))
            if current is not None:
                block = current[pos : pos + BLOCK]
                pos += BLOCK
                if pos >= len(current):
                    current = None
                if len(block) < BLOCK:
                    block = np.concatenate([block, silence[: BLOCK - len(block)]])
            else:
                block = silence
            fifo.write(block.astype("<i2").tobytes())
            sent += BLOCK
            delay = t0 + sent / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "play":
        print(__doc__)
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from monitor.audio.convert import read_audio

    clips = [read_audio(p)[0] for p in argv[1:]]
    schedule, t = [], 1.0
    for c in clips:
        schedule.append((t, c))
        t += len(c) / RATE + 2.0
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"voice-monitor-vmic-{os.getpid()}"
    mic = start(folder)
    print(f"virtual microphone running; in another shell:\n  export PULSE_SERVER={mic.env['PULSE_SERVER']}\n"
          "  voice-monitor --device pulse\nCtrl-C (or SIGTERM) stops.", flush=True)
    stop = threading.Event()

    def terminated(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # a service manager's or kill's SIGTERM stops the daemon as Ctrl-C does

    signal.signal(signal.SIGTERM, terminated)
    try:
        play(mic, schedule, stop)
    except KeyboardInterrupt:
        pass
    finally:
        mic.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
