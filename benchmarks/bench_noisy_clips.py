"""Short clips cut to their speech, in rooms and noise: how many ``score`` leaves without an emotion (prints only).

    nice .venv/bin/python benchmarks/bench_noisy_clips.py                  # 40 clips per corpus, seed 0
    nice .venv/bin/python benchmarks/bench_noisy_clips.py --per-corpus 100 --data ../shared/data

Natural speech comes as short clips cut to the speech (a talk show, a call-centre export), recorded in a room with
something behind it. Such a clip has no quiet frame, so the segmenter's noise floor (its quietest frame) is
speech under the noise. For the four sentence corpora of the shared data (TurEV's single words are
``bench_speech_clips.py``'s) it draws ``--per-corpus`` clips (seeded), cuts each to its speech
(``bench_speech_clips.cut_to_speech``) and writes versions of it: as it is, in a room (RT60 0.3-0.9 s), in white,
pink or brown noise at 20, 10 and 5 dB SNR, in babble of other speakers at 10 dB, through a telephone band; each
at a random peak of -30 to -3 dBFS (``training.augment``). Each is scored as ``voice-monitor score`` scores a file
(``FileScorer``; speaker turns off, which do not decide windows). Cells: files without an emotion, first / low /
now: the short file's first readings alone (``NOISY_FILE_MARGIN_DB`` out of reach), with the low-margin reading,
and with the last reading too (webrtcvad at its least aggressive: what ``score`` does).

Then non-speech of 1-10 s (white, pink, brown noise, steady hum, a low rumble with a slow swell of about 5 dB
peak to trough, band noise swelling by +-5 dB like traffic, 100 Hz hum with harmonics and hiss swelling the same
way; and ``other_sounds``: an engine, rain; three levels, two of each): files given an emotion, first / low / now.
What the first reading lets through shows in every column.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speech_clips import corpus_files, cut_to_speech  # noqa: E402

import monitor.batch.score as score_module  # noqa: E402
from monitor.audio.convert import read_audio  # noqa: E402
from monitor.batch.score import FileScorer, ScoreOptions  # noqa: E402
from monitor.speakers.cluster import SpeakerOptions  # noqa: E402
from training import augment  # noqa: E402

SR = 16000
SENTENCES = ("ravdess16k", "nemo", "ased", "esd0020")
CONDITIONS = ("clean", "room", "noise 20 dB", "noise 10 dB", "noise 5 dB", "babble 10 dB", "telephone")


def version(x: np.ndarray, condition: str, rng: np.random.Generator, babble: list[np.ndarray]) -> np.ndarray:
    if condition == "room":
        x = augment.reverberate(x, float(rng.uniform(0.3, 0.9)), rng)
    elif condition.startswith("noise"):
        colour = ("white", "pink", "brown")[int(rng.integers(0, 3))]
        x = augment.add_noise(x, float(condition.split()[1]), rng, colour)
    elif condition.startswith("babble"):
        x = augment.add_babble(x, babble, float(condition.split()[1]), rng)
    elif condition == "telephone":
        x = augment.telephone(x)
    return augment.set_peak(x, float(rng.uniform(-30.0, -3.0)))


def non_speech(seconds: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    from scipy.signal import butter, lfilter

    n = int(seconds * SR)
    t = np.arange(n) / SR
    brown = np.cumsum(rng.standard_normal(n))
    low_b, low_a = butter(2, 400 / (SR / 2))
    band_b, band_a = butter(2, [300 / (SR / 2), 3000 / (SR / 2)], "band")
    return {
        "white": rng.standard_normal(n),
        "pink": augment.coloured_noise(n, "pink", rng),
        "brown": brown - np.convolve(brown, np.ones(801) / 801, mode="same"),
        "hum": np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t),
        "rumble": lfilter(low_b, low_a, rng.standard_normal(n)) * (1 + 0.3 * np.sin(2 * np.pi * 0.7 * t)),
        "traffic": lfilter(band_b, band_a, rng.standard_normal(n)) * np.exp(0.6 * np.sin(2 * np.pi * 0.25 * t)),
        "hum swell": (sum(np.sin(2 * np.pi * k * 100 * t) / k for k in (1, 2, 3)) + 0.2 * rng.standard_normal(n))
        * np.exp(0.6 * np.sin(2 * np.pi * 0.25 * t)),
    }


def other_sounds(seconds: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Sounds a review found the readings' voicing check alone lets through: an engine (a harmonic sound whose
    pitch, 40-140 Hz, glides, with some hiss) and rain (pink noise with sparse clicks)."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = rng.uniform(40, 140) * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    pink = augment.coloured_noise(n, "pink", rng)
    clicks = (rng.random(n) < rng.uniform(0.0005, 0.004)) * rng.standard_normal(n) * rng.uniform(5, 30)
    return {
        "engine": sum(0.8**k * np.sin((k + 1) * phase) for k in range(12)) + 0.2 * pink / np.std(pink),
        "rain": pink / np.std(pink) + clicks,
    }


def no_emotion(scorer: FileScorer, path: Path) -> tuple[bool, bool, bool]:
    """(no emotion from the first readings, with the low-margin reading too, with the last reading too: now)."""
    now = not scorer.score(str(path)).emotion
    if now:
        return True, True, True
    kept = score_module.NOISY_FILE_MARGIN_DB, score_module.LAST_READING_AGGRESSIVENESS
    try:
        score_module.LAST_READING_AGGRESSIVENESS = scorer.options.segmenter.vad.aggressiveness  # no last reading
        low_margin = not scorer.score(str(path)).emotion
        score_module.NOISY_FILE_MARGIN_DB = float("inf")  # the readings before both
        first = low_margin or not scorer.score(str(path)).emotion
    finally:
        score_module.NOISY_FILE_MARGIN_DB, score_module.LAST_READING_AGGRESSIVENESS = kept
    return first, low_margin, now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--per-corpus", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    scorer = FileScorer(ScoreOptions(speakers=SpeakerOptions(enabled=False)))
    data = Path(args.data)
    babble: list[np.ndarray] = []
    for name in SENTENCES:
        if (data / name).is_dir():
            for p in random.Random(args.seed + 1).sample(corpus_files(data / name), 5):
                babble.append(read_audio(p)[0].astype(np.float32) / 32768)
    totals = {c: [0, 0, 0, 0] for c in CONDITIONS}
    print(f"{'files without an emotion (first / low / now)':<44}" + "".join(f"{c:>16}" for c in CONDITIONS))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.flac"
        for name in SENTENCES:
            root = data / name
            if not root.is_dir():
                print(f"{name:<44}(missing: {root})")
                continue
            files = random.Random(args.seed).sample(corpus_files(root), min(args.per_corpus, len(corpus_files(root))))
            counts = {c: [0, 0, 0, 0] for c in CONDITIONS}
            for path in files:
                clip = cut_to_speech(read_audio(path)[0]).astype(np.float32) / 32768
                rng = np.random.default_rng(zlib.crc32(str(path.relative_to(data)).encode()) + args.seed)
                for condition in CONDITIONS:
                    y = version(clip, condition, rng, babble)
                    sf.write(out, np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16), SR, subtype="PCM_16")
                    first, low, now = no_emotion(scorer, out)
                    for c in (counts[condition], totals[condition]):
                        c[0] += first
                        c[1] += low
                        c[2] += now
                        c[3] += 1
            print(f"{name:<44}" + "".join(f"{_cell(*counts[c]):>16}" for c in CONDITIONS))
        print(f"{'all':<44}" + "".join(f"{_cell(*totals[c]):>16}" for c in CONDITIONS))
        rng = np.random.default_rng(args.seed)
        false: dict[str, list[int]] = {}
        for seconds in (1.0, 2.0, 3.0, 5.0, 10.0):
            for _ in range(2):
                for kind, x in (non_speech(seconds, rng) | other_sounds(seconds, rng)).items():
                    for level_dbfs in (-50.0, -30.0, -10.0):
                        y = x / np.abs(x).max() * 10 ** (level_dbfs / 20)
                        sf.write(out, np.round(y * 32767).astype(np.int16), SR, subtype="PCM_16")
                        first, low, now = no_emotion(scorer, out)
                        f = false.setdefault(kind, [0, 0, 0, 0])
                        f[0] += not first
                        f[1] += not low
                        f[2] += not now
                        f[3] += 1
    print("non-speech files given an emotion (first / low / now): "
          + ", ".join(f"{k} {a}/{b}/{c} of {m}" for k, (a, b, c, m) in false.items()))


def _cell(first: int, low: int, now: int, n: int) -> str:
    return f"{first / max(n, 1):.0%}/{low / max(n, 1):.0%}/{now / max(n, 1):.0%}"


if __name__ == "__main__":
    main()
