"""The PocketSphinx fallback on real English speech: RAVDESS clips whose sentences are known.

Audio goes through ``Segmenter(speech_chunks=True)`` + ``take_speech()`` in 30 ms blocks, as in the live pipeline,
and one engine serves every clip in turn (as one engine serves a whole live session).
RAVDESS statement 01 is "Kids are talking by the door", 02 "Dogs are sitting by the door" (file name field 5).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from monitor.dsp.segmenter import Segmenter
from monitor.transcription.base import Transcript
from monitor.transcription.feeder import SpeechFeeder
from monitor.transcription.sphinx_engine import SphinxTranscriber, is_filler
from monitor.transcription.wer import corpus_wer, word_error_rate

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"
SR = 16000
SENTENCES = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}


def reference(path: Path) -> str:
    return SENTENCES[path.name.split("-")[4]]


def ravdess_root() -> Path:
    return Path(os.environ.get("RAVDESS_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess16k"))


def transcribe_clip(engine, path: Path, block: int = 480) -> tuple[list[Transcript], list[str]]:
    """One clip (plus 0.5 s of silence so the last utterance closes) through the segmenter and the engine."""
    audio, sr = sf.read(path, dtype="int16")
    assert sr == SR
    audio = np.concatenate([audio, np.zeros(SR // 2, np.int16)])
    seg = Segmenter(speech_chunks=True)
    feeder = SpeechFeeder(engine)
    for i in range(0, len(audio), block):
        seg.feed(audio[i : i + block])
        feeder.feed(seg.take_speech())
    seg.flush()
    feeder.feed(seg.take_speech())
    return feeder.transcripts, feeder.partials


def check_words(transcripts: list[Transcript]) -> None:
    prev = -1.0
    for t in transcripts:
        assert t.text == " ".join(w.text for w in t.words)
        for w in t.words:
            assert t.start_s <= w.start_s <= w.end_s <= t.end_s + 1e-6
            assert w.start_s >= prev - 1e-6, "word times go back"
            assert not is_filler(w.text) and "(" not in w.text, w.text
            prev = w.end_s


@pytest.fixture(scope="module")
def engine():
    return SphinxTranscriber()  # the default "batch" mode


def test_wer_function():
    assert word_error_rate("kids are talking by the door", "kids are talking by the door") == 0
    assert word_error_rate("kids are talking by the door", "kids talking by a door") == pytest.approx(2 / 6)
    assert word_error_rate("a b", "a b c d") == 1.0
    assert corpus_wer([("a b c d", "a b c d"), ("a b", "x y")]) == (pytest.approx(2 / 6), 2, 6)


def test_repository_clips(engine):
    """Always runs: the eight clips in tests/data (seven of them spoken with strong emotion)."""
    clips = sorted(DATA.glob("*.flac"))
    assert len(clips) == 8
    pairs = []
    doors = 0
    for clip in clips:
        transcripts, partials = transcribe_clip(engine, clip)
        assert transcripts, f"no utterance in {clip.name}"
        assert all(p == "" for p in partials), "batch mode has no partial text"
        check_words(transcripts)
        text = " ".join(t.text for t in transcripts)
        doors += "door" in text.split()
        pairs.append((reference(clip), text))
    wer, errors, words = corpus_wer(pairs)
    print(f"\npocketsphinx on tests/data: WER {wer:.3f} ({errors}/{words} words)")
    for ref, hyp in pairs:
        print(f"  {ref!r:34} -> {hyp!r}")
    assert wer <= 0.92, pairs  # measured 0.71 (0.83 before the own features for high voices): seven of the
    # eight are spoken with strong emotion
    assert doors >= 2, pairs  # measured 2


def test_hybrid_and_stream_modes(engine):
    clip = DATA / "03-01-01-01-01-01-01.flac"  # neutral: "Kids are talking by the door"
    hybrid = SphinxTranscriber("hybrid")
    transcripts, partials = transcribe_clip(hybrid, clip)
    assert any(partials), "hybrid mode gives partial text while speaking"
    check_words(transcripts)
    assert "door" in " ".join(t.text for t in transcripts)
    stream = SphinxTranscriber("stream")
    transcripts, partials = transcribe_clip(stream, clip)
    assert any(partials)
    check_words(transcripts)
    assert any(t.words for t in transcripts)
    with pytest.raises(ValueError):
        SphinxTranscriber("fast")


def test_silence_gives_no_words(engine):
    engine.start_utterance(7, 3 * SR)
    engine.accept(np.zeros(2 * SR, np.int16))
    t = engine.end_utterance()
    assert t.words == () and t.text == "" and t.utterance == 7
    assert (t.start_s, t.end_s) == (3.0, 5.0)


def _ravdess_selection(root: Path, intensity: str, per_actor: int) -> list[Path]:
    """``per_actor`` clips of the given intensity for each of the 20 actors, rotating over emotions and
    statements so that every emotion and both sentences are covered."""
    picked = []
    for actor in range(1, 21):
        files = [f for f in sorted((root / f"Actor_{actor:02d}").glob("03-01-*.flac"))
                 if f.name.split("-")[3] == intensity]
        if not files:
            continue
        step = max(1, len(files) // per_actor)
        start = (actor * 5) % step
        picked += files[start::step][:per_actor]
    return picked


def test_ravdess_wer():
    engine = SphinxTranscriber()  # a fresh one: the figures must not depend on which tests ran before
    root = ravdess_root()
    if not (root / "Actor_01").is_dir():
        pytest.skip(f"RAVDESS not found at {root}: set RAVDESS_DIR to a ravdess16k folder to run this test")
    normal = _ravdess_selection(root, "01", 3)
    strong = _ravdess_selection(root, "02", 1)
    assert len(normal) >= 50 and len(strong) >= 15
    results = {}
    halves: dict[str, list[tuple[str, str]]] = {"actors 01-10": [], "actors 11-20": []}
    for name, clips in (("normal", normal), ("strong", strong)):
        pairs = []
        for clip in clips:
            transcripts, _ = transcribe_clip(engine, clip, block=1600)
            check_words(transcripts)
            pairs.append((reference(clip), " ".join(t.text for t in transcripts)))
            halves["actors 01-10" if int(clip.parent.name[-2:]) <= 10 else "actors 11-20"].append(pairs[-1])
        results[name] = corpus_wer(pairs)
        print(f"\npocketsphinx WER, {name} intensity: {results[name][0]:.3f} over {len(clips)} clips "
              f"({results[name][1]}/{results[name][2]} words)")
    both = (results["normal"][1] + results["strong"][1]) / (results["normal"][2] + results["strong"][2])
    print(f"pocketsphinx WER, all {len(normal) + len(strong)} clips: {both:.3f}")
    for name, pairs in halves.items():
        print(f"pocketsphinx WER, {name}: {corpus_wer(pairs)[0]:.3f} over {len(pairs)} clips")
    # Measured with the frequency warp (sphinx_engine.WARP = 1.2, chosen on actors 01-10 only, on another
    # selection of their clips), FILLPROB = 0.01, and utterances whose median pitch is above HIGH_F0 = 220 Hz decoded
    # from the own features (sphinx_features.py: warp 1.3, spectrum smoothed over 0.7 x F0, 90 frames per second,
    # no noise removal; chosen on actors 01-10), and the other utterances decoded at warps 1.2 and 1.0 with the
    # better-scoring hypothesis kept (ALT_WARP): 0.281 over all 80 clips, 0.258 normal intensity (60 clips,
    # 93/360 words), 0.350 strong intensity (20 clips, 42/120); by actors: 0.267 on 01-10, 0.296 on 11-20.
    # Without the warp search: 0.298 all, 0.275 normal, 0.367 strong. Before the own features (pocketsphinx's
    # front end at warp 1.3 above 240 Hz): 0.310 all, 0.269 normal, 0.433 strong. Before FILLPROB and that:
    # 0.346 all, 0.289 normal, 0.517 strong.
    # Fixed warp 1.2 only: 0.346 all, 0.275 normal, 0.558 strong (0.308 on 01-10, 0.383 on 11-20).
    # Without any warp: 0.419 all, 0.350 normal, 0.625 strong (0.417 on 01-10, 0.421 on 11-20).
    # Strong emotion (shouting, fear, surprise) stays far outside what PocketSphinx's acoustic model knows.
    # The whole RAVDESS speech corpus (1200 clips, 47 % strong intensity; benchmarks/bench_wer.py, a fresh engine
    # per actor): 0.348 (0.244 normal, 0.467 strong); with the older pool-order protocol 0.351, 0.363 before the warp
    # search, 0.396 before the own features, 0.412 before FILLPROB, fixed warp 1.2 alone 0.427.
    # This selection weights normal speech 3:1.
    assert both <= 0.35
    assert results["normal"][0] <= 0.30
    assert results["strong"][0] <= 0.45


def test_factory_builds_each_mode():
    from monitor.transcription.factory import make_transcriber

    for mode in ("batch", "hybrid", "stream"):
        engine, note = make_transcriber("pocketsphinx", None, sphinx_mode=mode)
        assert isinstance(engine, SphinxTranscriber) and engine.mode == mode
        assert note.startswith("pocketsphinx")


def test_warp_search_helps_a_deep_voice():
    """Actor 09 of RAVDESS has the deepest voice of the corpus (median pitch about 100 Hz), which the default warp
    (1.2, chosen for the typical voice) moves the wrong way. The warp search's second decoder (ALT_WARP = 1.0) wins
    on his normal-intensity clips by its decoder score, with no reference."""
    root = ravdess_root()
    if not (root / "Actor_09").is_dir():
        pytest.skip(f"RAVDESS not found at {root}: set RAVDESS_DIR to a ravdess16k folder to run this test")
    # normal intensity (field 4), first repetition (field 6): 8 emotions x 2 sentences
    clips = [f for f in sorted((root / "Actor_09").glob("03-01-*.flac")) if f.name.split("-")[3::2][:2] == ["01", "01"]]
    assert len(clips) == 16
    searched, fixed = SphinxTranscriber(), SphinxTranscriber(warp_search=False)
    assert searched._alt is not None and fixed._alt is None
    assert SphinxTranscriber("stream")._alt is None  # stream mode decodes once, as audio arrives
    pairs: dict[str, list[tuple[str, str]]] = {"search": [], "fixed": []}
    for clip in clips:
        for name, engine in (("search", searched), ("fixed", fixed)):
            transcripts, _ = transcribe_clip(engine, clip, block=1600)
            check_words(transcripts)
            pairs[name].append((reference(clip), " ".join(t.text for t in transcripts)))
    wer = {name: corpus_wer(p)[0] for name, p in pairs.items()}
    print(f"\nactor 09, 16 normal clips: WER {wer['fixed']:.3f} at warp 1.2, {wer['search']:.3f} with the warp search")
    # measured: 0.844 at warp 1.2, 0.625 with the warp search
    assert wer["search"] <= wer["fixed"] - 0.08


def test_warp_search_follows_the_setting(tmp_path):
    """`[transcriber] sphinx_warp_search` reaches the engine: false builds no second decoder."""
    from monitor.config import load_config
    from monitor.transcription.factory import make_transcriber

    cfg = tmp_path / "c.toml"
    cfg.write_text("[transcriber]\nengine = 'pocketsphinx'\nsphinx_warp_search = false\n")
    t = load_config(cfg).transcriber
    assert t.sphinx_warp_search is False
    off, _ = make_transcriber(t.engine, None, sphinx_warp_search=t.sphinx_warp_search)
    on, _ = make_transcriber("pocketsphinx", None)
    assert off._alt is None and on._alt is not None
    assert make_transcriber("pocketsphinx", None, sphinx_mode="hybrid")[0]._alt is not None
