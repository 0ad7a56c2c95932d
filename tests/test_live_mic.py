"""End to end on the real PortAudio path: RAVDESS clips played into a virtual microphone, the monitor
running headless as a user would start it, the CSV timeline checked against where the clips were played."""

from __future__ import annotations

import csv
import re
import subprocess
import threading
from datetime import datetime

import numpy as np
import pytest
from conftest import VOICE_MONITOR, load_clip, virtual_mic_tools

from monitor.dsp.segmenter import segment_audio

pytestmark = pytest.mark.slow

def _wait_for_line(proc: subprocess.Popen, prefix: str, timeout: float) -> str | None:
    """Read stderr lines until one starts with ``prefix`` (None on timeout or exit)."""
    found: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            if line.startswith(prefix):
                found.append(line)
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    return found[0] if found else None


def test_virtual_microphone_end_to_end(virtual_mic, clips, tmp_path, model_path):
    chosen = [clips[1], clips[4], clips[6]]
    audio = [load_clip(p) for p in chosen]
    starts = [2.0, 9.0, 16.0]  # seconds after the stream opens
    csv_path = tmp_path / "timeline.csv"
    proc = subprocess.Popen(
        VOICE_MONITOR + ["live", "--device", "pulse", "--no-dashboard", "--transcriber", "none",
                         "--csv", str(csv_path), "--duration", "23", "--model", str(model_path)],
        env=virtual_mic.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # Start writing only once the stream is open (the FIFO buffers ~2 s while nobody reads).
    stop = threading.Event()
    played: list[float] = []
    schedule = list(zip(starts, audio, strict=True))
    writer = threading.Thread(target=virtual_mic_tools.play, args=(virtual_mic, schedule, stop, played))
    try:
        first = _wait_for_line(proc, "listening", timeout=30)
        assert first is not None, "the monitor did not start listening"
        writer.start()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        stop.set()
        if writer.is_alive():
            writer.join()
    assert proc.returncode == 0, err
    assert len(played) == 3
    assert re.search(r"dropped blocks 0, dropped windows 0", err), err

    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert rows, "no windows in the CSV"
    starts_wall = [datetime.fromisoformat(r["time"]).timestamp() for r in rows]
    # The same stream, segmented offline: where the windows must be.
    origin = played[0] - starts[0]  # wall-clock time of stream sample 0 of the writer
    signal = np.zeros(int(23 * 16000), dtype=np.int16)
    for s, a in zip(starts, audio, strict=True):
        signal[int(s * 16000) : int(s * 16000) + len(a)] = a
    expected = [origin + w.start_s for w in segment_audio(signal)]
    assert len(rows) == len(expected), (len(rows), len(expected))
    for want, got in zip(expected, starts_wall, strict=True):
        assert abs(got - want) <= 0.5, f"window at {got - origin:.2f} s, expected {want - origin:.2f} s"
    # Every clip has a window that starts while it plays.
    for clip_start, a in zip(played, audio, strict=True):
        assert any(clip_start <= s <= clip_start + len(a) / 16000 for s in starts_wall), "a clip has no window"
    # No window comes from the silences: each one starts inside a played clip.
    for s, r in zip(starts_wall, rows, strict=True):
        inside = any(c - 0.5 <= s <= c + len(a) / 16000 for c, a in zip(played, audio, strict=True))
        assert inside, f"window at {r['time']} ({r['start_s']} s) lies in a silence"
        probs = [float(r[k]) for k in r if k.startswith("p_")]
        assert len(probs) == 8 and abs(sum(probs) - 1) < 0.02
    # Speaker turns are on by default: every window has a speaker, and the summary counts them.
    assert all(re.fullmatch(r"S\d+", r["speaker"]) for r in rows), [r["speaker"] for r in rows]
    assert re.search(r"^speakers: \d+", err, re.M), err
