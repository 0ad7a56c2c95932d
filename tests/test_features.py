"""The feature front-end against librosa, and its invariances (gain, length, silence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.audio.convert import read_audio
from monitor.dsp.features import FeatureParams, fit_window, log_mel

DATA = Path(__file__).parent / "data"
CLIPS = sorted(DATA.glob("*.flac"))
SHIPPED = FeatureParams(hop_length=320)  # what training/train.py uses for the shipped model


def librosa_reference(audio: np.ndarray, p: FeatureParams) -> np.ndarray:
    """The same features computed by librosa, scaled to [0, 1] as log_mel does."""
    librosa = pytest.importorskip("librosa", reason="librosa (training extra) is needed for the parity check")
    y = fit_window(audio, p).astype(np.float64) / 32768.0
    mel = librosa.feature.melspectrogram(
        y=y, sr=p.sample_rate, n_fft=p.n_fft, win_length=p.win_length, hop_length=p.hop_length, window="hann",
        center=False, power=2.0, n_mels=p.n_mels, fmin=p.fmin, fmax=p.fmax, htk=False, norm="slaney",
    )
    db = librosa.power_to_db(mel, ref=np.max, top_db=p.top_db)
    return ((db + p.top_db) / p.top_db).T


@pytest.mark.parametrize("params", [FeatureParams(), SHIPPED], ids=["default", "shipped"])
@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c.stem)
def test_matches_librosa(clip: Path, params: FeatureParams) -> None:
    audio, _ = read_audio(clip)
    ours = log_mel(audio, params)
    ref = librosa_reference(audio, params)
    assert ours.shape == ref.shape == params.shape
    # Tolerance 1e-6 of the [0, 1] scale (8e-5 dB). Both sides compute in float64; ours is then rounded to
    # float32, which alone moves a value near 1.0 by up to 6e-8 (measured max difference: 3.4e-8). FFT rounding
    # differences are ~1e-12. The floors also agree: librosa clamps power at an absolute 1e-10 before ref=max,
    # ours at 1e-10 of the peak; both lie far below the top_db=80 clip for speech. A wrong window, mel scale,
    # filter normalisation or frame position gives errors of 1e-2 and more (see test_parity_fails_for_htk_mels).
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)


def test_parity_fails_for_htk_mels() -> None:
    """The parity check can fail: librosa with the HTK mel scale differs clearly from our Slaney features."""
    librosa = pytest.importorskip("librosa", reason="librosa (training extra) is needed for the parity check")
    audio, _ = read_audio(CLIPS[0])
    p = FeatureParams()
    y = fit_window(audio, p).astype(np.float64) / 32768.0
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, win_length=400, hop_length=160, center=False,
                                         n_mels=64, fmin=50, fmax=8000, htk=True, norm="slaney")
    db = librosa.power_to_db(mel, ref=np.max, top_db=80)
    assert np.max(np.abs(log_mel(audio, p) - ((db + 80) / 80).T)) > 1e-2


@pytest.mark.parametrize("gain_db", [-30.0, -6.0, 12.0])
def test_gain_invariant(gain_db: float) -> None:
    audio, _ = read_audio(CLIPS[1])
    x = audio.astype(np.float64) / 32768.0
    scaled = x * 10 ** (gain_db / 20)
    np.testing.assert_allclose(log_mel(scaled), log_mel(x), atol=1e-5)


def test_gain_invariant_int16_levels() -> None:
    """A clip at its recorded (quiet) level and normalised to -3 dBFS peak, both as int16."""
    audio, _ = read_audio(CLIPS[2])
    x = audio.astype(np.float64)
    loud = np.round(x * (10 ** (-3 / 20) * 32767 / np.max(np.abs(x)))).astype(np.int16)
    a, b = log_mel(audio), log_mel(loud)
    # int16 rounding noise of the quiet original only shows near the -80 dB floor
    assert np.mean(np.abs(a - b)) < 0.01
    assert np.max(np.abs(a - b)[a > 0.5]) < 0.01


@pytest.mark.parametrize("params", [FeatureParams(), SHIPPED], ids=["default", "shipped"])
@pytest.mark.parametrize("seconds", [0.3, 1.7, 3.0, 5.2])
def test_shape_range_dtype(params: FeatureParams, seconds: float) -> None:
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(int(seconds * 16000)) * 3000).astype(np.int16)
    f = log_mel(audio, params)
    assert f.shape == params.shape == (1 + (48000 - 512) // params.hop_length, 64)
    assert f.dtype == np.float32
    assert f.min() >= 0.0 and f.max() == pytest.approx(1.0)


def test_short_audio_is_centred() -> None:
    p = FeatureParams()
    audio = np.full(16000, 1000, dtype=np.int16)
    fitted = fit_window(audio, p)
    assert len(fitted) == p.window_samples
    nz = np.flatnonzero(fitted)
    assert nz[0] == (p.window_samples - 16000) // 2 and len(nz) == 16000
    f = log_mel(np.random.default_rng(1).standard_normal(16000), p)
    energy = f.sum(axis=1)
    assert energy[:5].sum() == 0 and energy[-5:].sum() == 0  # padding is silence
    assert energy[p.n_frames // 2] > 0


def test_long_audio_keeps_the_middle() -> None:
    p = FeatureParams()
    x = np.zeros(5 * 16000)
    mid = slice((len(x) - p.window_samples) // 2, (len(x) + p.window_samples) // 2)
    x[mid] = np.random.default_rng(2).standard_normal(p.window_samples)
    np.testing.assert_array_equal(log_mel(x, p), log_mel(x[mid], p))


@pytest.mark.parametrize("n", [0, 100, 48000])
def test_silence_gives_zeros(n: int) -> None:
    f = log_mel(np.zeros(n, dtype=np.int16))
    assert f.shape == FeatureParams().shape
    assert not f.any()
    assert np.isfinite(f).all()
