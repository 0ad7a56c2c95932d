"""What the level meter's hold costs the segmenter (prints; asserts nothing on time).

    nice .venv/bin/python benchmarks/bench_meter.py [--repeat 10]

The segmenter runs over ``monitor/assets/demo.flac`` repeated ``--repeat`` times, in 0.1 s blocks, alternately
with the meter update and with it replaced by a no-op, in one process; the best of five runs of each is
compared as a ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from monitor.audio.convert import read_audio
from monitor.dsp.segmenter import Segmenter

DEMO = Path(__file__).resolve().parents[1] / "monitor" / "assets" / "demo.flac"


def run(audio: np.ndarray) -> float:
    seg = Segmenter()
    t = time.perf_counter()
    for i in range(0, len(audio), 1600):
        seg.feed(audio[i : i + 1600])
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=10)
    args = p.parse_args()
    audio = np.tile(read_audio(DEMO)[0], args.repeat)
    with_meter = Segmenter._update_meter
    times: dict[str, list[float]] = {"with meter": [], "without": []}
    for _ in range(5):
        Segmenter._update_meter = with_meter
        times["with meter"].append(run(audio))
        Segmenter._update_meter = lambda self: None
        times["without"].append(run(audio))
    Segmenter._update_meter = with_meter
    seconds = len(audio) / 16000
    for name, t in times.items():
        print(f"segmenter {name:10}: {min(t):.3f} s for {seconds:.0f} s of audio ({seconds / min(t):.0f}x real time)")
    print(f"ratio with/without: {min(times['with meter']) / min(times['without']):.3f}")


if __name__ == "__main__":
    main()
