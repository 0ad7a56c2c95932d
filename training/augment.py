"""Training-time augmentation: whole-clip waveform transforms and SpecAugment on features.

Waveform transforms act on a whole clip (float32, 16 kHz) before it is segmented, so augmented windows are
framed exactly as the monitor frames speech. They aim at what changes between RAVDESS and a user's room:
speaker (speed and pitch), room (synthetic reverberation), microphone and level (gain, coloured noise at a
controlled SNR) and where speech sits in the window (time placement, done in ``training.dataset``).

Fold hygiene: an augmented copy is derived from one clip only (no mixing of clips, no noise taken from other
recordings), and ``training.dataset`` keeps every copy with its clip's actor; held-out actors are evaluated on
their original recordings only. So augmented copies never cross a fold boundary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class AugmentOptions:
    speed_range: tuple[float, float] = (0.9, 1.1)  # resampling factor (tempo and pitch together)
    pitch_prob: float = 0.5
    pitch_semitones: float = 2.0  # uniform in [-x, x]
    reverb_prob: float = 0.3
    rt60_range: tuple[float, float] = (0.15, 0.6)  # seconds
    noise_prob: float = 0.7
    snr_db_range: tuple[float, float] = (5.0, 30.0)
    peak_dbfs_range: tuple[float, float] = (-40.0, -1.0)  # level of the result (recording/mic level)
    shift_prob: float = 0.5  # random placement of the speech in its window
    max_shift_s: float = 0.3  # shift of full windows

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SpecAugmentOptions:
    time_masks: int = 2
    max_time: int = 16  # frames per mask
    freq_masks: int = 2
    max_freq: int = 8  # mel bands per mask


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (shorter, higher): resample by 1/factor with soxr."""
    import soxr

    if abs(factor - 1.0) < 1e-6:
        return x
    return soxr.resample(x, SAMPLE_RATE, SAMPLE_RATE / factor, quality="HQ").astype(np.float32)


def pitch_shift(x: np.ndarray, semitones: float) -> np.ndarray:
    import librosa

    if abs(semitones) < 1e-3:
        return x
    return librosa.effects.pitch_shift(x, sr=SAMPLE_RATE, n_steps=semitones).astype(np.float32)


def speech_power(x: np.ndarray, frame: int = 480) -> float:
    """Mean power of the loudest 30% of 30 ms frames (a simple active-speech level)."""
    n = len(x) // frame
    if n == 0:
        return float(np.mean(x**2)) if len(x) else 0.0
    p = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    k = max(1, int(round(0.3 * n)))
    return float(np.mean(np.sort(p)[-k:]))


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) Gaussian noise of unit power."""
    white = rng.standard_normal(n)
    if colour != "white":
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
        f[0] = f[1] if len(f) > 1 else 1.0
        spec /= np.sqrt(f) if colour == "pink" else f
        white = np.fft.irfft(spec, n)
    return (white / (np.sqrt(np.mean(white**2)) + 1e-12)).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str | None = None) -> np.ndarray:
    """Add noise so that speech power / noise power = ``snr_db``."""
    colour = colour or str(rng.choice(["white", "pink", "brown"]))
    noise = coloured_noise(len(x), colour, rng)
    p = speech_power(x)
    if p <= 0:
        return x
    return (x + noise * np.sqrt(p / 10 ** (snr_db / 10))).astype(np.float32)


def reverberate(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room response (exponentially decaying noise after a direct path)."""
    from scipy.signal import fftconvolve

    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    ir[0] = 1.0 / max(rng.uniform(0.3, 1.0), 1e-3)  # direct-to-reverberant ratio varies
    ir /= np.sqrt(np.sum(ir**2))
    y = fftconvolve(x, ir)[: len(x)]
    return y.astype(np.float32)


def set_peak(x: np.ndarray, peak_dbfs: float) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0:
        return x
    return (x * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)


def peak_dbfs(x: np.ndarray) -> float:
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return 20 * np.log10(peak) if peak > 0 else -120.0


def augment_clip(x: np.ndarray, opts: AugmentOptions, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One random augmented copy of a whole clip (float32 in [-1, 1]); returns it and what was done."""
    done: dict = {}
    factor = float(rng.uniform(*opts.speed_range))
    x = speed_perturb(x, factor)
    done["speed"] = round(factor, 3)
    if rng.random() < opts.pitch_prob:
        st = float(rng.uniform(-opts.pitch_semitones, opts.pitch_semitones))
        x = pitch_shift(x, st)
        done["pitch"] = round(st, 2)
    if rng.random() < opts.reverb_prob:
        rt60 = float(rng.uniform(*opts.rt60_range))
        x = reverberate(x, rt60, rng)
        done["rt60"] = round(rt60, 2)
    if rng.random() < opts.noise_prob:
        snr = float(rng.uniform(*opts.snr_db_range))
        x = add_noise(x, snr, rng)
        done["snr"] = round(snr, 1)
    target = float(rng.uniform(*opts.peak_dbfs_range))
    x = set_peak(x, target)
    done["peak_dbfs"] = round(target, 1)
    return x, done


def spec_augment(batch: np.ndarray, opts: SpecAugmentOptions, rng: np.random.Generator) -> np.ndarray:
    """Zero (= silence in the feature scale) random time and mel stripes of a (n, frames, mels[, 1]) batch."""
    out = batch.copy()
    n, frames, mels = out.shape[:3]
    for _ in range(opts.time_masks):
        width = rng.integers(0, opts.max_time + 1, size=n)
        start = rng.integers(0, frames, size=n)
        idx = np.arange(frames)[None, :]
        mask = (idx >= start[:, None]) & (idx < (start + width)[:, None])
        out[mask] = 0
    for _ in range(opts.freq_masks):
        width = rng.integers(0, opts.max_freq + 1, size=n)
        start = rng.integers(0, mels, size=n)
        idx = np.arange(mels)[None, :]
        mask = (idx >= start[:, None]) & (idx < (start + width)[:, None])
        out.transpose(0, 2, 1, *range(3, out.ndim))[mask] = 0
    return out


def mixup(
    x: np.ndarray, y: np.ndarray, alpha: float, rng: np.random.Generator, prob: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Mix a fraction ``prob`` of the examples with random partners (soft labels ``y``)."""
    if alpha <= 0 or prob <= 0:
        return x, y
    n = len(x)
    lam = rng.beta(alpha, alpha, size=n).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)  # the original stays the dominant part
    lam[rng.random(n) >= prob] = 1.0
    perm = rng.permutation(n)
    shape = (n,) + (1,) * (x.ndim - 1)
    xm = lam.reshape(shape) * x + (1 - lam.reshape(shape)) * x[perm]
    ym = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
    return xm.astype(x.dtype), ym.astype(np.float32)


