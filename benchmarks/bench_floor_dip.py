"""A noise floor that dipped: the VAD's steady-floor rule (``[vad] steady_db``) off and on (prints only).

    nice .venv/bin/python benchmarks/bench_floor_dip.py [--data ../shared/data] [--per-corpus 100] [--trials 60]

The VAD's noise floor is the quietest frame of the last 5 s. When it dips under the room's tone, the room tone
after the dip stands above the margin and webrtcvad, hearing it scaled up, often calls it speech. The rule
(``monitor.dsp.vad``): a steady second standing above the floor restarts the floor history.

1. Single clips: ``--per-corpus`` clips of each corpus (seed 0), as they are and cut to their speech: how many
   have windows that differ, to the sample, off and on (the monitor's segmenter otherwise); the segmenter's speed
   on them, off and on (process time).
2. Streams of ``--trials`` seeded trials per case: room tone (white, pink, brown or fan-like noise, -60 to -40
   dBFS) with, 2-4 s after the dip, one clip of the shared data (or ``tests/data``) at 5-25 dB over the tone. The
   dips: a microphone unmuted (1.5 s of dither at -90 dBFS first), a gain control recovering after a knock (the
   tone 20 dB down, back over 1.5 s), an edit (0.5 s of dither in the tone); and no dip. Cells: seconds of windows
   that touch no speech (noise taken for speech) per stream, and clips whose speech gets no window, off / on.
3. Non-speech of 1-10 s (``bench_noisy_clips.non_speech``): files with a window, off / on.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_quiet_voice import non_speech_with_window, single_clips_moved, spans  # noqa: E402
from bench_speech_clips import CORPORA, corpus_files, cut_to_speech  # noqa: E402

from monitor.audio.convert import read_audio  # noqa: E402
from monitor.dsp.segmenter import SegmenterOptions  # noqa: E402
from monitor.dsp.vad import SAMPLE_RATE as SR  # noqa: E402

ON = SegmenterOptions.monitor()
OFF = replace(ON, vad=replace(ON.vad, steady_db=0.0))
DIPS = ("unmuted", "gain recovering", "edit", "no dip")


def tone(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS room tone of ``n`` samples."""
    x = rng.standard_normal(n)
    if kind != "white":
        spec = np.fft.rfft(x)
        f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
        spec /= {"pink": np.sqrt(f), "brown": f / 20.0, "fan": np.sqrt(f) * (1 + (f / 800.0) ** 2)}[kind]
        x = np.fft.irfft(spec, n)
    return x / np.sqrt(np.mean(x**2))


def stream(clip: np.ndarray, dip: str, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """(int16 stream, speech start, speech end) for one trial."""
    kind = ("white", "pink", "brown", "fan")[int(rng.integers(0, 4))]
    level = 10 ** (float(rng.uniform(-60.0, -40.0)) / 20)
    lead, after = int(3.0 * SR), int(float(rng.uniform(2.0, 4.0)) * SR)
    total = lead + after + len(clip) + 3 * SR
    gain = np.ones(total)
    if dip == "unmuted":
        gain[:lead] = 10 ** (-90 / 20) / level
    elif dip == "gain recovering":
        knock = lead - int(0.2 * SR)
        t = np.arange(lead - knock) / SR
        gain[knock:lead] = 10 ** (-20 / 20)
        ramp = np.arange(int(1.5 * SR)) / (1.5 * SR)
        gain[lead : lead + len(ramp)] = 10 ** (-20 * (1 - ramp) / 20)
        burst = rng.standard_normal(len(t)) * np.exp(-t / 0.03) * 10 ** (-10 / 20) / level
        gain[knock:lead] += np.abs(burst)  # a knock whose tail the gain control ducks under the tone
    elif dip == "edit":
        gain[lead - SR // 2 : lead] = 10 ** (-90 / 20) / level
    x = tone(total, kind, rng) * level * gain
    start = lead + after
    speech = clip.astype(np.float64) / 32768
    rms = np.sqrt(np.mean(speech**2)) + 1e-12
    x[start : start + len(clip)] += speech / rms * level * 10 ** (float(rng.uniform(5.0, 25.0)) / 20)
    x *= min(1.0, 0.9 / np.abs(x).max())
    return np.round(x * 32767).astype(np.int16), start, start + len(clip)


def clip_pool(data: Path, n: int) -> list[np.ndarray]:
    paths: list[Path] = []
    for name in CORPORA:
        if (data / name).is_dir():
            files = corpus_files(data / name)
            paths += random.Random(2).sample(files, min(n, len(files)))
    if not paths:  # a clone alone: the clips the tests use
        paths = sorted((Path(__file__).resolve().parents[1] / "tests" / "data").glob("*.flac"))
        print(f"(no corpora under {data}: clips of tests/data)")
    return [cut_to_speech(read_audio(p)[0]) for p in paths]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--per-corpus", type=int, default=100)
    ap.add_argument("--trials", type=int, default=60)
    args = ap.parse_args()
    data = Path(args.data)
    moved = single_clips_moved(data, args.per_corpus, OFF, ON)
    if moved["n"]:
        n = int(moved["n"])
        print(f"single clips whose windows move: as they are {moved['as_is']:.0f}/{n}, cut to their speech "
              f"{moved['cut']:.0f}/{n}")
        print(f"segmenter on them: {moved['seconds'] / moved['cpu_off']:.0f}x / "
              f"{moved['seconds'] / moved['cpu_on']:.0f}x real time per CPU s, off / on")
    clips = clip_pool(data, max(1, args.trials // len(CORPORA) + 1))
    print(f"{'dip':<18}{'noise windows s/stream (off / on)':>36}{'speech without a window (off / on)':>38}")
    for d, dip in enumerate(DIPS):
        noise_s, lost = [0.0, 0.0], [0, 0]
        for trial in range(args.trials):
            rng = np.random.default_rng(1000 * d + trial)
            x, s0, s1 = stream(clips[trial % len(clips)], dip, rng)
            for k, options in enumerate((OFF, ON)):
                found = spans(x, options)
                noise_s[k] += sum(b - a for a, b in found if b <= s0 or a >= s1) / SR
                lost[k] += not any(a < s1 and b > s0 for a, b in found)
        t = args.trials
        print(f"{dip:<18}{f'{noise_s[0] / t:.2f} / {noise_s[1] / t:.2f}':>36}{f'{lost[0]}/{t} / {lost[1]}/{t}':>38}")
    off, on = non_speech_with_window(OFF, ON)
    print(f"non-speech files (84) with a window: off {off}, on {on}")

if __name__ == "__main__":
    main()
