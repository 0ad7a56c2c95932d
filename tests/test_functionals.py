"""``monitor.dsp.functionals``: the numpy prosodic functionals the probe measured (models/results/FINDINGS.md)."""

from __future__ import annotations

import numpy as np

from monitor.audio.convert import read_audio
from monitor.dsp.functionals import NAMES, functionals
from tests.test_batch import clips


def tone(f0: float, seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6))
    return (x * 32767 * 0.5).astype(np.int16)


def test_pitch_of_a_harmonic_tone() -> None:
    for f0 in (110.0, 220.0, 330.0):
        f = dict(zip(NAMES, functionals(tone(f0)), strict=True))
        expected = 12 * np.log2(f0 / 27.5)
        assert abs(f["f0_p50"] - expected) < 0.3, (f0, f["f0_p50"], expected)
        assert f["voiced_ratio"] > 0.9 and f["f0_std"] < 0.3


def test_silence_is_zeros_and_speech_is_not() -> None:
    assert not functionals(np.zeros(16000, dtype=np.int16)).any()
    audio, _ = read_audio(clips()[4])
    f = functionals(audio)
    assert f.shape == (len(NAMES),) and np.isfinite(f).all()
    values = dict(zip(NAMES, f, strict=True))
    assert 0.1 < values["voiced_ratio"] < 0.9  # a sentence between room tone
    assert np.array_equal(f, functionals(audio))  # deterministic


def test_the_fast_helpers_equal_numpys() -> None:
    """The hand-written percentiles, slope and stretch lengths (numpy's own calls cost most of a window's time on
    75 values) give what np.percentile, np.polyfit and a plain loop give."""
    from monitor.dsp.functionals import _percentiles, _runs, _slope

    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 10, 75, 76):
        v = rng.normal(size=n) * 10
        assert _percentiles(v) == tuple(float(x) for x in np.percentile(v, [20, 50, 80]))
        if n >= 2:
            x = np.sort(rng.uniform(0, 1500, size=n)) + np.arange(n)
            assert abs(_slope(x, v) - np.polyfit(x, v, 1)[0]) < 1e-9 * max(1.0, abs(np.polyfit(x, v, 1)[0]))
        mask = rng.random(n) < 0.6
        on, off, count, state = [], [], 0, None
        for m in mask:
            if m == state:
                count += 1
                continue
            if state is not None:
                (on if state else off).append(count)
            state, count = bool(m), 1
        (on if state else off).append(count)
        assert _runs(mask) == (on, off)
    assert _runs(np.zeros(0, bool)) == ([], [])
