"""The live pipeline: source -> ring buffer -> reader (convert, VAD, windows) -> worker (emotion) -> sinks.

Threads:
- the source's own (the sounddevice callback, or a file/stdin reader) only fills the ring buffer;
- ``reader``: ring -> 16 kHz mono -> segmenter; windows go into a bounded queue (a full queue drops the
  window and counts it, so a slow model never blocks capture), utterance audio goes to the transcriber's
  own worker (see ``monitor.transcription``), which never blocks either;
- ``worker``: window -> features -> TFLite -> Event. Events go to ``on_event`` (the dashboard) at once, and
  to the sinks (CSV, console) once their words are known, or after ``text_wait_s``.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from monitor.align import dominant_emotion, words_in_window
from monitor.analysis import WindowAnalyzer
from monitor.audio.convert import StreamConverter
from monitor.audio.sources import Source
from monitor.dsp.segmenter import Segmenter, SegmenterOptions, Window
from monitor.events import Event, Word
from monitor.inference.classifier import EmotionClassifier
from monitor.speakers.summary import SpeakerSummary, utterance_speaker
from monitor.speakers.turns import SpeakerTurns


class Sink(Protocol):
    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


@dataclass
class TranscriptLine:
    utterance: int
    start_s: float
    end_s: float
    text: str
    emotion: str  # dominant emotion of the utterance's windows ("" if none)
    speaker: str = ""  # the speaker of most of the utterance's windows ("" if speaker turns are off)


@dataclass
class PipelineStats:
    windows: int = 0
    events: int = 0
    dropped_windows: int = 0
    rows_without_text: int = 0
    late_transcripts: int = 0  # utterances whose words came after their rows were written (in the transcript file)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=500))
    emotions: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    sink_errors: list[str] = field(default_factory=list)

    def latency_summary(self) -> tuple[float, float]:
        """(median, 95th percentile) of recent window latencies in ms."""
        lat = sorted(self.latencies_ms)
        if not lat:
            return 0.0, 0.0
        return statistics.median(lat), lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]


_END = object()


class Pipeline:
    def __init__(
        self,
        source: Source,
        classifier: EmotionClassifier,
        segmenter_options: SegmenterOptions | None = None,
        sinks: Sequence[Sink] = (),
        transcription: Any = None,
        on_event: Callable[[Event], None] | None = None,
        on_transcript: Callable[[TranscriptLine], None] | None = None,
        queue_windows: int = 8,
        text_wait_s: float = 8.0,
        speakers: SpeakerTurns | None = None,
        transcript_file: Any = None,
        normalise: bool = True,
        prosody: bool = True,
    ) -> None:
        self.source = source
        self.classifier = classifier
        self.segmenter = Segmenter(segmenter_options or SegmenterOptions.monitor(),
                                   speech_chunks=transcription is not None)
        self.analyzer = WindowAnalyzer(classifier, normalise=normalise, prosody=prosody,
                                       embeddings=speakers is not None)
        self.sinks = list(sinks)
        self.transcription = transcription
        self.on_event = on_event
        self.on_transcript = on_transcript
        self.speakers = speakers  # the session's speaker turns (None: off)
        self.speaker_summary = SpeakerSummary()
        self.transcript_file = transcript_file  # every recognised utterance, keyed by utterance and time
        self._untexted: dict[int, None] = {}  # utterances with rows written before their words (recent ones)
        # A file read faster than real time waits for its words as long as it takes; live audio does not.
        self.text_wait_s = text_wait_s if source.realtime else float("inf")
        # At the end the transcriber may finish what it holds (words must not be lost), within limits.
        self._drain_s = max(text_wait_s, 5.0) if source.realtime else 3600.0
        self.stats = PipelineStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_windows)
        self._pending: deque[tuple[Event, float]] = deque()
        self._words: list[Word] = []
        self._utt_events: dict[int, list[Event]] = {}
        self._reader = threading.Thread(target=self._read_loop, name="reader", daemon=True)
        self._worker = threading.Thread(target=self._work_loop, name="worker", daemon=True)
        self.finished = threading.Event()
        self.error: str | None = None
        self._gaps_sent = 0

    # --- control --------------------------------------------------------------------------------
    def start(self) -> None:
        self.stats.started = time.monotonic()
        if self.transcription is not None:
            self.transcription.start()
        self.source.start()
        self._reader.start()
        self._worker.start()

    def wait(self, duration: float | None = None, poll: float = 0.1) -> None:
        """Block until the source ends (file, stdin) or ``duration`` seconds have passed."""
        deadline = None if duration is None else time.monotonic() + duration
        while not self.finished.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return
            self.finished.wait(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))

    def stop(self, interrupted: bool = False) -> None:
        """Stop the source, drain what was captured, flush and close the sinks.

        The transcriber gets ``text_wait_s`` (a file read faster than real time: as long as it needs) to
        finish the words of the last rows; after an interrupt, at most 5 s. Rows are written before the sinks
        close, with the words known by then.
        """
        if interrupted:
            self._drain_s = min(self._drain_s, 5.0)
        self.source.stop()
        if self._reader.ident is not None:
            self._reader.join(10.0)
        else:
            self._queue.put(_END)
        if self._worker.ident is not None:
            self._worker.join(self._drain_s + 10.0)
        for sink in self.sinks + ([self.transcript_file] if self.transcript_file is not None else []):
            try:
                sink.close()
            except Exception as exc:  # a sink's close must not hide the others
                self.stats.sink_errors.append(str(exc))

    # --- state for the dashboard ----------------------------------------------------------------
    @property
    def level_dbfs(self) -> float:
        return self.segmenter.level_dbfs

    @property
    def in_speech(self) -> bool:
        return self.segmenter.in_speech

    @property
    def meter(self) -> tuple[float, bool]:
        """(level dBFS, in speech) as one pair: the level is held at the last speech frame while in speech."""
        return self.segmenter.meter

    @property
    def position_s(self) -> float:
        return self.segmenter.position_s

    @property
    def dropped_blocks(self) -> int:
        ring = self.source.ring
        return (ring.dropped_blocks if ring is not None else 0) + self.source.overflows

    # --- threads --------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        ring = self.source.ring
        assert ring is not None
        conv = StreamConverter(self.source.rate)
        chunk = max(1, int(self.source.rate * 0.1))
        lossless = not self.source.realtime
        try:
            while True:
                block = ring.read(chunk, timeout=0.1)
                if block is None:
                    break
                if len(block) == 0:
                    continue
                self._segment(conv.process(block), lossless)
            self._segment(conv.process(np.zeros((0, self.source.channels), np.int16), last=True), lossless)
            self._dispatch(self.segmenter.flush(), lossless=True)
            self._speech()
        except Exception as exc:  # never die silently: report and end the run
            self.error = f"audio processing failed: {exc}"
        finally:
            self._queue.put(_END)

    def _segment(self, audio: Any, lossless: bool) -> None:
        if len(audio):
            self._dispatch(self.segmenter.feed(audio), lossless)
            self._speech()

    def _speech(self) -> None:
        if self.transcription is not None:
            for piece in self.segmenter.take_speech():
                self.transcription.submit(piece)

    def _dispatch(self, windows: list[Window], lossless: bool) -> None:
        for w in windows:
            self.stats.windows += 1
            item = (w, time.monotonic())
            if lossless:
                while not self._put(item):
                    if not self._worker.is_alive():
                        return
            else:
                try:
                    self._queue.put_nowait(item)
                except queue.Full:
                    self.stats.dropped_windows += 1

    def _put(self, item: Any) -> bool:
        try:
            self._queue.put(item, timeout=0.5)
            return True
        except queue.Full:
            return False

    def _work_loop(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=0.1)
                except queue.Empty:
                    item = None
                if item is _END:
                    break
                if item is not None:
                    self._analyze(*item)
                done = self._done_until()  # read before collecting, so no finished words are missed
                self._collect_transcripts()
                self._release(done, final=False)
                if not self._pending:  # marks of missing audio long past any window still to come
                    self._send_gaps(self.position_s - 60.0)
            if self.transcription is not None:
                self.transcription.close(timeout=self._drain_s)
            done = self._done_until()
            self._collect_transcripts()
            self._release(done, final=True)
            self._send_gaps(float("inf"))
        except Exception as exc:
            self.error = f"analysis failed: {exc}"
        finally:
            self.finished.set()

    def _analyze(self, window: Window, cut_at: float) -> None:
        wall = self.source.clock.wall(window.start_sample)
        speaker = self.speakers.label(window.audio) if self.speakers is not None else ""
        event = self.analyzer.analyze(window, cut_at=cut_at, wall_start=wall, speaker=speaker,
                                      states=self.speakers.states if self.speakers is not None else None)
        if self.speakers is not None:
            event = event.with_speaker(speaker)
            self.speaker_summary.add(event)
        self.stats.events += 1
        self.stats.latencies_ms.append(event.latency_s * 1000)
        self.stats.emotions[event.emotion] += 1
        self._utt_events.setdefault(event.utterance, []).append(event)
        if len(self._utt_events) > 200:
            self._utt_events.pop(next(iter(self._utt_events)))
        if self.on_event is not None:
            self.on_event(event)
        self._pending.append((event, time.monotonic()))

    def _collect_transcripts(self) -> None:
        if self.transcription is None:
            return
        for t in self.transcription.take_transcripts():
            self._words.extend(t.words)
            if t.text:
                self._keep_transcript(t)
            if self.on_transcript is not None and t.text:
                events = self._utt_events.get(t.utterance, [])
                dom = dominant_emotion(events)
                speaker = utterance_speaker(events, self.speakers.resolve) if self.speakers is not None else ""
                self.on_transcript(
                    TranscriptLine(t.utterance, t.start_s, t.end_s, t.text, dom[0] if dom else "", speaker)
                )
        if len(self._words) > 4000:
            # Keep every word a waiting row may still need.
            oldest = self._pending[0][0].start_s if self._pending else float("inf")
            keep = [w for w in self._words if w.end_s >= oldest]
            self._words = keep

    def _keep_transcript(self, t: Any) -> None:
        """Words must never be lost: every utterance's text goes to the transcript file; late ones are counted."""
        late = t.utterance in self._untexted
        self.stats.late_transcripts += int(late)
        if self.transcript_file is not None:
            wall = self.source.clock.wall(int(round(t.start_s * 16000)))
            self._to_sink(lambda tr: self.transcript_file.add(tr.utterance, tr.start_s, tr.end_s, wall, tr.text, late),
                          t)

    def _done_until(self) -> float:
        return self.transcription.done_until_s if self.transcription is not None else float("inf")

    def _release(self, done_until: float, final: bool) -> None:
        now = time.monotonic()
        while self._pending:
            event, since = self._pending[0]
            ready = final or self.transcription is None or done_until >= event.end_s
            if not ready and now - since < self.text_wait_s:
                break
            self._pending.popleft()
            if self.transcription is not None:
                if done_until < event.end_s:
                    self.stats.rows_without_text += 1
                    self._untexted[event.utterance] = None
                    if len(self._untexted) > 1000:
                        self._untexted.pop(next(iter(self._untexted)))
                event = event.with_words(words_in_window(self._words, event.start_s, event.end_s))
            self._send_gaps(event.start_s)
            for sink in self.sinks:
                self._to_sink(sink.handle, event)

    def _send_gaps(self, until_s: float) -> None:
        """Tell the sinks that can say so (the CSV) where audio is missing, in stream order."""
        gaps = self.source.clock.gaps
        while self._gaps_sent < len(gaps) and gaps[self._gaps_sent].at_s <= until_s:
            gap = gaps[self._gaps_sent]
            self._gaps_sent += 1
            for sink in self.sinks:
                if hasattr(sink, "handle_gap"):
                    self._to_sink(sink.handle_gap, gap)

    def _to_sink(self, handle: Callable[[Any], None], item: Any) -> None:
        try:
            handle(item)
        except Exception as exc:
            if len(self.stats.sink_errors) < 10:
                self.stats.sink_errors.append(str(exc))
