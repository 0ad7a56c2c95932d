"""Live monitor benchmark on the real PortAudio path (a PulseAudio virtual microphone), emotion only.

Prints:
- latency, median and 95th percentile: window cut -> event (processing), and last sample captured -> event
  (includes waiting for the VAD to see an utterance end), measured in-process with the CLI's pipeline;
- CPU use of the `voice-monitor` command while idle (silence) and during continuous speech, in % of one core;
- its peak resident memory;
- time from starting the command to "listening" (stream open, model loaded).

Usage: .venv/bin/python benchmarks/bench_live.py [--seconds 20]
Needs pulseaudio (scripts/setup.sh --dev). Figures, not assertions: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import virtual_mic  # noqa: E402

from monitor.audio.convert import read_audio  # noqa: E402

CLIPS = sorted((REPO / "tests" / "data").glob("*.flac"))


def speech_schedule(seconds: float, gap_s: float) -> list[tuple[float, np.ndarray]]:
    clips = [read_audio(p)[0] for p in CLIPS]
    schedule, t, i = [], 0.5, 0
    while t < seconds:
        c = clips[i % len(clips)]
        schedule.append((t, c))
        t += len(c) / 16000 + gap_s
        i += 1
    return schedule


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")


def latency_in_process(mic: virtual_mic.VirtualMic, seconds: float) -> None:
    import os

    os.environ.update(mic.env)
    from monitor.audio.sources import MicSource
    from monitor.config import Config
    from monitor.inference.classifier import EmotionClassifier
    from monitor.pipeline import Pipeline

    clf = EmotionClassifier()
    source = MicSource("pulse")
    marks: list[tuple[float, float, float]] = []  # (emitted wall, window end wall, processing latency)

    def on_event(e) -> None:
        end_wall = source.clock.wall(int(round(e.end_s * 16000)))
        marks.append((time.time(), end_wall, e.latency_s))

    p = Pipeline(source, clf, Config().segmenter_options(), on_event=on_event)
    stop = threading.Event()
    p.start()
    writer = threading.Thread(target=virtual_mic.play, args=(mic, speech_schedule(seconds, 1.0), stop))
    writer.start()
    time.sleep(seconds + 2)
    p.stop()
    stop.set()
    writer.join()
    proc = [m[2] * 1000 for m in marks]
    end = [(m[0] - m[1]) * 1000 for m in marks]
    print(f"latency over {len(marks)} windows ({seconds:.0f} s of speech with 1 s pauses, virtual microphone):")
    print(f"  window cut -> event:            median {statistics.median(proc):6.1f} ms   p95 {pct(proc, 0.95):6.1f} ms")
    print(f"  last sample captured -> event:  median {statistics.median(end):6.1f} ms   p95 {pct(end, 0.95):6.1f} ms"
          "  (utterance-end windows wait for 450 ms of non-speech)")
    print(f"  dropped blocks {p.dropped_blocks}, dropped windows {p.stats.dropped_windows}")


def command_figures(mic: virtual_mic.VirtualMic, seconds: float) -> None:
    cmd = [sys.executable, "-m", "monitor.cli", "live", "--device", "pulse", "--no-dashboard", "--transcriber",
           "none", "--duration", str(2 * seconds + 4)]
    stop = threading.Event()
    # Idle first (silence), then continuous speech (clips back to back, 0.2 s gaps).
    schedule = [(seconds + 2 + t, c) for t, c in speech_schedule(seconds, 0.2)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=mic.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=REPO)
    line = proc.stderr.readline()
    startup = time.monotonic() - t0
    writer = threading.Thread(target=virtual_mic.play, args=(mic, schedule, stop))
    writer.start()
    ps = psutil.Process(proc.pid)
    time.sleep(1.5)
    c0 = ps.cpu_times()
    time.sleep(seconds - 1)
    c1 = ps.cpu_times()
    idle = (c1.user + c1.system - c0.user - c0.system) / (seconds - 1) * 100
    time.sleep(2.5)
    c2 = ps.cpu_times()
    rss = ps.memory_info().rss
    time.sleep(seconds - 1)
    c3 = ps.cpu_times()
    busy = (c3.user + c3.system - c2.user - c2.system) / (seconds - 1) * 100
    rss = max(rss, ps.memory_info().rss)
    err = proc.communicate(timeout=60)[1]
    stop.set()
    writer.join()
    print("the command `voice-monitor live --no-dashboard --transcriber none` on the virtual microphone:")
    print(f"  start to listening: {startup:.2f} s  ({line.strip()[:60]}...)")
    print(f"  CPU idle (silence): {idle:5.1f} % of one core")
    print(f"  CPU continuous speech: {busy:5.1f} % of one core")
    print(f"  resident memory: {rss / 2**20:.0f} MB")
    print("  summary: " + " | ".join(x for x in err.splitlines()[-2:]))


def startup_times(mic: virtual_mic.VirtualMic, runs: int = 5) -> None:
    times = []
    stop = threading.Event()
    writer = threading.Thread(target=virtual_mic.play, args=(mic, [], stop))
    writer.start()
    for _ in range(runs):
        t0 = time.monotonic()
        proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "voice-monitor"), "--device", "pulse",
                                 "--no-dashboard", "--transcriber", "none", "--duration", "0.5"],
                                env=mic.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        proc.stderr.readline()
        times.append(time.monotonic() - t0)
        proc.communicate(timeout=30)
    stop.set()
    writer.join()
    print(f"start to listening over {runs} runs of .venv/bin/voice-monitor: median {statistics.median(times):.2f} s,"
          f" max {max(times):.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    if not virtual_mic.available():
        print("pulseaudio is not installed: scripts/setup.sh --dev")
        return 1
    with tempfile.TemporaryDirectory() as d:
        mic = virtual_mic.start(d)
        try:
            startup_times(mic)
            command_figures(mic, args.seconds)
            latency_in_process(mic, args.seconds)
        finally:
            mic.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
