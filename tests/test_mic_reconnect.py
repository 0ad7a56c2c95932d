"""A microphone that goes away and comes back (PulseAudio killed and restarted under a running monitor)."""

from __future__ import annotations

import csv
import subprocess
import threading
import time
from datetime import datetime

import pytest
from conftest import VOICE_MONITOR, load_clip, require_pulseaudio, virtual_mic_tools
from test_live_mic import _wait_for_line

pytestmark = pytest.mark.slow


def test_monitor_survives_an_unplugged_microphone(tmp_path, clips, model_path):
    require_pulseaudio()
    folder = tmp_path / "vm"
    mic = virtual_mic_tools.start(folder)
    csv_path = tmp_path / "t.csv"
    proc = subprocess.Popen(
        VOICE_MONITOR + ["live", "--device", "pulse", "--no-dashboard", "--transcriber", "none", "--csv",
                         str(csv_path), "--duration", "20", "--model", str(model_path)],
        env=mic.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    a, b = load_clip(clips[4]), load_clip(clips[2])
    played: list[float] = []
    stop = threading.Event()
    try:
        assert _wait_for_line(proc, "listening", 30) is not None
        w = threading.Thread(target=virtual_mic_tools.play, args=(mic, [(1.0, a)], stop, played))
        w.start()
        time.sleep(6.5)
        stop.set()
        w.join()
        mic.stop()  # unplugged
        time.sleep(3)
        mic = virtual_mic_tools.start(folder)  # plugged back in
        stop = threading.Event()
        w = threading.Thread(target=virtual_mic_tools.play, args=(mic, [(3.5, b)], stop, played))
        w.start()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        stop.set()
        mic.stop()
    assert proc.returncode == 0, err
    assert "microphone reconnected" in err, err
    rows = list(csv.DictReader(csv_path.open()))
    starts = [datetime.fromisoformat(r["time"]).timestamp() for r in rows]
    assert len(played) == 2
    for t0, clip in zip(played, (a, b), strict=True):
        assert any(t0 - 0.5 <= s <= t0 + len(clip) / 16000 for s in starts), (played, starts)
