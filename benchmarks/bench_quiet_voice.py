"""A quiet voice after a loud one, and single clips, with the VAD's quiet-after-loud rule off and on (prints only).

    nice .venv/bin/python benchmarks/bench_quiet_voice.py [--data ../shared/data] [--per-corpus 100]

1. Single clips: ``--per-corpus`` clips of each corpus of the shared data (seed 0), as they are and cut to their
   speech (``bench_speech_clips.cut_to_speech``): how many have windows that differ, to the sample, between
   ``[vad] quiet_after_loud_db = 0`` (off) and the default (on).
2. Pairs: 60 pairs of clips of nEMO, RAVDESS and ASED (seeded), the first at a peak of -3 dBFS, then 0.5 s of
   silence, then the second 0 / 10 / 20 / 25 / 30 dB quieter: pairs whose second clip gets no window that
   ends 0.3 s or more into it, off and on.
3. Non-speech of 1-10 s (``bench_noisy_clips.non_speech``, 4 lengths x 7 kinds x 3 levels = 84 files): files with
   a window, off and on.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_noisy_clips import non_speech  # noqa: E402
from bench_speech_clips import CORPORA, corpus_files, cut_to_speech  # noqa: E402

from monitor.audio.convert import read_audio  # noqa: E402
from monitor.dsp.segmenter import SegmenterOptions, segment_audio  # noqa: E402
from monitor.dsp.vad import SAMPLE_RATE, VadOptions  # noqa: E402

OFF = SegmenterOptions(vad=VadOptions(quiet_after_loud_db=0.0))
ON = SegmenterOptions()


def spans(audio: np.ndarray, options: SegmenterOptions) -> list[tuple[int, int]]:
    return [(w.start_sample, w.end_sample) for w in segment_audio(audio, options)]


def at_peak(audio: np.ndarray, peak_dbfs: float) -> np.ndarray:
    x = audio.astype(np.float64)
    return x / np.abs(x).max() * 10 ** (peak_dbfs / 20) * 32767


def single_clips_moved(data: Path, per_corpus: int, off: SegmenterOptions, on: SegmenterOptions) -> dict[str, float]:
    """``per_corpus`` clips of each corpus (seed 0): how many have windows that move between ``off`` and ``on``, as
    they are (``as_is``) and cut to their speech (``cut``); ``n`` clips, ``seconds`` of audio segmented each way and
    the process time each way took (``cpu_off``, ``cpu_on``)."""
    out = dict.fromkeys(("as_is", "cut", "n", "seconds", "cpu_off", "cpu_on"), 0.0)
    for name in CORPORA:
        if not (data / name).is_dir():
            print(f"{name}: missing ({data / name})")
            continue
        files = corpus_files(data / name)
        for path in random.Random(0).sample(files, min(per_corpus, len(files))):
            audio, _ = read_audio(path)
            cut = cut_to_speech(audio)
            found = {}
            order = (("cpu_off", off), ("cpu_on", on))
            for key, options in order if out["n"] % 2 == 0 else order[::-1]:  # each first half the time
                t0 = time.process_time()
                found[key] = (spans(audio, options), spans(cut, options))
                out[key] += time.process_time() - t0
            out["as_is"] += found["cpu_off"][0] != found["cpu_on"][0]
            out["cut"] += found["cpu_off"][1] != found["cpu_on"][1]
            out["seconds"] += (len(audio) + len(cut)) / SAMPLE_RATE
            out["n"] += 1
    return out


def non_speech_with_window(off: SegmenterOptions, on: SegmenterOptions) -> tuple[int, int]:
    """Non-speech of 1-10 s (``bench_noisy_clips.non_speech``, 4 lengths x 7 kinds x 3 levels = 84 files): files
    with a window, off and on."""
    rng = np.random.default_rng(0)
    found = [0, 0]
    for seconds in (1.0, 2.0, 5.0, 10.0):
        for x in non_speech(seconds, rng).values():
            for level_dbfs in (-50.0, -30.0, -10.0):
                y = np.round(x / np.abs(x).max() * 10 ** (level_dbfs / 20) * 32767).astype(np.int16)
                for k, options in enumerate((off, on)):
                    found[k] += bool(spans(y, options))
    return found[0], found[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--per-corpus", type=int, default=100)
    args = ap.parse_args()
    data = Path(args.data)
    moved = single_clips_moved(data, args.per_corpus, OFF, ON)
    n = int(moved["n"])
    print(f"single clips whose windows move: as they are {moved['as_is']:.0f}/{n}, cut to their speech "
          f"{moved['cut']:.0f}/{n}")
    pool: list[Path] = []
    for name in ("nemo", "ravdess16k", "ased"):
        if (data / name).is_dir():
            pool += random.Random(0).sample(corpus_files(data / name), 40)
    random.Random(1).shuffle(pool)
    gap = np.zeros(SAMPLE_RATE // 2)
    for drop in (0, 10, 20, 25, 30):
        lost = [0, 0]
        pairs = 0
        for first, second in zip(pool[0::2], pool[1::2], strict=False):
            a, b = read_audio(first)[0], read_audio(second)[0]
            stream = np.concatenate([gap, at_peak(a, -3.0), gap, at_peak(b, -3.0 - drop), gap]).astype(np.int16)
            start = (2 * len(gap) + len(a)) / SAMPLE_RATE
            for k, options in enumerate((OFF, ON)):
                lost[k] += not any(w.end_s > start + 0.3 for w in segment_audio(stream, options))
            pairs += 1
        print(f"second voice {drop:>2} dB quieter: lost off {lost[0]}/{pairs}, on {lost[1]}/{pairs}")
    off, on = non_speech_with_window(OFF, ON)
    print(f"non-speech files with a window: off {off}, on {on}")

if __name__ == "__main__":
    main()
