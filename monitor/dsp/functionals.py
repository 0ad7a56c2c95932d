"""Prosodic and spectral functionals of a window in numpy: the input of the prosody head
(``monitor.inference.prosody``).

Frames of 40 ms every 40 ms (a 20 ms hop cost 2.5x the time for 0.004 of CV UAR: models/results/FINDINGS.md).
Pitch from the normalised autocorrelation (60-500 Hz, the shortest lag within 10 % of the highest peak; a frame is
voiced when its peak is above ``VOICED`` and it is within 35 dB of the window's loudest frame); loudness as frame
level in dB; spectral balance from the frame's power spectrum. The functionals (``NAMES``): pitch in semitones
(mean, spread, percentiles, slopes), a jitter-like and a shimmer-like perturbation, a harmonics-to-noise ratio
from the autocorrelation peak, loudness statistics, alpha ratio, Hammarberg index, spectral slopes and flux,
MFCC 1-4, and the rates and lengths of voiced and unvoiced stretches. Numpy only (the Pi runs it).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

RATE = 16000
FRAME = 640  # 40 ms
HOP = 640  # 40 ms
NFFT = 1024
MIN_LAG, MAX_LAG = RATE // 500, RATE // 60
VOICED = 0.45  # normalised autocorrelation peak of a voiced frame
RANGE_DB = 35.0  # frames quieter than the loudest by more than this are not voiced

NAMES = (
    "f0_mean", "f0_std", "f0_p20", "f0_p50", "f0_p80", "f0_range", "f0_rise", "f0_fall",
    "jitter", "shimmer", "hnr_mean", "hnr_std",
    "loud_mean", "loud_std", "loud_p20", "loud_p50", "loud_p80", "loud_range", "loud_voiced", "loud_rise",
    "alpha_voiced", "alpha_unvoiced", "hammarberg_voiced", "hammarberg_unvoiced", "slope_0_500", "slope_500_1500",
    "flux_mean", "flux_std",
    "mfcc1_mean", "mfcc1_std", "mfcc2_mean", "mfcc2_std", "mfcc3_mean", "mfcc3_std", "mfcc4_mean", "mfcc4_std",
    "voiced_ratio", "voiced_per_s", "voiced_len", "unvoiced_len",
)  # fmt: skip


def _frames(x: np.ndarray) -> np.ndarray:
    if len(x) < FRAME:
        x = np.pad(x, (0, FRAME - len(x)))
    return np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]  # a view: no copy of the samples


def _mel_matrix(n_mels: int = 26) -> np.ndarray:
    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges = 700.0 * (10 ** (np.linspace(mel(np.array(20.0)), mel(np.array(8000.0)), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.linspace(0, RATE / 2, NFFT // 2 + 1)
    m = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        m[i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0.0, None)
    return m


_MEL = _mel_matrix()
_DCT = np.cos(np.pi / 26 * (np.arange(26)[None, :] + 0.5) * np.arange(1, 5)[:, None])  # MFCC 1-4
_FREQS = np.linspace(0, RATE / 2, NFFT // 2 + 1)
_HANN = np.hanning(FRAME)
_HANN_AC = np.fft.irfft(np.abs(np.fft.rfft(_HANN, NFFT)) ** 2, NFFT)[: MAX_LAG + 2]
_HANN_AC = _HANN_AC / _HANN_AC[0]


def _bins(lo: float, hi: float) -> slice:
    """The FFT bins of [lo, hi) Hz, as a slice (a view, where a boolean mask would copy)."""
    idx = np.flatnonzero((_FREQS >= lo) & (_FREQS < hi))
    return slice(int(idx[0]), int(idx[-1]) + 1)


_LOW, _HIGH = _bins(50, 1000), _bins(1000, 5000)  # alpha ratio
_BELOW_100 = _bins(0, 100)
_HAM_LOW, _HAM_HIGH = _bins(0, 2000), _bins(2000, 5000)  # Hammarberg index
_SLOPES = (_bins(0, 500), _bins(500, 1500))  # spectral slopes
_SLOPED = slice(0, _SLOPES[1].stop)  # the bins the slopes read


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """The least-squares slope of y on x (what a first-degree polyfit gives, without its overhead)."""
    dx = x - x.mean()
    return float(np.dot(dx, y - y.mean()) / np.dot(dx, dx))


def _percentiles(v: np.ndarray) -> tuple[float, float, float]:
    """The 20th, 50th and 80th percentiles, linearly interpolated as ``np.percentile`` does (its overhead is most
    of the cost on a window's 75 values)."""
    s = np.sort(v)
    out = []
    for q in (0.2, 0.5, 0.8):
        pos = q * (len(s) - 1)
        i = int(pos)
        j = min(i + 1, len(s) - 1)
        t = pos - i
        a, b = float(s[i]), float(s[j])
        out.append(a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t))
    return out[0], out[1], out[2]


