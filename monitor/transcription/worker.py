"""Transcription on its own thread, so a slow recogniser never holds up capture or emotion analysis.

The pipeline ``submit``s the segmenter's ``SpeechChunk``s (non-blocking) and polls ``take_transcripts``,
``partial``, ``lag_s`` and ``done_until_s``. The queue is bounded by audio duration: when the audio waiting
(queued plus the block being decoded) would exceed ``max_backlog_s``, the utterance that the incoming chunk
belongs to is skipped whole: its queued chunks are removed, the rest of its chunks are dropped on arrival, a
decode already started on it is abandoned, and it counts in ``skipped_utterances``. A skipped utterance gets no
transcript and never holds back ``done_until_s``.

The engine runs on this thread. An engine whose C code holds the GIL while decoding (pocketsphinx does) would
still stall the other Python threads: give such an engine to the worker through a process boundary (the
pipeline uses ``monitor.transcription.isolated.IsolatedTranscriber``). Vosk releases the GIL (cffi).
``busy_s`` counts this thread's CPU; ``engine_wall_s`` the wall time spent in engine calls, which is the
engine's own time when it runs in another process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from monitor.dsp.segmenter import SpeechChunk
from monitor.transcription.base import SAMPLE_RATE, Transcriber, Transcript

log = logging.getLogger(__name__)


@dataclass
class _Item:
    utterance: int
    start_sample: int
    audio: np.ndarray
    end: bool
    abandon: bool = False  # stop decoding this utterance and discard it (it was skipped)


class TranscriptionWorker:
    """Runs one ``Transcriber`` on a background thread fed through a bounded (by duration) queue."""

    def __init__(self, transcriber: Transcriber, max_backlog_s: float = 15.0, *, merge_s: float = 1.0) -> None:
        if max_backlog_s <= 0:
            raise ValueError("max_backlog_s must be > 0")
        self.transcriber = transcriber
        self.max_backlog = int(max_backlog_s * SAMPLE_RATE)
        self._merge = int(merge_s * SAMPLE_RATE)  # queued chunks of one utterance are fed together, up to this
        self._cv = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._backlog = 0  # samples submitted and not yet decoded (queued + the block in the engine)
        self._skipping: set[int] = set()  # utterances being skipped whose end chunk has not arrived yet
        self._open: dict[int, int] = {}  # utterance -> start sample, submitted and not finished (nor skipped)
        self._known_until = 0  # furthest stream sample seen in any submitted chunk
        self._transcripts: list[Transcript] = []
        self._partial = ""
        self._skipped = 0
        self._busy = 0.0
        self._engine_wall = 0.0
        self._current: int | None = None  # utterance open in the engine (worker thread only)
        self._failed: set[int] = set()  # utterances the engine failed on, whose end chunk has not come yet
        self._stop = False
        self._abandon = False
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.last_error: str | None = None

    # --- control ----------------------------------------------------------------------------------------
    def start(self) -> TranscriptionWorker:
        if self._thread is not None:
            raise RuntimeError("worker already started")
        self._thread = threading.Thread(target=self._run, name=f"transcriber-{self.transcriber.name}", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0, *, drain: bool = True) -> bool:
        """Stop the thread. With ``drain`` the queued audio is decoded first (and an utterance still open is
        ended, so its words are not lost), for at most ``timeout`` seconds; past that, or without ``drain``,
        the queue is abandoned. Returns True if the thread has ended."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cv:
            self._stop = True
            if not drain:
                self._abandon_queue()
            self._cv.notify_all()
        if self._thread is None:
            return True
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            with self._cv:
                self._abandon_queue()
                self._cv.notify_all()
            self._thread.join(1.0)
        return not self._thread.is_alive()

    def __enter__(self) -> TranscriptionWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- producer side (any thread; never blocks on the engine) ---------------------------------------------
    def submit(self, chunk: SpeechChunk) -> bool:
        """Queue a chunk for transcription; returns False if it was dropped (its utterance is being skipped)."""
        audio = np.asarray(chunk.audio, dtype=np.int16).reshape(-1)
        u = chunk.utterance
        n = len(audio)
        with self._cv:
            self._known_until = max(self._known_until, chunk.start_sample + n, chunk.start_sample)
            if u in self._skipping:
                if chunk.end:
                    self._skipping.discard(u)
                return False
            if n and self._backlog > 0 and self._backlog + n > self.max_backlog:
                self._skip(u, chunk.end)
                return False
            self._open.setdefault(u, chunk.start_sample)
            self._queue.append(_Item(u, chunk.start_sample, audio, chunk.end))
            self._backlog += n
            self._cv.notify()
        return True

    def _skip(self, u: int, ended: bool) -> None:
        """Skip utterance ``u`` (lock held)."""
        self._skipped += 1
        if not ended:
            self._skipping.add(u)
        kept: deque[_Item] = deque()
        for it in self._queue:
            if it.utterance == u and not it.abandon:
                self._backlog -= len(it.audio)
            else:
                kept.append(it)
        self._queue = kept
        self._open.pop(u, None)
        self._queue.append(_Item(u, 0, np.zeros(0, dtype=np.int16), True, abandon=True))
        self._cv.notify()

    def _abandon_queue(self) -> None:
        """Drop everything queued (lock held): those utterances count as skipped."""
        dropped = {it.utterance for it in self._queue if not it.abandon}
        self._skipped += len(dropped - {self._current})
        self._queue.clear()
        self._backlog = 0
        self._abandon = True
        for u in dropped:
            if u != self._current:
                self._open.pop(u, None)

    # --- consumer side ------------------------------------------------------------------------------------
    def take_transcripts(self) -> list[Transcript]:
        """The transcripts finished since the last call, in order."""
        with self._cv:
            out, self._transcripts = self._transcripts, []
        return out

    @property
    def partial(self) -> str:
        """The running text of the utterance being decoded ("" between utterances)."""
        return self._partial

    @property
    def lag_s(self) -> float:
        """Seconds of submitted audio not yet decoded."""
        return self._backlog / SAMPLE_RATE

    @property
    def skipped_utterances(self) -> int:
        return self._skipped

    @property
    def busy_s(self) -> float:
        """CPU seconds the worker thread has spent in the engine."""
        return self._busy

    @property
    def engine_wall_s(self) -> float:
        """Wall-clock seconds spent inside engine calls."""
        return self._engine_wall

    @property
    def done_until_s(self) -> float:
        """Stream time up to which every submitted utterance is transcribed or skipped: the start of the oldest
        unfinished utterance, else the furthest point submitted."""
        with self._cv:
            until = min(self._open.values()) if self._open else self._known_until
        return until / SAMPLE_RATE

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- worker thread ------------------------------------------------------------------------------------
    def _next(self) -> _Item | None:
        with self._cv:
            while not self._queue:
                if self._stop:
                    return None
                self._cv.wait(0.5)
            if self._abandon:
                return None
            item = self._queue.popleft()
            # Merge following audio of the same utterance (fewer engine calls when behind).
            while (not item.end and not item.abandon and self._queue and len(item.audio) < self._merge
                   and self._queue[0].utterance == item.utterance and not self._queue[0].abandon):
                nxt = self._queue.popleft()
                item = _Item(item.utterance, item.start_sample, np.concatenate([item.audio, nxt.audio]), nxt.end)
            return item

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                break
            t0, w0 = time.thread_time(), time.perf_counter()
            try:
                self._process(item)
            except Exception as e:  # an engine failure must not kill the thread: drop the utterance(s)
                self._fail(item, e)
            finally:
                self._busy += time.thread_time() - t0
                self._engine_wall += time.perf_counter() - w0
                with self._cv:
                    if not item.abandon:
                        self._backlog = max(0, self._backlog - len(item.audio))
        # Stream over: close an utterance left open so its words are kept (not when abandoning).
        if self._current is not None and not self._abandon:
            t0 = time.thread_time()
            try:
                self._finish(self.transcriber.end_utterance())
            except Exception as e:
                self.errors += 1
                self.last_error = f"{type(e).__name__}: {e}"
            self._busy += time.thread_time() - t0
        elif self._current is not None:  # abandoned mid-utterance: it counts as skipped
            with self._cv:
                self._open.pop(self._current, None)
                self._skipped += 1
            self._current = None
        self._partial = ""

    def _fail(self, item: _Item, exc: Exception) -> None:
        """The engine raised: count it, drop the utterance it was on (and the one being processed), and ignore
        the rest of their chunks. Logged at debug level only: a dashboard owns the terminal; ``errors`` and
        ``last_error`` carry it."""
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.debug("transcriber failed on utterance %d", item.utterance, exc_info=True)
        failed = {item.utterance} | ({self._current} if self._current is not None else set())
        self._current = None
        self._partial = ""
        with self._cv:
            for u in failed:
                self._open.pop(u, None)
                if not (u == item.utterance and (item.end or item.abandon)):
                    self._failed.add(u)

    def _process(self, item: _Item) -> None:
        eng = self.transcriber
        if item.utterance in self._failed and not item.abandon:
            with self._cv:
                self._open.pop(item.utterance, None)
                if item.end:
                    self._failed.discard(item.utterance)
            return
        if item.abandon:
            self._failed.discard(item.utterance)
            if self._current == item.utterance:
                eng.end_utterance()  # discarded: the utterance was skipped
                self._current = None
                self._partial = ""
            return
        if self._current != item.utterance:
            if self._current is not None:  # its end chunk never came: close it anyway
                self._finish(eng.end_utterance())
            eng.start_utterance(item.utterance, item.start_sample)
            self._current = item.utterance
        if len(item.audio):
            self._partial = eng.accept(item.audio)
        if item.end:
            self._finish(eng.end_utterance())

    def _finish(self, t: Transcript) -> None:
        with self._cv:
            self._transcripts.append(t)
            self._open.pop(t.utterance, None)
        self._current = None
        self._partial = ""
