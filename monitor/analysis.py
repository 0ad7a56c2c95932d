"""Window -> Event: the emotion half of the worker, shared by the live monitor and batch scoring."""

from __future__ import annotations

import time

import numpy as np

from monitor.dsp.features import log_mel
from monitor.dsp.segmenter import Window
from monitor.events import Event
from monitor.inference.baseline import Baseline, log_probs
from monitor.inference.classifier import EmotionClassifier
from monitor.inference.normalise import SessionNormaliser


class WindowAnalyzer:
    """Classifies the windows of one session (a live run, or one file). ``wall_origin`` is the wall-clock time
    of stream sample 0. With ``normalise`` (and a model trained for it) each window is normalised against the
    voices heard so far in the session (``monitor.inference.normalise``), per speaker when one is given.
    ``voice``: a normaliser shared with other files known to hold the same voice (``score --voice-group``); it
    then stands for that one voice, and the window's speaker label does not split it. ``baseline``: the run's
    lean, taken out of every window's probabilities (``monitor.inference.baseline``); ``log_sum`` and ``windows``
    keep the log-probabilities before it, which a run's survey reads."""

    def __init__(self, classifier: EmotionClassifier, wall_origin: float = 0.0, normalise: bool = True,
                 voice: SessionNormaliser | None = None, baseline: Baseline | None = None) -> None:
        self.classifier = classifier
        self.wall_origin = wall_origin
        self.baseline = baseline
        self.log_sum = np.zeros(len(classifier.labels))
        self.windows = 0
        norm = classifier.norm if normalise else None
        self.per_speaker = voice is None
        if norm is None:
            self.normaliser = None
        else:
            self.normaliser = voice if voice is not None else SessionNormaliser(norm)

    def analyze(self, window: Window, cut_at: float | None = None, wall_start: float | None = None,
                speaker: str = "") -> Event:
        """``cut_at``: time.monotonic() when the segmenter emitted the window (for the latency figure);
        ``wall_start``: the wall-clock time of its first sample, if the source knows it better; ``speaker``:
        the window's speaker label, if known (its own profile then counts as far as it has been heard)."""
        feats = log_mel(window.audio, self.classifier.features)
        adapted = -1.0
        if self.normaliser is not None:
            key = speaker if self.per_speaker else ""
            feats = self.normaliser.normalise(feats, key)
            adapted = self.normaliser.adaptation(key)
        p = self.classifier.probabilities(feats)
        self.log_sum += log_probs(p)
        self.windows += 1
        pred = self.classifier.prediction(p if self.baseline is None else self.baseline.apply(p))
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
            adapted=adapted,
        )
