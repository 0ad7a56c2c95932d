"""Hands a segmenter's speech chunks to a transcriber, one utterance at a time (batch scoring, benchmarks, tests).

The live monitor does the same in its transcription worker, across a process boundary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class SpeechFeeder:
    """``feed()`` the chunks of ``Segmenter.take_speech()`` as they come; ``transcripts`` holds each finished
    utterance's Transcript, ``partials`` what ``accept()`` returned for every chunk of audio."""

    def __init__(self, transcriber: Any) -> None:
        self.transcriber = transcriber
        self.open: int | None = None
        self.transcripts: list[Any] = []
        self.partials: list[str] = []

    def feed(self, chunks: Iterable[Any]) -> None:
        for c in chunks:
            if self.open != c.utterance:
                if self.open is not None:  # should not happen: the segmenter ends each utterance
                    self.transcripts.append(self.transcriber.end_utterance())
                self.transcriber.start_utterance(c.utterance, c.start_sample)
                self.open = c.utterance
            if len(c.audio):
                self.partials.append(self.transcriber.accept(c.audio))
            if c.end:
                self.transcripts.append(self.transcriber.end_utterance())
                self.open = None

    def finish(self) -> None:
        """End an utterance left open (a stream cut short)."""
        if self.open is not None:
            self.transcripts.append(self.transcriber.end_utterance())
            self.open = None
