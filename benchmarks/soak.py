"""Soak benchmark: the live command on the virtual microphone for N minutes of speech (a benchmark, not a test).

Runs ``voice-monitor live --device pulse --no-dashboard --csv ...`` as a user would start it, while a
PulseAudio pipe source plays the repository's clips in a loop (with pauses), and prints once a minute:
resident memory of the monitor and of its transcriber process, rows written, rows with text. At the end:
memory growth per hour (least-squares slope after a warm-up), dropped blocks and windows, audio lost,
latency median/p95 (from the CSV's latency_ms), and text coverage (the share of utterances whose words
reached the CSV or the transcript file beside it).

Usage: nice -n 10 .venv/bin/python benchmarks/soak.py --minutes 60 [--transcriber pocketsphinx|none]
Needs pulseaudio (scripts/setup.sh --dev). Figures only: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import csv
import re
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
MIB = 2**20


def looped_schedule(seconds: float, gap_s: float) -> tuple[list[tuple[float, np.ndarray]], float]:
    """The clips one after another with ``gap_s`` pauses until ``seconds``; also the seconds of speech."""
    clips = [read_audio(p)[0] for p in CLIPS]
    schedule, t, i, speech = [], 1.0, 0, 0.0
    while t < seconds:
        c = clips[i % len(clips)]
        schedule.append((t, c))
        t += len(c) / 16000 + gap_s
        speech += len(c) / 16000
        i += 1
    return schedule, speech


def memory(proc: psutil.Process) -> tuple[float, float]:
    """Resident MiB of the process and of all its children."""
    try:
        own = proc.memory_info().rss
        kids = sum(c.memory_info().rss for c in proc.children(recursive=True))
    except psutil.Error:
        return float("nan"), float("nan")
    return own / MIB, kids / MIB


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minute, MiB) points, in MiB per hour."""
    if len(points) < 2:
        return float("nan")
    xs, ys = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    return float(np.polyfit(xs, ys, 1)[0] * 60)


def read_rows(path: Path) -> list[dict[str, str]]:
    """The CSV's window rows (a row without an index marks missing audio)."""
    return [r for r in read_rows_any(path) if r.get("index")]


def coverage(rows: list[dict[str, str]], transcript: Path) -> tuple[int, int]:
    """(utterances with words in the CSV or the transcript file, utterances in the CSV)."""
    utterances = {r["utterance"] for r in rows if r.get("utterance")}
    with_text = {r["utterance"] for r in rows if r.get("text", "").strip()}
    for r in read_rows_any(transcript):
        if r.get("text", "").strip():
            with_text.add(r.get("utterance", ""))
    return len(utterances & with_text), len(utterances)


def read_rows_any(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def play_until_stopped(mic: virtual_mic.VirtualMic, schedule: list, stop: threading.Event) -> None:
    try:
        virtual_mic.play(mic, schedule, stop)
    except BrokenPipeError:  # the PulseAudio daemon went away at the end of the run
        pass


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--transcriber", default="pocketsphinx", choices=["pocketsphinx", "vosk", "auto", "none"])
    ap.add_argument("--gap", type=float, default=1.5, help="seconds of silence between clips")
    ap.add_argument("--warmup", type=float, default=5.0, help="minutes left out of the memory slope")
    ap.add_argument("--keep", metavar="DIR", help="keep the CSV and the monitor's stderr in DIR")
    args = ap.parse_args()
    if not virtual_mic.available():
        print("pulseaudio is not installed: scripts/setup.sh --dev")
        return 1
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep) if args.keep else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        csv_path, log_path = out / "soak.csv", out / "soak.stderr"
        transcript = csv_path.with_suffix(".transcript.csv")
        for p in (csv_path, transcript):
            p.unlink(missing_ok=True)
        mic = virtual_mic.start(Path(tmp) / "vmic")
        schedule, speech_s = looped_schedule(seconds, args.gap)
        env = dict(mic.env, PYTHONPATH=str(REPO))
        cmd = [sys.executable, "-m", "monitor.cli", "live", "--device", "pulse", "--no-dashboard", "--csv",
               str(csv_path), "--transcriber", args.transcriber, "--start-anyway", "--duration", str(seconds)]
        stop = threading.Event()
        started = time.monotonic()
        with log_path.open("w") as log:
            proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log, text=True)
        player = threading.Thread(target=play_until_stopped, args=(mic, schedule, stop), daemon=True)
        player.start()
        ps = psutil.Process(proc.pid)
        print(f"soak: {args.minutes:g} min, {len(schedule)} clips ({speech_s:.0f} s of speech), "
              f"transcriber {args.transcriber}; pid {proc.pid}", flush=True)
        print(f"{'min':>4} {'monitor MiB':>12} {'children MiB':>13} {'rows':>6} {'rows w/ text':>13}", flush=True)
        points: list[tuple[float, float]] = []
        minute = 0
        try:
            while proc.poll() is None:
                next_tick = started + 60 * (minute + 1)
                while proc.poll() is None and time.monotonic() < next_tick:
                    time.sleep(1.0)
                if proc.poll() is not None:
                    break
                minute += 1
                own, kids = memory(ps)
                rows = read_rows(csv_path)
                texted = sum(1 for r in rows if r.get("text", "").strip())
                print(f"{minute:>4} {own:>12.1f} {kids:>13.1f} {len(rows):>6} {texted:>13}", flush=True)
                if minute >= args.warmup:
                    points.append((minute, own + kids))
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
            stop.set()
            player.join(timeout=5)
            mic.stop()
        wall = time.monotonic() - started
        err = log_path.read_text(errors="replace")
        rows = read_rows(csv_path)
        lat = [float(r["latency_ms"]) for r in rows if r.get("latency_ms")]
        texted_utts, utts = coverage(rows, transcript)
        summary = [ln for ln in err.splitlines() if not ln.startswith("listening")][-8:]
        dropped = re.search(r"dropped blocks (\d+), dropped windows (\d+)", err)
        lost = re.search(r"audio lost ([\d.]+) s", err)
        audio = re.search(r"audio ([\d.]+) s", err)
        print(f"\nexit status {proc.returncode} after {wall / 60:.1f} min of wall-clock time")
        print(f"memory (monitor + transcriber process), minute {args.warmup:g} onwards: "
              f"{points[0][1] if points else float('nan'):.1f} -> {points[-1][1] if points else float('nan'):.1f} "
              f"MiB; growth {slope_per_hour(points):+.1f} MiB per hour (least-squares slope)")
        if dropped:
            print(f"dropped blocks {dropped.group(1)}, dropped windows {dropped.group(2)}")
        if audio:
            print(f"audio processed {float(audio.group(1)):.1f} s of {wall:.1f} s wall-clock; "
                  f"audio lost {lost.group(1) if lost else 'not reported'} s")
        if lat:
            print(f"latency over {len(lat)} rows: median {statistics.median(lat):.0f} ms, p95 {pct(lat, 0.95):.0f} ms")
        if utts:
            print(f"text coverage: {texted_utts}/{utts} utterances have words in the CSV or the transcript file "
                  f"({texted_utts / utts:.0%})")
        print("monitor's summary:\n  " + "\n  ".join(summary))
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
