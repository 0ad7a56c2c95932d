"""Live sessions for the page: the live monitor's Pipeline on a source, its Events turned into messages.

A :class:`LiveSession` builds the same pipeline ``voice-monitor live`` builds (classifier, transcriber in its
own process, segmenter settings from the config, optional CSV timeline) around any source: a
:class:`~monitor.audio.push_source.PushSource` fed by the browser's WebSocket, or the server's own microphone.
What the dashboard gets (``on_event``, ``on_transcript``) and what the CSV gets (the row with its words) are
handed to ``publish`` as JSON-ready dicts; :class:`Hub` carries them to any number of async listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from monitor.config import Config
from monitor.events import Event
from monitor.sinks.csv_timeline import CsvTimeline, DailyCsvTimeline, event_row, timeline_columns

Message = dict[str, Any]
KEPT = ("window", "row", "transcript")  # what a late listener is shown again


def make_csv(labels: Sequence[str], csv_path: str | None, csv_dir: str | None) -> Any:
    """The live monitor's CSV sink for ``csv_path`` (one file) or ``csv_dir`` (one per day), else None."""
    if csv_path:
        return CsvTimeline(csv_path, labels)
    if csv_dir:
        return DailyCsvTimeline(csv_dir, labels)
    return None


class _RowSink:
    """A pipeline sink: each row, once its words are known, as the CSV timeline writes it."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session

    def handle(self, event: Event) -> None:
        self.session.publish({"type": "row", "row": self.session.row(event)})

    def close(self) -> None:
        pass


class LiveSession:
    def __init__(self, cfg: Config, source: Any, publish: Callable[[Message], None],
                 csv_path: str | None = None, csv_dir: str | None = None) -> None:
        from monitor.cli import _make_transcription
        from monitor.inference.classifier import EmotionClassifier
        from monitor.pipeline import Pipeline

        self.publish = publish
        self.source = source
        classifier = EmotionClassifier(cfg.model.path or None, num_threads=cfg.model.threads)
        self.labels = classifier.labels
        self.columns = timeline_columns(self.labels)
        sinks: list[Any] = [_RowSink(self)]
        self.csv = make_csv(self.labels, csv_path, csv_dir)
        if self.csv is not None:
            sinks.append(self.csv)
        self.transcription, self.text_note = _make_transcription(cfg, start_anyway=True, realtime=True)
        self.pipeline = Pipeline(
            source, classifier, cfg.segmenter_options(classifier.features.window_s), sinks=sinks,
            transcription=self.transcription, on_event=self._on_event, on_transcript=self._on_transcript,
            queue_windows=cfg.pipeline.queue_windows, text_wait_s=cfg.transcriber.text_wait_s,
            normalise=cfg.model.normalise,
            prosody=cfg.model.prosody,
        )
        self.model = classifier.info.path.name
        self._stopped = False

    def row(self, event: Event) -> dict[str, str]:
        return dict(zip(self.columns, event_row(event, self.labels), strict=True))

    def hello(self) -> Message:
        return {"type": "hello", "labels": list(self.labels), "columns": self.columns,
                "source": self.source.description, "model": self.model, "text": self.text_note}

    def _on_event(self, event: Event) -> None:
        self.publish({"type": "window", "row": self.row(event)})

    def _on_transcript(self, line: Any) -> None:  # monitor.pipeline.TranscriptLine
        self.publish({"type": "transcript", "utterance": line.utterance, "start_s": round(line.start_s, 3),
                      "end_s": round(line.end_s, 3), "text": line.text, "emotion": line.emotion})

    def status(self) -> Message:
        p = self.pipeline
        med, _ = p.stats.latency_summary()
        return {"type": "status", "position_s": round(p.position_s, 2),
                "level_dbfs": round(max(-120.0, p.level_dbfs), 1), "in_speech": p.in_speech,
                "windows": p.stats.events, "dropped_blocks": p.dropped_blocks,
                "dropped_windows": p.stats.dropped_windows, "latency_ms": round(med, 1),
                "error": p.error or self.source.error or ""}

    def start(self) -> None:
        self.pipeline.start()

    def stop(self, interrupted: bool = False) -> Message:
        """Blocking: drain the pipeline, close the sinks and the transcriber; the final status."""
        if not self._stopped:
            self._stopped = True
            try:
                self.pipeline.stop(interrupted=interrupted)
            finally:
                if self.transcription is not None:
                    with contextlib.suppress(Exception):
                        self.transcription.engine.close()
        end = self.status()
        end["type"] = "end"
        end["rows"] = self.csv.rows if self.csv is not None else None
        return end


class Hub:
    """Messages from pipeline threads to asyncio listeners. ``publish`` is thread-safe; each listener has its
    own queue (a listener that falls far behind is dropped rather than slowing the others)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, history: int = 2000, queue_size: int = 5000) -> None:
        self.loop = loop
        self.history: deque[Message] = deque(maxlen=history)
        self.listeners: set[asyncio.Queue[Message | None]] = set()
        self.queue_size = queue_size
        self.hello: Message | None = None

    def publish(self, message: Message) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is shutting down
            self.loop.call_soon_threadsafe(self._deliver, message)

    def _deliver(self, message: Message | None) -> None:
        if message is not None and message.get("type") in KEPT:
            self.history.append(message)
        for q in list(self.listeners):
            try:
                q.put_nowait(message)
            except asyncio.QueueFull:
                self.listeners.discard(q)
                with contextlib.suppress(asyncio.QueueFull):
                    q.get_nowait()
                    q.put_nowait(None)

    def close(self) -> None:
        """Every listener gets None (the end) after what it was already sent."""
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._deliver, None)

    def listen(self, replay: bool = True) -> asyncio.Queue[Message | None]:
        """Call on the loop: a new queue, first filled with the hello and the kept history."""
        q: asyncio.Queue[Message | None] = asyncio.Queue(self.queue_size)
        if replay:
            for m in ([self.hello] if self.hello else []) + list(self.history)[-(self.queue_size // 2):]:
                q.put_nowait(m)
        self.listeners.add(q)
        return q

    def unlisten(self, q: asyncio.Queue[Message | None]) -> None:
        self.listeners.discard(q)
