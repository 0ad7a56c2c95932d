"""A microphone that goes away and comes back (PulseAudio killed and restarted under a running monitor).

Headless, as the Raspberry Pi service runs: "microphone lost" and "microphone reconnected" lines come at once,
the audio lost is counted in the summary, and the CSV marks the gap with a row (issue 18, defect 8).
"""

from __future__ import annotations

import csv
import re
import subprocess
import threading
import time
from datetime import datetime

import pytest
from conftest import VOICE_MONITOR, load_clip, require_pulseaudio, virtual_mic_tools
from test_live_mic import _wait_for_line
from test_live_mic_faults import Lines

pytestmark = pytest.mark.slow


def test_monitor_survives_an_unplugged_microphone(tmp_path, clips, model_path):
    require_pulseaudio()
    folder = tmp_path / "vm"
    mic = virtual_mic_tools.start(folder)
    csv_path = tmp_path / "t.csv"
    proc = subprocess.Popen(
        VOICE_MONITOR + ["live", "--device", "pulse", "--no-dashboard", "--transcriber", "none", "--csv",
                         str(csv_path), "--duration", "22", "--model", str(model_path)],
        env=mic.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    a, b = load_clip(clips[4]), load_clip(clips[2])
    played: list[float] = []
    stop = threading.Event()
    try:
        assert _wait_for_line(proc, "listening", 30) is not None
        lines = Lines(proc)
        w = threading.Thread(target=virtual_mic_tools.play, args=(mic, [(1.0, a)], stop, played))
        w.start()
        time.sleep(6.5)
        stop.set()
        w.join()
        unplugged = time.time()
        mic.stop()
        time.sleep(4)
        mic = virtual_mic_tools.start(folder)
        replugged = time.time()
        stop = threading.Event()
        w = threading.Thread(target=virtual_mic_tools.play, args=(mic, [(3.0, b)], stop, played))
        w.start()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        stop.set()
        mic.stop()
    err = lines.join()
    assert proc.returncode == 0, err
    lost, back = lines.first("microphone lost"), lines.first("microphone reconnected")
    assert lost is not None and back is not None, err
    assert unplugged < lost < unplugged + 6, "the 'microphone lost' line came late"
    assert replugged - 1 < back < replugged + 8 and lost < back, err
    assert re.search(r"^\d\d:\d\d:\d\d voice-monitor: microphone lost", err, re.M), err
    # The CSV marks the gap, and the summary counts it, about as long as the microphone was away.
    rows = list(csv.DictReader(csv_path.open()))
    gaps = [r for r in rows if r["index"] == ""]
    assert len(gaps) == 1, rows
    seconds = float(re.search(r"no audio for ([\d.]+) s", gaps[0]["text"]).group(1))
    assert replugged - unplugged - 1 < seconds < replugged - unplugged + 6, (seconds, replugged - unplugged)
    gap_wall = datetime.fromisoformat(gaps[0]["time"]).timestamp()
    assert unplugged - 1 < gap_wall < unplugged + 4, "the gap row is not where the microphone went away"
    assert f"audio lost {seconds:.1f} s in 1 gaps" in err, err
    # Both clips, before and after the gap, have windows where they were played.
    starts = [datetime.fromisoformat(r["time"]).timestamp() for r in rows if r["index"] != ""]
    assert len(played) == 2
    for t0, clip in zip(played, (a, b), strict=True):
        assert any(t0 - 0.5 <= s <= t0 + len(clip) / 16000 for s in starts), (played, starts)
