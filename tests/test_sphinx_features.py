"""The numpy MFCC front end used for high-pitched utterances (monitor/transcription/sphinx_features.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from monitor.transcription.sphinx_engine import HIGH_F0, SphinxTranscriber, median_f0
from monitor.transcription.sphinx_features import FeatureOptions, _filters, frame_shift, mfcc

SR = 16000
DATA = Path(__file__).parent / "data"


def vowel(f0: float, seconds: float = 0.5) -> np.ndarray:
    """A steady vowel-like sound: harmonics of f0 shaped by formants at 700, 1200 and 2600 Hz."""
    t = np.arange(int(seconds * SR)) / SR
    x = np.zeros_like(t)
    for k in range(1, int(7000 / f0)):
        f = k * f0
        gain = sum(1.0 / (1.0 + ((f - fc) / bw) ** 2) for fc, bw in ((700, 120), (1200, 150), (2600, 250)))
        x += gain * np.sin(2 * np.pi * f * t)
    return (x / np.abs(x).max() * 8000).astype(np.int16)


def test_frame_count_and_rate():
    for frate in (100, 90):
        shift = frame_shift(frate)
        for n in (16000, 16000 + shift - 1, 411, 409, 0):
            c = mfcc(np.zeros(n, np.int16), FeatureOptions(frate=frate))
            assert c.shape == (max(1, 1 + (n - 410) // shift), 13) and c.dtype == np.float32
    assert frame_shift(100) == 160 and frame_shift(90) == 178


def test_digital_silence_is_finite():
    c = mfcc(np.zeros(SR, np.int16), FeatureOptions(warp=1.3, smooth_hz=250.0))
    assert np.isfinite(c).all()


def test_filters_keep_unit_area_when_smoothed():
    bin_hz = SR / 512
    plain = _filters(1.3, 0).sum(axis=1) * bin_hz
    smooth = _filters(1.3, 7).sum(axis=1) * bin_hz
    assert np.allclose(plain, 1.0, atol=0.25)  # triangles rounded to FFT bins
    assert np.allclose(smooth[3:], plain[3:], rtol=0.02)  # the lowest filters lose a little below 0 Hz


def test_smoothing_brings_a_high_voice_closer_to_a_low_one():
    """Same formants, F0 110 Hz against 330 Hz: smoothing the high voice's spectrum over 0.7 x F0 moves its
    cepstrum (c1-c12, mean over frames) towards the low voice's."""
    low = mfcc(vowel(110), FeatureOptions()).mean(axis=0)[1:]
    high_plain = mfcc(vowel(330), FeatureOptions()).mean(axis=0)[1:]
    high_smooth = mfcc(vowel(330), FeatureOptions(smooth_hz=0.7 * 330)).mean(axis=0)[1:]
    d_plain = np.linalg.norm(high_plain - low)
    d_smooth = np.linalg.norm(high_smooth - low)
    print(f"\ncepstral distance to the 110 Hz voice: plain {d_plain:.1f}, smoothed {d_smooth:.1f}")
    assert d_smooth < 0.8 * d_plain


def _speech_span(audio: np.ndarray) -> tuple[float, float]:
    """First and last 10 ms frame above 1 % of the loudest one, in seconds."""
    frames = audio[: len(audio) // 160 * 160].astype(np.float64).reshape(-1, 160)
    loud = np.flatnonzero((frames ** 2).mean(axis=1) > 0.01 * (frames ** 2).mean(axis=1).max())
    return loud[0] / 100, (loud[-1] + 1) / 100


def test_high_pitched_clip_decodes_with_word_times_on_the_speech():
    """A shouted clip from tests/data, above HIGH_F0, is decoded from these features at HIGH_FRATE frames per
    second. Behind 3 s of silence, its first and last words must sit on the speech: frame times taken at
    100 per second would put them about 0.4 s early."""
    clip = DATA / "03-01-05-02-01-01-02.flac"  # angry, strong: "Kids are talking by the door"
    audio, sr = sf.read(clip, dtype="int16")
    assert sr == SR and median_f0(audio) > HIGH_F0
    audio = np.concatenate([np.zeros(3 * SR, np.int16), audio])
    onset, offset = _speech_span(audio)
    engine = SphinxTranscriber()
    engine.start_utterance(1, 2 * SR)
    engine.accept(audio)
    t = engine.end_utterance()
    print(f"\n{t.text!r}: words {t.words[0].start_s - 2:.2f}-{t.words[-1].end_s - 2:.2f} s, "
          f"speech {onset:.2f}-{offset:.2f} s")
    assert len(t.words) >= 3 and {"kids", "talking", "door"} & set(t.text.split()), t.text
    assert t.start_s == 2.0 and abs(t.end_s - (2.0 + len(audio) / SR)) < 1e-9
    prev = t.start_s
    for w in t.words:
        assert prev - 1e-6 <= w.start_s <= w.end_s <= t.end_s + 1e-6
        prev = w.end_s
    assert abs(t.words[0].start_s - 2 - onset) < 0.3
    assert abs(t.words[-1].end_s - 2 - offset) < 0.3
