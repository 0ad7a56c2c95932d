"""Speaker turns of one file or session: window audio -> embedding -> speaker label (``S1``, ``S2``, ...)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.dsp.vad import SAMPLE_RATE
from monitor.events import Event
from monitor.speakers.cluster import SpeakerOptions, SpeakerTracker
from monitor.speakers.encoder import SpeakerEncoder


class SpeakerTurns:
    """Labels the windows of ONE file or session (the encoder is shared; the clustering state is not)."""

    def __init__(self, encoder: SpeakerEncoder, options: SpeakerOptions | None = None) -> None:
        self.encoder = encoder
        self.tracker = SpeakerTracker(options or SpeakerOptions())

    def label(self, audio: np.ndarray) -> str:
        """The speaker of one window's audio ("" for silence, or a short window before any speaker)."""
        return self.tracker.assign(self.encoder.vector(audio), len(audio) / SAMPLE_RATE)

    def resolve(self, label: str) -> str:
        return self.tracker.resolve(label) if label else ""

    def relabel(self, events: Sequence[Event]) -> list[Event]:
        """``events`` with the labels of merged speakers replaced by the survivors' (batch: before writing)."""
        return [e if e.speaker == self.resolve(e.speaker) else e.with_speaker(self.resolve(e.speaker)) for e in events]

    @property
    def count(self) -> int:
        """Speakers found so far (after merges)."""
        return len(self.tracker.speakers)
