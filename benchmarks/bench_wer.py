"""PocketSphinx word error rate over the whole RAVDESS speech corpus (or every Nth clip of it), by intensity.

    .venv/bin/python benchmarks/bench_wer.py [--data ../shared/data/ravdess16k] [--every 1] [--jobs 2] [--cold]

The test (`tests/test_transcription_sphinx.py::test_ravdess_wer`) measures 80 chosen clips (60 normal, 20 strong
intensity); this measures the corpus as it is (about 47 % of RAVDESS speech is strong intensity), through the
same path as the live monitor: ``Segmenter(speech_chunks=True)`` in 100 ms blocks. Each actor's clips are
decoded in name order by an engine of their own, started fresh for that actor (as a monitor started in a room
hears one speaker after another), so the figures do not depend on how the clips fall to the worker processes:
the same code gives the same figure to the word, whatever ``--jobs``. (The engine carries its front end's noise
estimate from one utterance to the next, so the order of the clips matters; earlier versions of this script
shared one engine per worker process across actors in whatever order the pool handed them out, and their figures
depended on that scheduling.) Prints figures only. ``--cold`` re-initialises the decoder's front end before every
utterance, so each is decoded with a fresh noise-removal estimate, as the first utterance after start is (the
monitor keeps it warm).
RAVDESS statement 01 is "Kids are talking by the door", 02 "Dogs are sitting by the door".
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SENTENCES = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
SR = 16000


def _new_engine(cold: bool):  # noqa: ANN202
    from monitor.transcription.sphinx_engine import SphinxTranscriber

    if not cold:
        return SphinxTranscriber()

    class ColdSphinx(SphinxTranscriber):
        def end_utterance(self):  # noqa: ANN202
            for dec in (self._final, self._alt):  # fresh front ends (noise estimates), the warp search's too
                if dec is not None:
                    dec.reinit_feat()
            return super().end_utterance()

    return ColdSphinx()


def _transcribe_actor(paths: list[str], cold: bool = False) -> list[tuple[str, str, str, float]]:
    """(reference, hypothesis, intensity, seconds of audio) for each of one actor's clips, in order, decoded by a
    fresh engine."""
    engine = _new_engine(cold)
    return [_transcribe(engine, path) for path in paths]


def _transcribe(engine: object, path: str) -> tuple[str, str, str, float]:
    import numpy as np
    import soundfile as sf

    from monitor.dsp.segmenter import Segmenter
    from monitor.transcription.feeder import SpeechFeeder

    audio, sr = sf.read(path, dtype="int16")
    if sr != SR:
        raise SystemExit(f"{path}: {sr} Hz; this benchmark wants the 16 kHz ravdess16k layout")
    audio = np.concatenate([audio, np.zeros(SR // 2, np.int16)])
    seg = Segmenter(speech_chunks=True)
    feeder = SpeechFeeder(engine)
    for i in range(0, len(audio), 1600):
        seg.feed(audio[i : i + 1600])
        feeder.feed(seg.take_speech())
    seg.flush()
    feeder.feed(seg.take_speech())
    texts = [t.text for t in feeder.transcripts]
    fields = Path(path).name.split("-")
    return SENTENCES[fields[4]], " ".join(t for t in texts if t), fields[3], len(audio) / SR


def main() -> int:
    from monitor.transcription.wer import corpus_wer

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("RAVDESS_DIR", REPO.parent / "shared" / "data" / "ravdess16k")))
    ap.add_argument("--every", type=int, default=1, help="take every Nth clip (sorted by name) of each actor")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cold", action="store_true", help="fresh front end (noise estimate) for every utterance")
    args = ap.parse_args()
    if not (args.data / "Actor_01").is_dir():
        print(f"error: RAVDESS (ravdess16k layout) not found at {args.data}: pass --data or set RAVDESS_DIR")
        return 2
    per_actor = [sorted(str(p) for p in actor.glob("03-01-*.flac"))[:: max(1, args.every)]
                 for actor in sorted(args.data.glob("Actor_*"))]
    clips = [c for paths in per_actor for c in paths]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = pool.map(functools.partial(_transcribe_actor, cold=args.cold), per_actor)
        results = [r for rows in done for r in rows]
    wall = time.perf_counter() - t0
    groups = {"normal intensity": [r for r in results if r[2] == "01"],
              "strong intensity": [r for r in results if r[2] == "02"], "all": results}
    for actors, name in (((1, 10), "actors 01-10"), ((11, 24), "actors 11-24")):
        groups[name] = [r for r, c in zip(results, clips, strict=True)
                        if actors[0] <= int(Path(c).parent.name[-2:]) <= actors[1]]
    print(f"pocketsphinx WER over {len(clips)} RAVDESS clips ({args.data}), every {args.every}th clip per actor, "
          f"a fresh engine per actor{', cold front end per utterance' if args.cold else ''}")
    for name, rows in groups.items():
        if rows:
            wer, errors, words = corpus_wer([(r[0], r[1]) for r in rows])
            print(f"  {name:18s} {wer:.3f}  ({errors}/{words} words, {len(rows)} clips)")
    audio_s = sum(r[3] for r in results)
    print(f"  {audio_s:.0f} s of audio in {wall:.0f} s wall with {args.jobs} process(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
