"""Measures the figures of the table in docs/pi.md on this machine (run it with the runtime venv's python).

    .venv/bin/python scripts/pi/bench.py [--model PATH] [--live] [--transcriber]

Prints one line per figure: model load, feature and inference time per 3 s window (1 and 2 threads),
offline throughput over tests/data, peak memory; with --live the CPU share of the real-time demo
(``voice-monitor demo --no-dashboard --profile pi``, 39 s); with --transcriber pocketsphinx's real-time factor.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "?"
    for key in ("Model", "model name"):
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return "?"


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "emotion.tflite")
    ap.add_argument("--repeat", type=int, default=20, help="passes over the test windows for the timings")
    ap.add_argument("--live", action="store_true", help="also run the 39 s real-time demo and report its CPU share")
    ap.add_argument("--transcriber", action="store_true", help="also time pocketsphinx on one clip")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    from monitor.audio.convert import read_audio
    from monitor.dsp.features import log_mel
    from monitor.dsp.segmenter import segment_audio
    from monitor.inference.classifier import EmotionClassifier

    import_s = time.perf_counter() - t0

    clips = sorted((REPO / "tests" / "data").glob("*.flac"))
    print(f"machine: {platform.machine()}, {cpu_name()}, {os.cpu_count()} cores; python {platform.python_version()}")
    print(f"import of the runtime stack: {import_s:.2f} s")
    t0 = time.perf_counter()
    clf = EmotionClassifier(args.model, num_threads=1)
    print(f"model load ({clf.info.runtime}): {time.perf_counter() - t0:.2f} s")

    audio_s = 0.0
    windows = []
    t0 = time.perf_counter()
    for clip in clips:
        audio, duration = read_audio(clip)
        audio_s += duration
        for w in segment_audio(audio):
            windows.append(w.audio)
            clf.predict(w.audio)
    wall = time.perf_counter() - t0
    print(
        f"offline read+segment+classify of tests/data: {audio_s:.1f} s of audio in {wall:.2f} s "
        f"({audio_s / wall:.0f}x real time)"
    )

    feat_t: list[float] = []
    feats = []
    for _ in range(args.repeat):
        for a in windows:
            t = time.perf_counter()
            f = log_mel(a, clf.features)
            feat_t.append(time.perf_counter() - t)
        feats = [log_mel(a, clf.features) for a in windows]
    print(f"features per 3 s window: {ms(feat_t)}")
    for threads in (1, 2):
        c = EmotionClassifier(args.model, num_threads=threads)
        inv_t: list[float] = []
        for _ in range(args.repeat):
            for f in feats:
                t = time.perf_counter()
                c.predict_features(f)
                inv_t.append(time.perf_counter() - t)
        print(f"inference per window, {threads} thread(s): {ms(inv_t)}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {rss_mb:.0f} MB")

    if args.transcriber:
        from pocketsphinx import Decoder

        audio, duration = read_audio(clips[0])
        dec = Decoder(samprate=16000)
        t = time.perf_counter()
        dec.start_utt()
        dec.process_raw(audio.tobytes(), full_utt=True)
        dec.end_utt()
        took = time.perf_counter() - t
        hyp = dec.hyp().hypstr if dec.hyp() else ""
        print(
            f"pocketsphinx on {clips[0].name}: {duration:.1f} s in {took:.1f} s "
            f"(real-time factor {took / duration:.2f}): {hyp!r}"
        )

    if args.live:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        cmd = [
            sys.executable,
            "-m",
            "monitor.cli",
            "demo",
            "--no-dashboard",
            "--profile",
            "pi",
            "--model",
            str(args.model),
        ]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak_kb = 0
        while proc.poll() is None:  # VmHWM: the child's own peak resident memory (ru_maxrss counts the fork)
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        stderr = proc.stderr.read() if proc.stderr else ""
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            print(f"live demo failed ({proc.returncode}): {stderr.strip()[-300:]}")
            return 1
        print(
            f"live demo (--profile pi, real time): {wall:.1f} s wall, {cpu:.1f} s CPU "
            f"= {100 * cpu / wall:.0f}% of one core; peak memory {peak_kb / 1024:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
