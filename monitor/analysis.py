"""Window -> Event: the emotion half of the worker, shared by the live monitor and batch scoring."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from monitor.dsp.features import log_mel
from monitor.dsp.functionals import functionals
from monitor.dsp.segmenter import Window
from monitor.events import Event
from monitor.inference.baseline import Baseline, BaselineOptions, log_probs
from monitor.inference.classifier import EmotionClassifier, Prediction
from monitor.inference.normalise import SessionNormaliser
from monitor.inference.prosody import VoiceStats, fuse


@dataclass(frozen=True)
class Measure:
    """What a window's judgement is made from: the CNN's probabilities (normalised to its voice, before the run's
    baseline) and the head's inputs (its functionals, and for a voice head its encoder states' components; None
    without a head)."""

    probabilities: tuple[float, ...]
    functionals: tuple[float, ...] | None
    vector: tuple[float, ...] | None = None  # its place in the speaker space (speaker turns on)
    key: str = ""  # the voice it was judged as (its speaker label then, before a file's second pass)


class WindowAnalyzer:
    """Classifies the windows of one session (a live run, or one file). ``wall_origin`` is the wall-clock time
    of stream sample 0. With ``normalise`` (and a model trained for it) each window is normalised against the
    voices heard so far in the session (``monitor.inference.normalise``), per speaker when one is given.
    ``voice``: a normaliser shared with other files known to hold the same voice (``score --voice-group``); it
    then stands for that one voice, and the window's speaker label does not split it. ``baseline``: the run's
    lean, taken out of every window's probabilities (``monitor.inference.baseline``); ``log_sum`` and ``windows``
    keep the CNN's log-probabilities before it, which a run's survey reads. ``prosody`` (and a model with a
    prosody head): the head's judgement of the window's functionals is fused with the CNN's
    (``monitor.inference.prosody``), standardised by what the session's voices have sounded like so far, pulled
    towards the run's statistics when the baseline has them (and, when it has the run's voices, towards those of
    the group nearest the voice: ``monitor.inference.run_voices``), else the training windows';
    ``functional_sum`` / ``functional_sq`` keep what a survey reads of them, ``voice_sum`` the window vectors
    given. ``embeddings``: each window comes with the speaker encoder's reading (speaker turns are on), so the
    model's voice head, if it has one, is fused instead of the functionals head."""

    def __init__(self, classifier: EmotionClassifier, wall_origin: float = 0.0, normalise: bool = True,
                 voice: SessionNormaliser | None = None, baseline: Baseline | None = None,
                 prosody: bool = True, keep_measures: bool = False, embeddings: bool = False) -> None:
        self.classifier = classifier
        self.measures: list[Measure] | None = [] if keep_measures else None
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
        head = classifier.voice_head if embeddings and classifier.voice_head is not None else classifier.prosody
        self.head = head if prosody else None
        self.functional_sum: np.ndarray | None = None
        self.functional_sq: np.ndarray | None = None
        self._voice_of: dict[str, np.ndarray] = {}  # the windows' vectors in the speaker space, summed per voice
        if self.head is not None:
            run = baseline.stats if baseline is not None else None
            if run is not None:
                self.stats = self.head.shrunk(np.asarray(run.mean), np.asarray(run.std), run.files,
                                              BaselineOptions().prior_files)
                self.weight, self.temperature = self.head.weight_run, self.head.temperature_run
            else:
                self.stats = self.head.population
                self.weight, self.temperature = self.head.weight_alone, self.head.temperature_alone
            self.functional_sum = np.zeros(len(self.head.names))
            self.functional_sq = np.zeros(len(self.head.names))
            self.run_voices = baseline.voices if baseline is not None and run is not None else None
            # what the session's voices have sounded like: shared with the band profiles (a voice group's files)
            self.voices = self.normaliser.prosody if self.normaliser is not None else VoiceStats()

    def analyze(self, window: Window, cut_at: float | None = None, wall_start: float | None = None,
                speaker: str = "", states: np.ndarray | None = None, vector: np.ndarray | None = None) -> Event:
        """``cut_at``: time.monotonic() when the segmenter emitted the window (for the latency figure);
        ``wall_start``: the wall-clock time of its first sample, if the source knows it better; ``speaker``:
        the window's speaker label, if known (its own profile then counts as far as it has been heard);
        ``states``: the speaker encoder's states for it (``SpeakerEncoder.read``; what a voice head reads);
        ``vector``: its place in the speaker space (``SpeakerEncoder.project``; the run's voices read it)."""
        feats = log_mel(window.audio, self.classifier.features)
        adapted = -1.0
        key = speaker if self.per_speaker else ""  # the window's voice (a voice group's files are one)
        if self.normaliser is not None:
            feats = self.normaliser.normalise(feats, key)
            adapted = self.normaliser.adaptation(key)
        p = self.classifier.probabilities(feats)
        f = None if self.head is None else self.head.inputs(functionals(window.audio), states)
        if self.measures is not None:
            self.measures.append(Measure(tuple(map(float, p)), None if f is None else tuple(map(float, f)),
                                         None if vector is None else tuple(map(float, vector)), key))
        pred = self.judge(p, f, key, vector)
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

    @property
    def voice_sum(self) -> np.ndarray | None:
        """The vectors in the speaker space of the windows given one, summed (None without any)."""
        return sum(self._voice_of.values()) if self._voice_of else None

    def judge(self, p: np.ndarray, f: np.ndarray | None, key: str = "", vector: np.ndarray | None = None
              ) -> Prediction:
        """The CNN's probabilities of a window (and the head's inputs, with a head: ``ProsodyHead.inputs``; its
        vector in the speaker space, with speaker turns) -> the judgement: the run's lean taken out, the head
        fused with the voice's statistics. Counts the window in ``log_sum``, the head inputs' and the vectors'
        sums, and adds it to the voice ``key``'s statistics."""
        self.log_sum += log_probs(p)
        self.windows += 1
        if vector is not None:
            v = np.asarray(vector, dtype=np.float64)
            self._voice_of[key] = self._voice_of[key] + v if key in self._voice_of else v.copy()
        if self.baseline is not None:
            p = self.baseline.apply(p)
        if self.head is not None and f is not None:
            self.functional_sum += f
            self.functional_sq += f * f
            self.voices.add(f, key)
            prior = self.stats
            if self.run_voices is not None:  # the run's group nearest to this voice as heard so far
                prior = self.run_voices.prior(self._voice_of.get(key), self.stats)
            mean, std = self.voices.standardiser(key, prior)
            p = fuse(p, self.head.log_probs(f, mean, std), self.weight, self.temperature)
        return self.classifier.prediction(p)

    def rejudge(self, event: Event, measure: Measure) -> Event:
        """An event analysed before (with ``measures`` kept: a run's survey) judged again by this analyzer (the
        run's baseline), window by window in the session's order, as ``analyze`` would judge it."""
        f = None if measure.functionals is None else np.asarray(measure.functionals, dtype=np.float64)
        pred = self.judge(np.asarray(measure.probabilities, dtype=np.float32), f,
                          measure.key if self.per_speaker else "", measure.vector)
        return replace(event, emotion=pred.label, confidence=pred.confidence, probabilities=pred.probabilities,
                       arousal=pred.arousal, valence=pred.valence)
