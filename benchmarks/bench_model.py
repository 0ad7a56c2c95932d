"""Per-window cost of the shipped emotion model on one thread: features + normalisation + int8 inference +
the prosody head (functionals, regression, fusion), load time, memory; beside it what the voice head (used with
speaker turns, which run the speaker encoder over the window anyway: benchmarks/bench_speakers.py) costs instead of
the prosody head's regression and fusion, given the same functionals, and what reading the encoder's states for it
(``SpeakerEncoder.read``) adds to the embedding alone (``embed``), timed alternately on the same windows.

    .venv/bin/python benchmarks/bench_model.py [--model models/emotion.tflite] [--windows 200]

Prints figures only (no pass/fail): median and p95 over the windows of the repository's clips, cycled.
BLAS is held to one thread too (OPENBLAS_NUM_THREADS=1 unless set): on a busy 2-core machine a multi-threaded
BLAS made the mel matmul of ``log_mel`` ~7x slower (11 ms instead of 1.5 ms per window).
"""

from __future__ import annotations

import argparse
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported

import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor.audio.convert import read_audio  # noqa: E402
from monitor.dsp.features import log_mel  # noqa: E402
from monitor.dsp.functionals import NAMES as FUNCTIONAL_NAMES  # noqa: E402
from monitor.dsp.functionals import functionals  # noqa: E402
from monitor.dsp.segmenter import segment_audio  # noqa: E402
from monitor.inference.classifier import DEFAULT_MODEL, EmotionClassifier, voice_head_path  # noqa: E402
from monitor.inference.normalise import SessionNormaliser  # noqa: E402
from monitor.inference.prosody import ProsodyHead, fuse  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--windows", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        clf = EmotionClassifier(args.model, num_threads=args.threads)
        loads.append(time.perf_counter() - t0)
    windows = []
    for clip in sorted((REPO / "tests" / "data").glob("*.flac")):
        audio, _ = read_audio(clip)
        windows += [w.audio for w in segment_audio(audio)]
    for w in windows[:5]:  # warm-up (caches of filterbank and window, interpreter)
        clf.predict(w)
    norm = SessionNormaliser(clf.norm) if clf.norm is not None else None
    head, voice = clf.prosody, clf.voice_head
    states, read_ms, embed_ms = [], [], []
    if voice is not None:
        from monitor.speakers.encoder import SpeakerEncoder

        encoder = SpeakerEncoder()
        for n in range(5 * len(windows)):  # each window five times
            w = windows[n % len(windows)]
            t0 = time.perf_counter()
            encoder.embed(w)
            t1 = time.perf_counter()
            reading = encoder.read(w)
            read_ms.append((time.perf_counter() - t1) * 1e3)
            embed_ms.append((t1 - t0) * 1e3)
            if n < len(windows):
                states.append(None if reading is None else reading[1])
    feat_ms, norm_ms, infer_ms, head_ms, total_ms, voice_ms = [], [], [], [], [], []
    for i in range(args.windows):
        audio = windows[i % len(windows)]
        t0 = time.perf_counter()
        f = log_mel(audio, clf.features)
        t1 = time.perf_counter()
        if norm is not None:
            f = norm.normalise(f, f"S{i % 3}")
        t2 = time.perf_counter()
        p = clf.probabilities(f)
        t3 = time.perf_counter()
        if head is not None:
            fv = functionals(audio)
            lp = head.log_probs(fv, head.mean, head.std)
            fuse(p, lp, head.weight_alone, head.temperature_alone)
        t4 = time.perf_counter()
        if head is not None and voice is not None:
            t5 = time.perf_counter()
            lp = voice.log_probs(voice.inputs(fv, states[i % len(windows)]), voice.mean, voice.std)
            fuse(p, lp, voice.weight_alone, voice.temperature_alone)
            voice_ms.append((time.perf_counter() - t5) * 1e3)
        feat_ms.append((t1 - t0) * 1e3)
        norm_ms.append((t2 - t1) * 1e3)
        infer_ms.append((t3 - t2) * 1e3)
        head_ms.append((t4 - t3) * 1e3)
        total_ms.append((t4 - t0) * 1e3)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

    feats = clf.features
    print(f"model: {args.model} ({args.model.stat().st_size / 1024:.0f} KB), runtime {clf.info.runtime}, "
          f"threads {args.threads}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    print(f"input: {feats.window_s} s window -> {feats.shape} log-mel (hop {feats.hop_length}, {feats.n_mels} mels)")
    print(f"load time: median {statistics.median(loads) * 1e3:.1f} ms (first {loads[0] * 1e3:.1f} ms, 5 loads)")
    if voice is not None:
        path = voice_head_path(args.model)
        head_loads = []
        for _ in range(5):
            t0 = time.perf_counter()
            ProsodyHead.load(path, clf.labels, FUNCTIONAL_NAMES, voice=True)
            head_loads.append(time.perf_counter() - t0)
        print(f"  of which the voice head ({path.name}, {path.stat().st_size / 1e6:.1f} MB): median "
              f"{statistics.median(head_loads) * 1e3:.1f} ms (5 loads)")
    print(f"normalisation: {'per session and speaker (the model has an entry)' if norm else 'none (no entry)'}")
    stages = "functionals + " + ("hidden layer + " if head and head.hidden_coef else "") + "regression + fusion"
    print(f"prosody head: {stages if head else 'none (no emotion.prosody.json)'}")
    if voice_ms:
        print(f"voice head (with speaker turns, instead of the prosody head's regression and fusion): projection "
              f"of the encoder's states to {voice.voice_dims} components + regression + fusion, the same functionals")
        print(f"speaker encoder per window ({len(windows)} windows five times, alternately): embedding alone median "
              f"{statistics.median(embed_ms):.2f} ms, embedding and states (read) {statistics.median(read_ms):.2f} ms")
    rows = (("features", feat_ms), ("normalise", norm_ms), ("inference", infer_ms), ("prosody", head_ms),
            ("total", total_ms)) + ((("voice", voice_ms),) if voice_ms else ())
    for name, vals in rows:
        print(f"{name:>9} per window: median {statistics.median(vals):.2f} ms, p95 {pct(vals, 95):.2f} ms "
              f"({len(vals)} windows)")
    print(f"peak RSS: {rss_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
