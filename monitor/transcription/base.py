"""What every transcription engine produces and the interface the pipeline drives.

Times are STREAM seconds: seconds from the first sample of the source, i.e. the utterance's
``start_sample / 16000`` plus the offset of a word inside the utterance's audio.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from monitor.events import Word

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Transcript:
    """The final text of one utterance, with its words in stream seconds."""

    utterance: int
    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...] = field(default_factory=tuple)
    skipped: bool = False  # True when the worker dropped the utterance (backlog) instead of decoding it


@runtime_checkable
class Transcriber(Protocol):
    """One speech recogniser, driven from ONE thread, one utterance at a time.

    ``start_utterance`` opens an utterance whose first sample sits at ``start_sample`` in the stream;
    ``accept`` feeds its int16 16 kHz mono audio in order (any block size) and returns the current partial
    text; ``end_utterance`` closes it and returns the final transcript.
    """

    name: str

    def start_utterance(self, utterance: int, start_sample: int) -> None: ...

    def accept(self, audio_int16: np.ndarray) -> str: ...

    def end_utterance(self) -> Transcript: ...


def as_int16(audio: np.ndarray) -> np.ndarray:
    """A contiguous 1-D int16 view/copy of ``audio`` (float input is taken as [-1, 1])."""
    a = np.asarray(audio)
    if a.dtype != np.int16:
        if np.issubdtype(a.dtype, np.floating):
            a = np.clip(np.round(a * 32767.0), -32768, 32767)
        a = a.astype(np.int16)
    return np.ascontiguousarray(a.reshape(-1))


def monotonic_words(words: Iterable[Word], start_s: float, end_s: float | None = None) -> tuple[Word, ...]:
    """Words sorted by start, clamped to [start_s, end_s], each starting no earlier than the previous one
    ends and lasting at least 0 s: recognisers can return overlapping or slightly out-of-range times."""
    out: list[Word] = []
    prev_end = start_s
    for w in sorted(words, key=lambda w: (w.start_s, w.end_s)):
        s = max(w.start_s, prev_end)
        e = max(w.end_s, s)
        if end_s is not None:
            s = min(s, end_s)
            e = min(e, end_s)
        out.append(Word(w.text, round(s, 3), round(e, 3), round(float(w.conf), 3)))
        prev_end = e
    return tuple(out)
