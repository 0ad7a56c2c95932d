"""What the pipeline produces: one Event per analysis window."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime


@dataclass(frozen=True)
class Word:
    """A recognised word with its start and end in stream seconds."""

    text: str
    start_s: float
    end_s: float
    conf: float = 1.0

    @property
    def mid_s(self) -> float:
        return 0.5 * (self.start_s + self.end_s)


@dataclass(frozen=True)
class Event:
    """The analysis of one window.

    ``start_s``/``end_s`` are stream seconds (from the first sample of the source); ``wall_start`` is the
    wall-clock time (Unix seconds) at which the window's first sample was captured. ``latency_s`` is the
    time from the window being cut to its emotion being known. ``arousal`` and ``valence`` (in [-1, 1]) come from
    the probabilities (``monitor.affect``).
    """

    index: int
    utterance: int
    start_s: float
    end_s: float
    wall_start: float
    emotion: str
    confidence: float
    probabilities: dict[str, float]
    arousal: float = 0.0
    valence: float = 0.0
    latency_s: float = 0.0
    text: str = ""
    words: tuple[Word, ...] = field(default_factory=tuple)
    speaker: str = ""  # "S1", "S2", ... (monitor.speakers); "" where no speaker was attributed
    adapted: float = -1.0  # how far it was normalised to its voice, 0-1 (monitor.inference.normalise); -1: off

    @property
    def time_iso(self) -> str:
        """Wall-clock start of the window, ISO 8601 with milliseconds and the local UTC offset."""
        return datetime.fromtimestamp(self.wall_start, tz=UTC).astimezone().isoformat(timespec="milliseconds")

    def with_speaker(self, speaker: str) -> Event:
        return replace(self, speaker=speaker)

    def with_words(self, words: tuple[Word, ...]) -> Event:
        return replace(self, words=words, text=" ".join(w.text for w in words))


@dataclass(frozen=True)
class AudioGap:
    """Audio that never reached the pipeline: ``seconds`` of it were lost just before stream second
    ``at_s`` (its wall clock runs from ``wall_from`` to ``wall_to``), for ``reason``."""

    at_s: float
    wall_from: float
    wall_to: float
    reason: str

    @property
    def seconds(self) -> float:
        return self.wall_to - self.wall_from

    @property
    def text(self) -> str:
        until = datetime.fromtimestamp(self.wall_to, tz=UTC).astimezone().isoformat(timespec="milliseconds")
        return f"[no audio for {self.seconds:.1f} s until {until}: {self.reason}]"
