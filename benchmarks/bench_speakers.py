"""Cost of speaker turns: the numpy GE2E encoder per 3 s utterance on one core, the clustering, extra memory.

    .venv/bin/python benchmarks/bench_speakers.py [--n 100] [--cpu N] [--baseline-rev REV]

Prints figures only (no pass/fail). Everything runs on one thread (BLAS held to one thread); ``--cpu N`` pins
the process to CPU N. Utterances: 3.0 s windows cut from the repository's clips (each clip looped to 3 s),
embedded one at a time as the worker does (two 1.6 s partials); wall time and the thread's CPU time (less
disturbed by other processes on a shared machine). The clustering: the online one (what a file's windows get
before the second pass) and the live one (monitor/speakers/live.py, CPU time), also from the window where
it clusters its full RECENT_WINDOWS (``--n`` above that), with the embedding's CPU time added: the budget per
utterance a live session spends on speaker turns. In the same run, for a ratio that does not
depend on how busy the machine is: the emotion model (features + int8 TFLite) on the same windows. Memory:
resident set size (VmRSS) before the encoder is loaded, after loading it, and after the embeddings (peak: VmHWM).
``--baseline-rev REV``: also the encoder of git revision REV (its monitor/speakers/encoder.py, same weights),
timed interleaved with today's on the same utterances: CPU time of both, their ratio, and how far the two
embeddings differ.
"""

from __future__ import annotations

import argparse
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported

import importlib.util  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor.audio.convert import read_audio  # noqa: E402
from monitor.inference.classifier import EmotionClassifier  # noqa: E402


def status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def baseline_encoder(rev: str):
    """The SpeakerEncoder class of ``monitor/speakers/encoder.py`` at git revision ``rev``."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:monitor/speakers/encoder.py"],
                            capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "encoder_baseline.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("encoder_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SpeakerEncoder


def compare(rev: str, encoder, utterances: list[np.ndarray], n: int) -> None:
    models = REPO / "models"
    old = baseline_encoder(rev)(models / "speaker_encoder.npz", lda_path=models / "speaker_lda.npz")
    diff = max(float(np.abs(encoder.embed(u) - old.embed(u)).max()) for u in utterances)
    before, after = [], []
    for i in range(n):
        u = utterances[i % len(utterances)]
        c0 = time.thread_time()
        old.vector(u)
        c1 = time.thread_time()
        encoder.vector(u)
        c2 = time.thread_time()
        before.append((c1 - c0) * 1e3)
        after.append((c2 - c1) * 1e3)
    b, a = statistics.median(before), statistics.median(after)
    print(f"{'against ' + rev:>28}: CPU time median {b:.2f} ms -> {a:.2f} ms (x{a / b:.3f}, interleaved, same run); "
          f"embeddings differ by at most {diff:.1e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="utterances to embed")
    ap.add_argument("--cpu", type=int, default=-1, help="pin the process to this CPU (default -1: not pinned)")
    ap.add_argument("--baseline-rev", help="also time the encoder of this git revision, interleaved (a ratio)")
    args = ap.parse_args()
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})

    utterances = []
    for clip in sorted((REPO / "tests" / "data").glob("*.flac")):
        audio, _ = read_audio(clip)
        utterances.append(np.resize(audio, 48000))  # 3.0 s, the clip looped
    clf = EmotionClassifier()
    for u in utterances:
        clf.predict(u)

    rss0 = status_mb("VmRSS")
    t0 = time.perf_counter()
    from monitor.speakers.cluster import SpeakerOptions, SpeakerTracker
    from monitor.speakers.encoder import SpeakerEncoder
    from monitor.speakers.live import RECENT_WINDOWS, LiveTracker

    encoder = SpeakerEncoder()
    load_ms = (time.perf_counter() - t0) * 1e3
    rss_loaded = status_mb("VmRSS")
    for u in utterances[:3]:
        encoder.embed(u)  # warm-up

    embed_ms, embed_cpu_ms, emotion_ms, assign_ms, live_cpu_ms = [], [], [], [], []
    tracker = SpeakerTracker(SpeakerOptions())
    live = LiveTracker(SpeakerOptions())  # what a live session runs (SpeakerTurns when not a whole file)
    for i in range(args.n):
        u = utterances[i % len(utterances)]
        c0 = time.thread_time()
        t0 = time.perf_counter()
        emb = encoder.vector(u)  # the embedding, projected to the speaker space the clustering uses
        t1 = time.perf_counter()
        embed_cpu_ms.append((time.thread_time() - c0) * 1e3)
        tracker.assign(emb, len(u) / 16000)
        t2 = time.perf_counter()
        c1 = time.thread_time()
        live.assign(emb, len(u) / 16000)
        live_cpu_ms.append((time.thread_time() - c1) * 1e3)
        t2b = time.perf_counter()
        clf.predict(u)
        t3 = time.perf_counter()
        embed_ms.append((t1 - t0) * 1e3)
        assign_ms.append((t2 - t1) * 1e3)
        emotion_ms.append((t3 - t2b) * 1e3)
    rss_after = status_mb("VmRSS")
    hwm = status_mb("VmHWM")

    def line(name: str, vals: list[float]) -> str:
        return f"{name:>28}: median {statistics.median(vals):6.2f} ms, p95 {float(np.percentile(vals, 95)):6.2f} ms"

    pinned = f"pinned to CPU {args.cpu}" if args.cpu >= 0 else "not pinned"
    print(f"{args.n} utterances of 3.0 s, one at a time; {pinned}, OPENBLAS_NUM_THREADS="
          f"{os.environ['OPENBLAS_NUM_THREADS']}; encoder {encoder.meta['dtype']} weights, computed in float32")
    print(line("speaker embedding", embed_ms))
    print(line("speaker embedding, CPU time", embed_cpu_ms))
    print(line("clustering (assign)", assign_ms))
    print(line("live clustering, CPU time", live_cpu_ms))
    full = live_cpu_ms[RECENT_WINDOWS:]
    if full:
        print(line(f"  from window {RECENT_WINDOWS + 1} (full)", full))
        total = [a + b for a, b in zip(embed_cpu_ms[RECENT_WINDOWS:], full, strict=True)]
        print(line("  embedding + live, CPU time", total))
    print(line("emotion (features + TFLite)", emotion_ms))
    ratio = statistics.median(embed_ms) / statistics.median(emotion_ms)
    print(f"{'embedding / emotion':>28}: {ratio:.1f}x (medians, same run)")
    print(f"{'encoder load':>28}: {load_ms:.0f} ms")
    print(f"memory (RSS): {rss0:.1f} MB before the encoder, {rss_loaded:.1f} MB loaded (+{rss_loaded - rss0:.1f}), "
          f"{rss_after:.1f} MB after embedding (+{rss_after - rss0:.1f}); peak {hwm:.1f} MB")
    if args.baseline_rev:
        compare(args.baseline_rev, encoder, utterances, args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
