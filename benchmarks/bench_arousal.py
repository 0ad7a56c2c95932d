"""Binary arousal from the ``arousal`` column, per corpus of the shared data, with a model (prints only).

    nice .venv/bin/python benchmarks/bench_arousal.py                       # the shipped model, 100 clips each
    nice .venv/bin/python benchmarks/bench_arousal.py --model models/other.tflite --per-corpus 200

Each clip is scored as ``voice-monitor score`` scores a file (``FileScorer``: every default), alone (``--baseline
off``) and with the baseline of the corpus's drawn clips taken out, their statistics and voices the heads' prior
(what ``score FOLDER`` does by default, the clips one run: ``Baseline.from_survey``); its ``arousal`` (mean over
its windows, ``monitor.affect``) above 0 calls it high. Truth: high for
angry, happy, fearful, surprised; low for neutral, calm, sad (disgust clips are left out). Per corpus: balanced
accuracy (mean of the high and low recalls), clips, and clips without windows (left out of the figure). Clips are
drawn with a fixed seed among those with a high or low label; RAVDESS actors 01-20 were all in the shipped
model's training set, so its RAVDESS figure is not a held-out one.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speech_clips import CORPORA  # noqa: E402

from monitor.affect import HIGH_AROUSAL, LOW_AROUSAL  # noqa: E402
from monitor.batch.score import FileScorer, ScoreOptions  # noqa: E402
from monitor.labels import LABELS  # noqa: E402


def labelled_clips(root: Path) -> list[tuple[Path, str]]:
    import csv

    manifest = root / "manifest.csv"
    if manifest.exists():
        with manifest.open(newline="", encoding="utf-8") as f:
            return sorted((root / row["path"], row["emotion"]) for row in csv.DictReader(f))
    return sorted((p, LABELS[int(p.stem.split("-")[2]) - 1]) for p in root.rglob("*.flac"))  # RAVDESS names


def balanced(results: list, emotions: list[str]) -> tuple[float, float, float]:
    hits = {True: [0, 0], False: [0, 0]}
    for result, emotion in zip(results, emotions, strict=True):
        if result.arousal is None:
            continue
        high = emotion in HIGH_AROUSAL
        hits[high][0] += (result.arousal > 0) == high
        hits[high][1] += 1
    recall = {k: h / n if n else float("nan") for k, (h, n) in hits.items()}
    return (recall[True] + recall[False]) / 2, recall[True], recall[False]


def main() -> None:
    from dataclasses import replace

    from monitor.inference.baseline import Baseline, BaselineOptions

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--per-corpus", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    options = ScoreOptions(model_path=args.model)
    alone = FileScorer(options)
    print(f"{'corpus':<12}{'run':>10}{'balanced acc':>14}{'high recall':>13}{'low recall':>12}{'clips':>7}"
          f"{'no windows':>12}")
    for name in CORPORA:
        root = Path(args.data) / name
        if not root.is_dir():
            print(f"{name:<12} (missing: {root})")
            continue
        clips = [(p, e) for p, e in labelled_clips(root) if e in HIGH_AROUSAL | LOW_AROUSAL]
        clips = random.Random(args.seed).sample(clips, min(args.per_corpus, len(clips)))
        emotions = [e for _, e in clips]
        first = [alone.score(str(path)) for path, _ in clips]
        empty = sum(r.arousal is None for r in first)
        # as `score FOLDER` runs by default: the clips are one run, whose baseline is taken out of every window,
        # its statistics and voices the prior of the heads' inputs (the survey reads the first 20 windows of each
        # file; these clips have one or two)
        base = Baseline.from_survey([r.log_mean for r in first], [r.moments for r in first], BaselineOptions(),
                                    voices=options.speakers.enabled and options.speakers.run_voices)
        with_base = FileScorer(replace(options, baseline=base))
        second = [with_base.score(str(path)) for path, _ in clips]
        for label, results in (("alone", first), ("baseline", second)):
            acc, high, low = balanced(results, emotions)
            print(f"{name:<12}{label:>10}{acc:>14.3f}{high:>13.3f}{low:>12.3f}{len(clips):>7}{empty:>12}")


if __name__ == "__main__":
    main()
