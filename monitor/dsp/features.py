"""The model's feature front-end: one 16 kHz mono window -> a normalised log-mel spectrogram.

This is the ONLY implementation of the features. Training (``training/``) and the monitor both call
:func:`log_mel`, and the parameters travel with the model (``FeatureParams.to_dict`` is written into the
model's metadata at export and compared at load time).

The spectrogram follows librosa's conventions (Slaney mel scale and area normalisation, periodic Hann window
zero-padded to ``n_fft``, ``center=False``, power 2), so ``tests/test_features.py`` can check it against
``librosa.feature.melspectrogram`` + ``librosa.power_to_db(ref=np.max, top_db=...)``.

Normalisation is relative to the loudest bin of the window: ``dB - max(dB)``, clipped at ``-top_db`` and
mapped to [0, 1]. A gain change multiplies every bin by the same factor, so the features do not depend on
the recording level (RAVDESS clips often peak below -30 dBFS; a microphone in a room may be much louder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class FeatureParams:
    """Everything that defines the model input. Written into and checked against model metadata."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 8000.0
    top_db: float = 80.0
    window_s: float = 3.0
    kind: str = "logmel-relmax-v1"

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return 1 + (self.window_samples - self.n_fft) // self.hop_length

    @property
    def shape(self) -> tuple[int, int]:
        """(frames, mel bands) of one window's features."""
        return (self.n_frames, self.n_mels)

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureParams:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown feature parameters: {sorted(unknown)}")
        return cls(**data)


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (as librosa with htk=False)."""
    freq = np.asarray(freq, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mel = freq / f_sp
    high = freq >= min_log_hz
    mel[high] = min_log_mel + np.log(freq[high] / min_log_hz) / logstep
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    freq = f_sp * mel
    high = mel >= min_log_mel
    freq[high] = min_log_hz * np.exp(logstep * (mel[high] - min_log_mel))
    return freq


def triangular_filters(edges_hz: np.ndarray, fft_freqs: np.ndarray) -> np.ndarray:
    """Unit-area triangles, filter i rising from edges_hz[i] to edges_hz[i + 1] and falling to edges_hz[i + 2],
    sampled at fft_freqs: shape (len(edges_hz) - 2, len(fft_freqs))."""
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation, shape (n_mels, 1 + n_fft // 2)."""
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    mel_pts = _mel_to_hz(np.linspace(_hz_to_mel(np.array([fmin]))[0], _hz_to_mel(np.array([fmax]))[0], n_mels + 2))
    weights = triangular_filters(mel_pts, fft_freqs)
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=8)
def _analysis_window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window of win_length samples, zero-padded in the centre of n_fft samples."""
    n = np.arange(win_length)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    left = (n_fft - win_length) // 2
    window = np.zeros(n_fft)
    window[left : left + win_length] = hann
    window.setflags(write=False)
    return window


def to_float(audio: np.ndarray) -> np.ndarray:
    """int16 PCM or float audio -> float64 in [-1, 1]."""
    if audio.dtype == np.int16:
        return audio.astype(np.float64) / 32768.0
    return np.asarray(audio, dtype=np.float64)


def fit_window(audio: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Centre ``audio`` in exactly one window: zero-pad a short one, keep the middle of a long one."""
    n = params.window_samples
    if len(audio) == n:
        return audio
    if len(audio) > n:
        start = (len(audio) - n) // 2
        return audio[start : start + n]
    out = np.zeros(n, dtype=audio.dtype)
    start = (n - len(audio)) // 2
    out[start : start + len(audio)] = audio
    return out


def mel_power(audio: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Mel power spectrogram, shape (frames, n_mels), of audio already fitted to one window."""
    x = to_float(audio)
    frames = np.lib.stride_tricks.sliding_window_view(x, params.n_fft)[:: params.hop_length]
    spectrum = np.fft.rfft(frames * _analysis_window(params.win_length, params.n_fft), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    fb = mel_filterbank(params.sample_rate, params.n_fft, params.n_mels, params.fmin, params.fmax)
    return power @ fb.T


def log_mel(audio: np.ndarray, params: FeatureParams | None = None) -> np.ndarray:
    """One window of 16 kHz mono audio (int16 or float) -> features, float32, shape ``params.shape``.

    Audio shorter or longer than the window is centred in it (see :func:`fit_window`). Values lie in
    [0, 1]: 1 is the loudest bin of the window, 0 is ``top_db`` below it or quieter. A silent window
    gives all zeros.
    """
    params = params or FeatureParams()
    mel = mel_power(fit_window(np.asarray(audio), params), params)
    peak = float(mel.max()) if mel.size else 0.0
    if peak <= 0.0:
        return np.zeros(params.shape, dtype=np.float32)
    db = 10.0 * np.log10(np.maximum(mel, peak * 1e-10) / peak)
    db = np.maximum(db, -params.top_db)
    return ((db + params.top_db) / params.top_db).astype(np.float32)
