"""How many clips give no windows, as they are and cut to their speech (prints; asserts nothing).

    nice .venv/bin/python benchmarks/bench_speech_clips.py                  # 100 clips per corpus, seed 0
    nice .venv/bin/python benchmarks/bench_speech_clips.py --per-corpus 60 --min-speech 0.3 --data ../shared/data

For every corpus of the shared data (ravdess16k, nemo, ased, esd0020, turev) it draws ``--per-corpus`` clips
(seeded) and runs the segmenter (``monitor.dsp.segmenter.segment_audio``, the stage ``score`` and ``live`` use)
on three versions of each clip:

- ``as is``: the file as it is (RAVDESS has about 1 s of room tone before the speech; the Opus corpora were
  trimmed to 0.5 s of quiet at each end);
- ``cut``: cut to its speech: from the first to the last 30 ms frame within 25 dB of the clip's loudest frame,
  then 50 ms more off each end, so the clip starts and ends inside the speech (as call-centre exports do);
- ``cut 1.5 s``: the middle 1.5 s of the ``cut`` clip (clips whose cut is shorter are used whole).

Each version is segmented twice, with the stream's first frames judged causally as before (``before``:
``floor_warmup_s = 0``) and against the floor of the first 3 s (``after``: the default ``floor_warmup_s``).
Per corpus, version and rule: clips with no window / clips. A corpus folder that is missing is skipped with a
note. Last column: clips as they are whose windows are the same (start and end to the sample) under both rules.
``--min-speech`` sets ``min_speech_s`` (default 0.6, the monitor's): turev holds single words, most of
them shorter than 0.6 s of speech. ``--short-speech`` sets ``short_speech_s`` (default 0: the bare segmenter, as
training cuts clips; 0.25 is the monitor's, which keeps a shorter utterance voiced like speech).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.audio.convert import read_audio  # noqa: E402
from monitor.dsp.segmenter import SegmenterOptions, segment_audio  # noqa: E402
from monitor.dsp.vad import SAMPLE_RATE  # noqa: E402

CORPORA = ("ravdess16k", "nemo", "ased", "esd0020", "turev")
FRAME = SAMPLE_RATE * 30 // 1000


def cut_to_speech(audio: np.ndarray, range_db: float = 25.0, inset_s: float = 0.05) -> np.ndarray:
    """From the first to the last frame within ``range_db`` of the loudest frame, ``inset_s`` inside."""
    n = len(audio) // FRAME
    if n == 0:
        return audio
    frames = audio[: n * FRAME].astype(np.float64).reshape(n, FRAME)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-9)
    loud = np.flatnonzero(level >= level.max() - range_db)
    inset = int(inset_s * SAMPLE_RATE)
    start, end = loud[0] * FRAME + inset, (loud[-1] + 1) * FRAME - inset
    return audio[start:end] if end - start > FRAME else audio


def middle(audio: np.ndarray, seconds: float) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    if len(audio) <= n:
        return audio
    start = (len(audio) - n) // 2
    return audio[start : start + n]


def corpus_files(root: Path) -> list[Path]:
    manifest = root / "manifest.csv"
    if manifest.exists():
        with manifest.open(newline="", encoding="utf-8") as f:
            return sorted(root / row["path"] for row in csv.DictReader(f))
    return sorted(root.rglob("*.flac"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--per-corpus", type=int, default=100)
    ap.add_argument("--min-speech", type=float, default=SegmenterOptions.min_speech_s)
    ap.add_argument("--short-speech", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    versions = {
        "as is": lambda a: a,
        "cut": cut_to_speech,
        "cut 1.5 s": lambda a: middle(cut_to_speech(a), 1.5),
    }
    rules = {
        "before": SegmenterOptions(floor_warmup_s=0.0, min_speech_s=args.min_speech, short_speech_s=args.short_speech),
        "after": SegmenterOptions(min_speech_s=args.min_speech, short_speech_s=args.short_speech),
    }
    cols = [(v, r) for v in versions for r in rules]
    totals = {c: 0 for c in cols}
    n_total = 0
    print(f"min_speech_s = {args.min_speech}, short_speech_s = {args.short_speech}; no window / clips")
    print(f"{'':<12}{'':>10}" + "".join(f"{v + ' ' + r:>18}" for v, r in cols) + f"{'as is same':>18}")
    for name in CORPORA:
        root = Path(args.data) / name
        if not root.is_dir():
            print(f"{name:<12} (missing: {root})")
            continue
        files = corpus_files(root)
        files = random.Random(args.seed).sample(files, min(args.per_corpus, len(files)))
        empty = dict.fromkeys(cols, 0)
        same = 0
        seconds = dict.fromkeys(versions, 0.0)
        for path in files:
            audio, _ = read_audio(path)
            for v, make in versions.items():
                clip = make(audio)
                seconds[v] += len(clip) / SAMPLE_RATE
                found = {r: [(w.start_sample, w.end_sample) for w in segment_audio(clip, o)] for r, o in rules.items()}
                for r in rules:
                    empty[(v, r)] += not found[r]
                if v == "as is":
                    same += found["before"] == found["after"]
        n_total += len(files)
        lengths = "/".join(f"{seconds[v] / len(files):.1f}" for v in versions)
        cells = "".join(f"{_cell(empty[c], len(files)):>18}" for c in cols)
        print(f"{name:<12}{lengths + ' s':>10}" + cells + f"{_cell(same, len(files)):>18}")
        for c in cols:
            totals[c] += empty[c]
    print(f"{'all':<12}{'':>10}" + "".join(f"{_cell(totals[c], n_total):>18}" for c in cols))
    print("second column: mean clip length as is / cut / cut 1.5 s")


def _cell(empty: int, n: int) -> str:
    return f"{empty}/{n} {empty / max(n, 1):6.1%}"


if __name__ == "__main__":
    main()
