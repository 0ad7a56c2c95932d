"""Short voiced words in a stream: an utterance of at least ``short_speech_s`` (0.25 s) but under ``min_speech_s``
(0.6 s) of speech gets a window when it is voiced like speech (a "yes", a name), so a conversation's short turns
are heard and attributed; a knock, a cough or a burst of hum of the same length still gives nothing. Real RAVDESS
speech from tests/data, the real webrtcvad segmenter fed in blocks as live feeds it, the real scorer and model."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from monitor.batch.score import FileScorer, ScoreOptions
from monitor.config import Config, load_config
from monitor.dsp.segmenter import Segmenter, SegmenterOptions
from monitor.errors import ConfigError
from tests.test_batch import MODEL, clips
from tests.test_short_words import one_word

RATE = 16000


def quiet(seconds: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal(int(seconds * RATE)) * 20).astype(np.int16)  # a quiet room's floor, about -64 dBFS


def burst(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    if kind == "knock":  # a sharp onset dying away
        x = rng.standard_normal(n) * np.exp(-t / 0.05)
    elif kind == "cough":  # a swell of broadband noise
        x = rng.standard_normal(n) * np.sin(np.pi * t / t[-1])
    else:  # hum: a 110 Hz tone with its second harmonic
        x = np.sin(2 * np.pi * 110 * t) + 0.5 * np.sin(2 * np.pi * 220 * t)
    return (0.3 * x / np.abs(x).max() * 32767).astype(np.int16)


def in_room(sound: np.ndarray, before: float, after: float, rng: np.random.Generator) -> np.ndarray:
    """``sound`` played into a quiet room: ``before`` and ``after`` seconds of its floor, the floor under it too."""
    floor = quiet(before + len(sound) / RATE + after, rng)
    start = int(before * RATE)
    mixed = floor.astype(np.int32)
    mixed[start : start + len(sound)] += sound
    return np.clip(mixed, -32768, 32767).astype(np.int16)


def stream(audio: np.ndarray, options: SegmenterOptions) -> tuple[list, Segmenter]:
    seg = Segmenter(options)
    out = []
    for i in range(0, len(audio), 1600):  # 0.1 s blocks, as the live monitor feeds it
        out += seg.feed(audio[i : i + 1600])
    return out + seg.flush(), seg


def test_a_short_voiced_word_between_pauses_gets_a_window() -> None:
    rng = np.random.default_rng(0)
    monitor = Config().segmenter_options()
    assert monitor.short_speech_s == 0.25 and monitor.min_speech_s == 0.6
    heard = 0
    for clip in clips()[:6]:
        audio = in_room(one_word(clip, 0.45), 2, 1, rng)
        bare, seg = stream(audio, SegmenterOptions())
        assert bare == [] and seg.dropped_short == 1, "under min_speech_s the bare segmenter drops the word"
        windows, _ = stream(audio, monitor)
        assert len(windows) <= 1
        if windows:
            w = windows[0]
            assert w.final and w.start_sample <= 2 * RATE + 0.2 * RATE + 0.1 * RATE  # it starts at the word
            assert w.end_sample >= 2 * RATE + 0.2 * RATE + 0.3 * RATE
            heard += 1
    assert heard >= 5, f"{heard} of 6 words of 0.45 s heard"


def test_knocks_coughs_and_hum_of_a_word_s_length_give_no_window() -> None:
    rng = np.random.default_rng(1)
    monitor = Config().segmenter_options()
    ungated = SegmenterOptions(min_speech_s=0.25)  # what the VAD alone would let through at that length
    through = 0
    for kind in ("knock", "cough", "hum"):
        for seconds in (0.3, 0.4, 0.5):
            audio = in_room(burst(kind, seconds, rng), 2, 1, rng)
            through += len(stream(audio, ungated)[0])
            windows, seg = stream(audio, monitor)
            assert windows == [], (kind, seconds)
            assert seg.dropped_short >= 1, (kind, seconds)  # heard, and dropped
    assert through >= 3, "the VAD hears several of these bursts: the voicing check is what keeps them out"


def test_score_with_the_monitor_s_settings_judges_one_word_in_a_long_recording(tmp_path) -> None:
    """A 15 s recording holding one voiced word is judged with the monitor's settings (the file-level re-reading
    is for short files only); the same recording with a knock instead stays without speech."""
    rng = np.random.default_rng(2)
    scorer = FileScorer(ScoreOptions(model_path=str(MODEL), segmenter=Config().segmenter_options()))
    word = one_word(clips()[2], 0.45)
    for name, sound, judged in (("word", word, True), ("knock", burst("knock", 0.45, rng), False)):
        path = tmp_path / f"{name}.wav"
        sf.write(path, in_room(sound, 7, 7, rng), RATE)
        result = scorer.score(str(path))
        assert not result.failed, result.error
        if judged:
            assert result.emotion and len(result.events) == 1, result.error
        else:
            assert result.events == [] and "no speech found" in result.error, result.error


def test_short_speech_s_is_checked_and_can_be_turned_off(tmp_path) -> None:
    with pytest.raises(ValueError, match="short_speech_s"):
        SegmenterOptions(short_speech_s=0.7).validate()  # longer than min_speech_s
    bad = tmp_path / "bad.toml"
    bad.write_text("[windows]\nshort_speech_s = -1\n")
    with pytest.raises(ConfigError, match="short_speech_s"):
        load_config(bad)
    off = tmp_path / "off.toml"
    off.write_text("[windows]\nshort_speech_s = 0\n")
    assert load_config(off).segmenter_options().short_speech_s == 0
    low = tmp_path / "low.toml"
    low.write_text("[windows]\nmin_speech_s = 0.2\n")  # a minimum under the short one: the short rule has no room
    assert load_config(low).segmenter_options().short_speech_s == 0.2


def test_score_reads_a_short_file_again_with_any_short_speech_s(tmp_path) -> None:
    """The re-readings lower ``min_speech_s`` to 0.25 s; a run whose ``short_speech_s`` is above that (0.3, or the
    0.6 it is clamped to) must still read silence and a cough as no speech, not fail the file."""
    rng = np.random.default_rng(3)
    silence, cough = tmp_path / "silence.wav", tmp_path / "cough.wav"
    sf.write(silence, np.zeros(3 * RATE, dtype=np.int16), RATE)
    sf.write(cough, in_room(burst("cough", 3.0, rng), 0.2, 0.2, rng), RATE)
    for short in (0.3, 0.6):
        config = tmp_path / f"short{short}.toml"
        config.write_text(f"[windows]\nshort_speech_s = {short}\n")
        options = ScoreOptions(model_path=str(MODEL), segmenter=load_config(config).segmenter_options())
        assert options.segmenter.short_speech_s == short
        scorer = FileScorer(options)
        for path in (silence, cough):
            result = scorer.score(str(path))
            assert not result.failed and "no speech found" in result.error, (short, path.name, result.error)
