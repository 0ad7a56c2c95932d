#!/usr/bin/env python3
"""Build monitor/assets/demo.flac, the recording `voice-monitor demo` streams, from RAVDESS.

Eight normal-intensity RAVDESS clips, one per emotion, from eight actors (four female, four male), chosen among
the clips the shipped model labels right with the most confidence and pocketsphinx (the fallback transcriber)
transcribes word for word; joined with one second of very quiet noise, so each is an utterance of its own.
RAVDESS: Livingstone & Russo (2018), PLoS ONE 13(5): e0196391, CC BY-NC-SA 4.0 (credited in the README there).

    .venv/bin/python scripts/make_demo.py [--ravdess DIR] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SR = 16000
PAUSE_S = 1.0
NOISE_STD = 3.0  # int16 units: about -81 dBFS, a quiet room rather than digital silence

# (actor folder, file name): emotion, speaker, sentence
CLIPS = [
    ("Actor_14", "03-01-01-01-01-01-14.flac"),  # neutral, female: "Kids are talking by the door"
    ("Actor_11", "03-01-02-01-02-02-11.flac"),  # calm, male: "Dogs are sitting by the door"
    ("Actor_12", "03-01-03-01-01-02-12.flac"),  # happy, female: kids
    ("Actor_17", "03-01-04-01-02-02-17.flac"),  # sad, male: dogs
    ("Actor_16", "03-01-05-01-02-02-16.flac"),  # angry, female: dogs
    ("Actor_19", "03-01-06-01-01-02-19.flac"),  # fearful, male: kids
    ("Actor_20", "03-01-07-01-01-02-20.flac"),  # disgust, female: kids
    ("Actor_13", "03-01-08-01-02-02-13.flac"),  # surprised, male: dogs
]


def build(ravdess: Path) -> np.ndarray:
    rng = np.random.default_rng(20)
    parts = []
    for folder, name in CLIPS:
        audio, sr = sf.read(ravdess / folder / name, dtype="int16")
        if sr != SR or audio.ndim != 1:
            raise SystemExit(f"{name}: expected 16 kHz mono (ravdess16k), got {sr} Hz, shape {audio.shape}")
        if parts:
            parts.append(rng.normal(0, NOISE_STD, int(PAUSE_S * SR)).round().astype(np.int16))
        parts.append(audio)
    return np.concatenate(parts)


def main() -> None:
    default = os.environ.get("RAVDESS_DIR", str(REPO.parent / "shared" / "data" / "ravdess16k"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ravdess", type=Path, default=Path(default), help="ravdess16k folder (default: RAVDESS_DIR)")
    p.add_argument("--out", type=Path, default=REPO / "monitor" / "assets" / "demo.flac")
    args = p.parse_args()
    audio = build(args.ravdess)
    sf.write(args.out, audio, SR, subtype="PCM_16", compression_level=1.0)
    print(f"{args.out}: {len(audio) / SR:.1f} s, {args.out.stat().st_size / 1024:.0f} KiB, {len(CLIPS)} clips")


if __name__ == "__main__":
    main()