# --- Device and room versions for multi-corpus training (``training.corpus_features``) -------------------------
# Each "version" of a clip is one kind of change, so that the leave-one-corpus-out ablation can train with or
# without each kind from one feature cache. Every version also gets a random recording level.
VERSION_KINDS = ("speaker", "room", "noise", "channel")


def telephone(x: np.ndarray) -> np.ndarray:
    """Telephone band: 300-3400 Hz band-pass, down to 8 kHz and back up (what a phone call keeps)."""
    import soxr
    from scipy.signal import butter, sosfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    y = sosfilt(sos, x)
    y = soxr.resample(soxr.resample(y, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)
    return _fit_length(y, len(x)).astype(np.float32)


def lossy_codec(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Encode and decode with a lossy codec at a low bit rate (MP3 or Opus through libsndfile)."""
    import io

    import soundfile as sf

    fmt, sub = [("MP3", "MPEG_LAYER_III"), ("OGG", "OPUS")][int(rng.integers(0, 2))]
    level = float(rng.uniform(0.6, 1.0))
    peak = float(np.max(np.abs(x))) or 1.0
    try:
        buf = io.BytesIO()
        sf.write(buf, x / peak * 0.9, SAMPLE_RATE, format=fmt, subtype=sub, compression_level=level)
    except sf.LibsndfileError:  # libsndfile refuses some levels for some encoders: take a middle one
        buf = io.BytesIO()
        sf.write(buf, x / peak * 0.9, SAMPLE_RATE, format="MP3", subtype="MPEG_LAYER_III", compression_level=0.8)
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    return _fit_length(y * peak / 0.9, len(x)).astype(np.float32)


def tilt(x: np.ndarray, db_per_octave: float) -> np.ndarray:
    """Microphone response tilt: a gain rising (or falling) by ``db_per_octave`` around 1 kHz."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / SAMPLE_RATE)
    octaves = np.log2(np.maximum(f, 50.0) / 1000.0)
    spec *= 10 ** (db_per_octave * octaves / 20)
    return np.fft.irfft(spec, len(x)).astype(np.float32)


def add_babble(x: np.ndarray, others: list[np.ndarray], snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add babble: the sum of other speakers' recordings (looped to length), at ``snr_db``."""
    if not others:
        return add_noise(x, snr_db, rng)
    babble = np.zeros(len(x), dtype=np.float32)
    for o in others:
        o = o.astype(np.float32)
        if not len(o):
            continue
        start = int(rng.integers(0, len(o)))
        rep = np.tile(np.roll(o, -start), len(x) // len(o) + 1)[: len(x)]
        babble += rep / (np.sqrt(np.mean(rep**2)) + 1e-9)
    p_b = float(np.mean(babble**2))
    p = speech_power(x)
    if p <= 0 or p_b <= 0:
        return x
    return (x + babble * np.sqrt(p / 10 ** (snr_db / 10) / p_b)).astype(np.float32)


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y), dtype=y.dtype)])


def version_clip(x: np.ndarray, kind: str, rng: np.random.Generator, babble: list[np.ndarray]) -> np.ndarray:
    """One version of a whole clip (float32, 16 kHz) for ``kind`` in ``VERSION_KINDS``, at a random level.

    speaker: speed (0.9-1.1) and, half the time, pitch (+-2 semitones): other voices.
    room: synthetic room response, RT60 0.2-0.9 s.
    noise: white/pink/brown noise or babble of 3-5 other speakers, 0-20 dB SNR.
    channel: telephone band, a lossy codec at a low bit rate, or a microphone tilt of +-3 dB/octave.
    """
    if kind == "speaker":
        x = speed_perturb(x, float(rng.uniform(0.9, 1.1)))
        if rng.random() < 0.5:
            x = pitch_shift(x, float(rng.uniform(-2.0, 2.0)))
    elif kind == "room":
        x = reverberate(x, float(rng.uniform(0.2, 0.9)), rng)
    elif kind == "noise":
        snr = float(rng.uniform(0.0, 20.0))
        x = add_babble(x, babble, snr, rng) if babble and rng.random() < 0.5 else add_noise(x, snr, rng)
    elif kind == "channel":
        choice = int(rng.integers(0, 3))
        if choice == 0:
            x = telephone(x)
        elif choice == 1:
            x = lossy_codec(x, rng)
        else:
            x = tilt(x, float(rng.uniform(-3.0, 3.0)))
    else:
        raise ValueError(f"unknown version kind {kind!r}")
    return set_peak(x, float(rng.uniform(-35.0, -1.0)))
