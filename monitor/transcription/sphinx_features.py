"""MFCC features in numpy, laid out as pocketsphinx's own front end computes them for its en-us model, with two
changes for high-pitched speech: the power spectrum is smoothed across frequency, and the frame rate can be lowered.

Why: a voice at 300-400 Hz (shouting, fear, surprise, many high voices) has harmonics further apart than the
narrow low-frequency mel filters, so those filters catch a harmonic or miss it, and the cepstrum carries that
comb instead of the vocal tract's envelope. Averaging the power spectrum over about 0.7 x F0 before the mel filters
gives the envelope the model was trained on. The smoothing is linear, so it is folded into the filter bank: each
triangular filter is widened by the smoothing kernel, and the cost per frame stays one matrix product.

The layout follows the model's ``feat.params`` and pocketsphinx's defaults (facts read from its fe_sigproc.c):
dither (+1 on a quarter of the samples), pre-emphasis 0.97, Hamming window of 410 samples (0.025625 s), 512-point
FFT, 25 unit-area triangular mel filters from 130 to 6800 Hz placed on a mel scale of the warped frequency
(inverse_linear: f / warp) with edges rounded to FFT bins, natural log with a 1e-4 floor, orthonormal DCT-II to 13
cepstra, sinusoidal lifter 22. Cepstral mean normalisation and the deltas stay with the decoder
(``Decoder.process_cep(..., full_utt=True)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from monitor.dsp.features import triangular_filters
from monitor.transcription.base import SAMPLE_RATE

NFFT = 512
WLEN = 0.025625
ALPHA = 0.97
NFILT = 25
NCEP = 13
LOWERF, UPPERF = 130.0, 6800.0
LIFTER = 22


@dataclass(frozen=True)
class FeatureOptions:
    warp: float = 1.0  # inverse_linear frequency warp: filters placed as for f / warp
    frate: int = 100  # frames per second
    smooth_hz: float = 0.0  # width of the triangular smoothing of the power spectrum (0: none)


def _mel(f: np.ndarray | float) -> np.ndarray | float:
    return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)


def _mel_inv(m: np.ndarray | float) -> np.ndarray | float:
    return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)


def frame_shift(frate: int) -> int:
    """Samples between frames, rounded as pocketsphinx rounds them."""
    return int(SAMPLE_RATE / frate + 0.5)


@lru_cache(maxsize=16)
def _filters(warp: float, smooth_bins: int) -> np.ndarray:
    """(NFILT, NFFT/2+1) mel filter bank, each filter already convolved with the smoothing kernel."""
    bin_hz = SAMPLE_RATE / NFFT
    nbins = NFFT // 2 + 1
    lo, hi = _mel(LOWERF / warp), _mel(UPPERF / warp)
    step = (hi - lo) / (NFILT + 1)
    edges = _mel_inv(lo + step * np.arange(NFILT + 2)) * warp
    edges = np.floor(edges / bin_hz + 0.5) * bin_hz
    bank = triangular_filters(edges, np.arange(nbins) * bin_hz)
    bank[:, -1] = 0.0  # pocketsphinx never puts the Nyquist bin in a filter
    if smooth_bins > 0:
        # smoothed[k] = sum_j K[k, j] spec[j], a triangular kernel normalised over the bins that exist
        offsets = np.arange(nbins)[:, None] - np.arange(nbins)[None, :]
        kernel = np.clip(1.0 - np.abs(offsets) / smooth_bins, 0.0, None)
        kernel /= kernel.sum(axis=1, keepdims=True)
        bank = bank @ kernel
    return bank


@lru_cache(maxsize=1)
def _dct() -> np.ndarray:
    """(NCEP, NFILT) orthonormal DCT-II with the lifter weights folded in."""
    i = np.arange(NCEP)[:, None]
    j = np.arange(NFILT)[None, :]
    m = np.cos(np.pi / NFILT * i * (j + 0.5)) * np.sqrt(2.0 / NFILT)
    m[0] = np.sqrt(1.0 / NFILT)
    lift = 1.0 + LIFTER / 2.0 * np.sin(np.arange(NCEP) * np.pi / LIFTER)
    return m * lift[:, None]


def mfcc(audio: np.ndarray, options: FeatureOptions, rng: np.random.Generator | None = None) -> np.ndarray:
    """(frames, 13) float32 cepstra of 16 kHz int16 audio; at least one frame (zero-padded) for any input."""
    x = np.asarray(audio, dtype=np.float64).ravel()
    rng = rng if rng is not None else np.random.default_rng()
    x = x + (rng.integers(0, 4, len(x)) == 0)  # dither: digital silence would give log(0)-like floors
    size = int(WLEN * SAMPLE_RATE + 0.5)
    shift = frame_shift(options.frate)
    if len(x) < size:
        x = np.concatenate([x, np.zeros(size - len(x))])
    n = 1 + (len(x) - size) // shift
    starts = shift * np.arange(n)
    frames = x[starts[:, None] + np.arange(size)[None, :]]
    prior = np.concatenate([[0.0], x[starts[1:] - 1]])
    emph = np.empty_like(frames)
    emph[:, 0] = frames[:, 0] - ALPHA * prior
    emph[:, 1:] = frames[:, 1:] - ALPHA * frames[:, :-1]
    window = 0.54 - 0.46 * np.cos(2.0 * np.pi * np.arange(size) / (size - 1))
    power = np.abs(np.fft.rfft(emph * window, NFFT)) ** 2
    smooth_bins = int(round(options.smooth_hz / (SAMPLE_RATE / NFFT))) if options.smooth_hz > 0 else 0
    logmel = np.log(power @ _filters(float(options.warp), smooth_bins).T + 1e-4)
    return (logmel @ _dct().T).astype(np.float32)