def _runs(mask: np.ndarray) -> tuple[list[int], list[int]]:
    """Lengths (frames) of the True and the False stretches."""
    if len(mask) == 0:
        return [], []
    edges = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    starts = np.concatenate([[0], edges])
    lengths = np.diff(np.concatenate([starts, [len(mask)]]))
    first = bool(mask[0])
    on = lengths[0::2] if first else lengths[1::2]
    off = lengths[1::2] if first else lengths[0::2]
    return [int(v) for v in on], [int(v) for v in off]


def _stats(v: np.ndarray, n: int) -> list[float]:
    if len(v) == 0:
        return [0.0] * n
    return [float(x) for x in (v.mean(), v.std(), *np.percentile(v, [20, 50, 80]))][:n]


def _as_float(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio).reshape(-1)
    return a.astype(np.float64) / 32768.0 if a.dtype == np.int16 else a.astype(np.float64)


def _pitch_frames(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per 40 ms frame of float audio: (frames, level in dB, power spectrum, autocorrelation peak, pitch lag)."""
    fr = _frames(x - x.mean())
    win = fr * _HANN[None, :]
    energy = np.sum(fr**2, axis=1) + 1e-12
    loud = 10 * np.log10(energy / FRAME)
    spec = np.abs(np.fft.rfft(win, NFFT, axis=1)) ** 2 + 1e-12
    # one FFT per frame: the autocorrelation of the windowed frame (NFFT >= FRAME + MAX_LAG, so no wrap-around)
    # over the window's own autocorrelation (Boersma 1993), normalised by the frame's energy at lag 0
    ac = np.fft.irfft(spec, NFFT, axis=1)[:, : MAX_LAG + 2]
    lags = np.arange(MIN_LAG, MAX_LAG + 1)
    norm = ac[:, lags] / (ac[:, :1] + 1e-12) / _HANN_AC[None, lags]
    # the shortest lag whose peak is within 10 % of the highest (a periodic frame peaks at every multiple of its
    # period, the unbiased correlation of the longer lags a little higher: taking the highest gives octave errors)
    top = norm.max(axis=1, keepdims=True)
    first = np.argmax(norm >= 0.9 * top, axis=1)
    near = np.clip(first[:, None] + np.arange(MIN_LAG // 2)[None, :], 0, len(lags) - 1)
    best = near[np.arange(len(norm)), np.argmax(np.take_along_axis(norm, near, axis=1), axis=1)]
    peak = norm[np.arange(len(norm)), best]
    lag = lags[best].astype(np.float64)
    inner = (best > 0) & (best < len(lags) - 1)  # parabolic refinement of the peak
    i = np.flatnonzero(inner)
    y0, y1, y2 = norm[i, best[i] - 1], norm[i, best[i]], norm[i, best[i] + 1]
    denom = y0 - 2 * y1 + y2
    lag[i] += np.where(np.abs(denom) > 1e-9, 0.5 * (y0 - y2) / np.where(np.abs(denom) > 1e-9, denom, 1.0), 0.0)
    return fr, loud, spec, peak, lag


def _voiced(loud: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Voiced frames: a clear autocorrelation peak, within ``RANGE_DB`` of the loudest frame."""
    return (peak > VOICED) & (loud > loud.max() - RANGE_DB)


def _hnr_db(peak: np.ndarray) -> np.ndarray:
    """Harmonics-to-noise ratio in dB from normalised autocorrelation peaks."""
    r = np.clip(peak, 1e-3, 0.999)
    return 10 * np.log10(r / (1 - r))


def _semitones(lag: np.ndarray) -> np.ndarray:
    """Pitch in semitones above 27.5 Hz from lags in samples."""
    f0 = RATE / np.clip(lag, MIN_LAG / 2, None)  # a refinement cannot move a peak below half the shortest lag
    return 12 * np.log2(f0 / 27.5)


class Voicing(NamedTuple):
    longest_run_s: float  # the longest run of voiced 40 ms frames
    hnr_db: float  # the mean harmonics-to-noise ratio of the voiced frames
    pitch_spread_st: float  # the standard deviation of their pitch, in semitones
    voiced_ratio: float  # the share of the frames that are voiced
    low_share: float  # the share of the power below 100 Hz (rumble, wind, brown noise: most of it; speech: little)


def voicing(audio: np.ndarray) -> Voicing:
    """How voiced a stretch of audio is, voiced as ``functionals`` counts it (zeros for silence). A syllable of
    speech is several voiced frames in a row with a clear pitch that moves; noise, even noise a VAD calls speech, is
    rarely voiced for three frames running, and hum or a tone is voiced throughout at one pitch."""
    _, loud, spec, peak, lag = _pitch_frames(_as_float(audio))
    if loud.max() < -80 or not np.isfinite(loud).all():
        return Voicing(0.0, 0.0, 0.0, 0.0, 0.0)
    low_share = float(spec[:, _BELOW_100].sum() / spec.sum())
    voiced = _voiced(loud, peak)
    on, _ = _runs(voiced)
    if not on:
        return Voicing(0.0, 0.0, 0.0, 0.0, low_share)
    return Voicing(max(on) * HOP / RATE, float(np.mean(_hnr_db(peak[voiced]))),
                   float(np.std(_semitones(lag[voiced]))), float(np.mean(voiced)), low_share)


def functionals(audio: np.ndarray) -> np.ndarray:
    """16 kHz mono audio (int16, or float in [-1, 1]) -> ``len(NAMES)`` functionals (zeros for silence)."""
    fr, loud, spec, peak, lag = _pitch_frames(_as_float(audio))
    voiced = _voiced(loud, peak)
    if loud.max() < -80 or not np.isfinite(loud).all():
        return np.zeros(len(NAMES), dtype=np.float32)
    f0 = RATE / np.clip(lag, MIN_LAG / 2, None)  # a refinement cannot move a peak below half the shortest lag
    st = _semitones(lag)
    v_st = st[voiced]
    out: list[float] = []
    if len(v_st) >= 2:
        d = np.diff(st)[voiced[1:] & voiced[:-1]]
        rise = float(d[d > 0].mean()) if np.any(d > 0) else 0.0
        fall = float(-d[d < 0].mean()) if np.any(d < 0) else 0.0
        p20, p50, p80 = _percentiles(v_st)
        out += [float(v_st.mean()), float(v_st.std()), p20, p50, p80, p80 - p20, rise, fall]
        both = voiced[1:] & voiced[:-1]
        out.append(float(np.mean(np.abs(np.diff(f0))[both] / f0[1:][both])) if both.any() else 0.0)
        out.append(float(np.mean(np.abs(np.diff(loud))[both])) if both.any() else 0.0)
        hnr = _hnr_db(peak[voiced])
        out += [float(hnr.mean()), float(hnr.std())]
    else:
        out += [0.0] * 12
    p20, p50, p80 = _percentiles(loud)
    dl = np.diff(loud)
    out += [float(loud.mean()), float(loud.std()), p20, p50, p80, p80 - p20,
            float(loud[voiced].mean()) if voiced.any() else float(loud.mean()),
            float(dl[dl > 0].mean()) if np.any(dl > 0) else 0.0]
    alpha = 10 * np.log10(spec[:, _LOW].sum(axis=1) / spec[:, _HIGH].sum(axis=1))
    ham = 10 * np.log10(spec[:, _HAM_LOW].max(axis=1) / spec[:, _HAM_HIGH].max(axis=1))
    out += [float(alpha[voiced].mean()) if voiced.any() else 0.0,
            float(alpha[~voiced].mean()) if (~voiced).any() else 0.0,
            float(ham[voiced].mean()) if voiced.any() else 0.0,
            float(ham[~voiced].mean()) if (~voiced).any() else 0.0]
    low_spec = spec[:, _SLOPED]
    mean_db = (10 * np.log10(low_spec[voiced] if voiced.any() else low_spec)).mean(axis=0)
    for band in _SLOPES:
        out.append(_slope(_FREQS[band], mean_db[band]) * 1000)
    nspec = spec / spec.sum(axis=1, keepdims=True)
    flux = np.sum(np.diff(nspec, axis=0) ** 2, axis=1) if len(nspec) > 1 else np.zeros(1)
    out += [float(flux.mean()), float(flux.std())]
    mfcc = np.log(spec @ _MEL.T + 1e-10) @ _DCT.T
    for mean, std in zip(mfcc.mean(axis=0), mfcc.std(axis=0), strict=True):
        out += [float(mean), float(std)]
    on, off = _runs(voiced)
    seconds = len(voiced) * HOP / RATE
    out += [float(voiced.mean()), len(on) / max(seconds, 1e-3), float(np.mean(on)) * HOP / RATE if on else 0.0,
            float(np.mean(off)) * HOP / RATE if off else 0.0]
    return np.nan_to_num(np.asarray(out, dtype=np.float32))
