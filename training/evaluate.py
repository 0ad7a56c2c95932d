"""Evaluation through the real runtime: int8 vs float agreement and level robustness with EmotionClassifier."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from monitor.audio.convert import float_to_int16, read_audio
from monitor.dsp.features import log_mel
from monitor.dsp.segmenter import segment_audio
from monitor.inference.classifier import EmotionClassifier
from training.manifest import Clip


@dataclass
class LevelRobustness:
    rate: float  # share of clips whose top emotion is the same at both levels
    n: int
    target_peak_dbfs: float
    median_gain_db: float  # how much the clips were amplified (median)
    rate_same_windows: float = 0.0  # the same, with the windows cut where the recorded-level pass found them
    changed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rate": round(self.rate, 4), "n": self.n, "target_peak_dbfs": self.target_peak_dbfs,
                "median_gain_db": round(self.median_gain_db, 1),
                "rate_same_windows": round(self.rate_same_windows, 4), "changed": self.changed[:20]}


def int8_probabilities(clf: EmotionClassifier, x: np.ndarray) -> np.ndarray:
    """Runtime probabilities of precomputed features (n, frames, mels)."""
    return np.stack([clf.probabilities(f) for f in x.astype(np.float32)])


def clip_windows(audio: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) samples of the monitor's windows of a clip (the whole clip if it finds none)."""
    return [(w.start_sample, w.end_sample) for w in segment_audio(audio)] or [(0, len(audio))]


def clip_probabilities(clf: EmotionClassifier, audio: np.ndarray, bounds: list[tuple[int, int]] | None = None
                       ) -> np.ndarray:
    """The monitor's view of a clip: segment, classify every window, average (whole clip if no window)."""
    bounds = bounds if bounds is not None else clip_windows(audio)
    return np.mean([clf.probabilities(log_mel(audio[s:e], clf.features)) for s, e in bounds], axis=0)


def normalise_peak(audio: np.ndarray, peak_dbfs: float) -> tuple[np.ndarray, float]:
    x = audio.astype(np.float64) / 32768.0
    peak = float(np.max(np.abs(x)))
    if peak <= 0:
        return audio, 0.0
    gain = 10 ** (peak_dbfs / 20) / peak
    return float_to_int16(x * gain), 20 * np.log10(gain)


def level_robustness(clf: EmotionClassifier, clips: list[Clip], peak_dbfs: float = -3.0) -> LevelRobustness:
    """Same clips at their recorded level and normalised to ``peak_dbfs`` peak: same top emotion?"""
    same = 0
    same_windows = 0
    gains = []
    changed = []
    for c in clips:
        audio, _ = read_audio(c.path)
        loud, gain = normalise_peak(audio, peak_dbfs)
        gains.append(gain)
        bounds = clip_windows(audio)
        a = int(np.argmax(clip_probabilities(clf, audio, bounds)))
        b = int(np.argmax(clip_probabilities(clf, loud)))
        same_windows += a == int(np.argmax(clip_probabilities(clf, loud, bounds)))
        if a == b:
            same += 1
        else:
            changed.append(c.clip_id)
    n = len(clips)
    return LevelRobustness(same / n if n else 0.0, n, peak_dbfs, float(np.median(gains)) if gains else 0.0,
                           same_windows / n if n else 0.0, changed)
