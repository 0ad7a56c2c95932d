"""Speaker/session normalisation of the model input: a voice's usual spectrum taken out, the population's put in.

A window's features are a log-mel spectrogram relative to its loudest bin (``monitor.dsp.features``). What a
voice, a room and a microphone add is mostly a constant spectral colouring: the same offset per mel band in every
frame the voice speaks. The monitor keeps the mean band profile of the speech it has heard from a session (or a
speaker, or a file) and shifts each window by the difference between that profile and the population's
(``global_mean``, measured on the training corpora and written in the model's metadata)::

    x' = clip(x - w * (mean_heard - global_mean), 0, 1)        on the frames that carry sound
    w  = n / (n + prior_windows)                                n = windows heard so far

The weight ``w`` shrinks the correction towards none while little has been heard: a lone 2 s clip is scored
almost as it is (one window says little about a voice's usual spectrum), a minute of speech nearly fully
normalised. The network is trained with ``w`` drawn over [0, 1], so every stage in between is one it knows.
Frames that carry no sound (the zero padding of a short window, silence below ``ACTIVE`` of the window's range)
are neither measured nor shifted.

Numpy only: training imports it, so the runtime and the training apply the same arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from monitor.inference.prosody import VoiceStats

ACTIVE = 0.2  # a frame carries sound if its loudest band is within 80 % of the window's dB range of the top


@dataclass(frozen=True)
class NormParams:
    global_mean: np.ndarray  # (mels,) band profile of the training population
    prior_windows: float = 4.0  # windows of evidence at which the correction is half strength

    @classmethod
    def from_metadata(cls, meta: dict, n_mels: int) -> NormParams | None:
        """The model's ``normalisation`` entry, or None when the model was not trained for it.
        ValueError (a one-line reason) when the entry is malformed."""
        entry = meta.get("normalisation")
        if entry is None:
            return None
        if not isinstance(entry, dict):
            raise ValueError("normalisation must be a table with global_mean and prior_windows")
        g = entry.get("global_mean")
        k = entry.get("prior_windows", 4.0)
        if not isinstance(g, list) or len(g) != n_mels or not all(isinstance(v, int | float) for v in g):
            raise ValueError(f"normalisation.global_mean must be {n_mels} numbers")
        if isinstance(k, bool) or not isinstance(k, int | float) or not 0 < k < 1e6:
            raise ValueError(f"normalisation.prior_windows must be a number > 0, not {k!r}")
        return cls(np.asarray(g, dtype=np.float32), float(k))

    def to_metadata(self) -> dict:
        return {"global_mean": [round(float(v), 5) for v in self.global_mean], "prior_windows": self.prior_windows}

    def weight(self, n: float) -> float:
        return float(n / (n + self.prior_windows)) if n > 0 else 0.0


def active_frames(feats: np.ndarray) -> np.ndarray:
    """(..., frames) True where a frame carries sound."""
    return feats.max(axis=-1) > ACTIVE


def band_profiles(feats: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
    """Mean band values over the frames that carry sound, of each window (..., frames, mels) -> (..., mels);
    NaN for a window in which none does. ``active``: ``active_frames(feats)`` if the caller has it already."""
    active = active_frames(feats) if active is None else active
    weights = active.astype(np.float32)
    count = weights.sum(axis=-1)
    total = np.einsum("...f,...fm->...m", weights, np.asarray(feats, dtype=np.float32))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[..., None] > 0, total / count[..., None], np.nan).astype(np.float32)


def band_profile(feats: np.ndarray) -> np.ndarray | None:
    """The band profile of one window (frames, mels); None if no frame carries sound."""
    prof = band_profiles(feats)
    return None if np.isnan(prof[0]) else prof


def shift(feats: np.ndarray, offset: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
    """Windows (..., frames, mels) minus a per-window band offset (..., mels), on frames that carry sound only."""
    feats = np.asarray(feats, dtype=np.float32)
    active = active_frames(feats) if active is None else active
    moved = np.clip(feats - np.asarray(offset, dtype=np.float32)[..., None, :], 0.0, 1.0)
    return np.where(active[..., None], moved, feats)


@dataclass
class _Heard:
    total: np.ndarray
    count: int = 0


@dataclass
class SessionNormaliser:
    """Running band profiles of a session (a live run, or one file in batch; key "") and of its speakers (key =
    speaker label). ``normalise`` adds the window to the profiles, then shifts it by the shrunk difference to the
    population's: a speaker's own profile counts as far as that speaker has been heard, the session's stands in
    for the rest. Not thread-safe: one worker thread owns it."""

    params: NormParams
    _heard: dict[str, _Heard] = field(default_factory=dict)
    prosody: VoiceStats = field(default_factory=VoiceStats)  # the same voices' functionals (the prosody head's)

    def _add(self, prof: np.ndarray, key: str) -> None:
        h = self._heard.get(key)
        if h is None:
            h = self._heard[key] = _Heard(np.zeros_like(prof, dtype=np.float64))
        h.total += prof
        h.count += 1

    def windows(self, key: str = "") -> int:
        h = self._heard.get(key)
        return h.count if h else 0

    def _mean(self, key: str, prior: np.ndarray) -> np.ndarray:
        h = self._heard.get(key)
        if h is None or h.count == 0:
            return prior
        w = self.params.weight(h.count)
        return (w * (h.total / h.count) + (1 - w) * prior).astype(np.float32)

    def offset(self, key: str = "") -> np.ndarray:
        """The band offset for a window of ``key``: the key's profile shrunk towards the session's (key ""),
        which is shrunk towards the population's; zero before anything was heard."""
        g = self.params.global_mean
        mean = self._mean("", g)
        if key:
            mean = self._mean(key, mean)
        return mean - g

    def normalise(self, feats: np.ndarray, key: str = "") -> np.ndarray:
        """Learn the window into the session's profile (and its speaker's, if ``key``), then shift it."""
        feats = np.asarray(feats, dtype=np.float32)
        active = active_frames(feats)
        prof = band_profiles(feats, active)
        if not np.isnan(prof[0]):  # silence teaches nothing
            self._add(prof, "")
            if key:
                self._add(prof, key)
        return shift(feats, self.offset(key), active)

    def adaptation(self, key: str = "") -> float:
        """How far a window of ``key`` is normalised to its voice: 0 (judged alone) to 1 (fully)."""
        return self.params.weight(self.windows(key))
