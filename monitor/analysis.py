"""Window -> Event: the emotion half of the worker, shared by the live monitor and batch scoring."""

from __future__ import annotations

import time

from monitor.dsp.segmenter import Window
from monitor.events import Event
from monitor.inference.classifier import EmotionClassifier


class WindowAnalyzer:
    """Classifies segmenter windows. ``wall_origin`` is the wall-clock time of stream sample 0."""

    def __init__(self, classifier: EmotionClassifier, wall_origin: float = 0.0) -> None:
        self.classifier = classifier
        self.wall_origin = wall_origin

    def analyze(self, window: Window, cut_at: float | None = None, wall_start: float | None = None) -> Event:
        """``cut_at``: time.monotonic() when the segmenter emitted the window (for the latency figure);
        ``wall_start``: the wall-clock time of its first sample, if the source knows it better."""
        pred = self.classifier.predict(window.audio)
        latency = time.monotonic() - cut_at if cut_at is not None else 0.0
        return Event(
            index=window.index,
            utterance=window.utterance,
            start_s=window.start_s,
            end_s=window.end_s,
            wall_start=wall_start if wall_start is not None else self.wall_origin + window.start_s,
            emotion=pred.label,
            confidence=pred.confidence,
            probabilities=pred.probabilities,
            arousal=pred.arousal,
            valence=pred.valence,
            latency_s=latency,
        )
