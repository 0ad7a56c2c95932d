"""A file of one short word (shorter than ``min_speech_s`` of speech, as TurEV's clips or a "yes" cut from a call)
gets an emotion from ``score``, read a second time with a lower minimum; noise and hum of the same length still
give nothing. Real RAVDESS speech from tests/data, the real segmenter and model, the real CLI.

The monitor's own settings keep a voiced short word in the first reading already (``short_speech_s``,
tests/test_short_voiced.py), and then this re-reading is skipped (``FileScorer.short_words``); it is what a run
with ``short_speech_s = 0`` (the bare segmenter) relies on, so these tests read with the bare segmenter."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from monitor.audio.convert import read_audio
from monitor.batch.score import SHORT_FILE_MIN_SPEECH_S, FileScorer, ScoreOptions
from monitor.dsp.segmenter import SegmenterOptions, segment_audio
from tests.test_batch import MODEL, clips

RATE = 16000


def one_word(path, seconds: float = 0.55) -> np.ndarray:
    """``seconds`` of a clip's speech from its first loud 30 ms frame, with 0.2 s of silence on each side."""
    audio, _ = read_audio(path)
    x = audio.astype(np.float64)
    frame = 480
    energy = np.array([np.sqrt(np.mean(x[i : i + frame] ** 2)) for i in range(0, len(x) - frame, frame)])
    start = int(np.argmax(energy > energy.max() * 0.1)) * frame
    word = audio[start : start + int(seconds * RATE)]
    pad = np.zeros(int(0.2 * RATE), dtype=np.int16)
    return np.concatenate([pad, word, pad])


def bare_scorer() -> FileScorer:
    return FileScorer(ScoreOptions(model_path=str(MODEL), segmenter=SegmenterOptions()))


def test_a_single_short_word_gets_an_emotion(tmp_path) -> None:
    scorer = bare_scorer()
    found = 0
    for clip in clips()[:4]:
        word = one_word(clip)
        assert segment_audio(word, scorer.options.segmenter) == [], "the run's own minimum drops this word"
        relaxed = SegmenterOptions(min_speech_s=SHORT_FILE_MIN_SPEECH_S)
        assert segment_audio(word, relaxed), "with the lower minimum the word is one window"
        path = tmp_path / f"word_{clip.stem}.wav"
        sf.write(path, word, RATE)
        result = scorer.score(str(path))
        assert not result.failed and result.error == "", result.error
        assert result.emotion and len(result.events) == 1
        found += 1
    assert found == 4


def test_noise_and_hum_of_a_word_s_length_still_give_nothing(tmp_path) -> None:
    scorer = FileScorer(ScoreOptions(model_path=str(MODEL)))
    rng = np.random.default_rng(0)
    t = np.arange(int(0.9 * RATE)) / RATE
    signals = {
        "hum": 0.1 * np.sin(2 * np.pi * 50 * t) + 0.05 * np.sin(2 * np.pi * 150 * t),
        "noise": 0.05 * rng.standard_normal(len(t)),
        "silence": np.zeros(len(t)),
    }
    for name, x in signals.items():
        path = tmp_path / f"{name}.wav"
        sf.write(path, (x * 32767).astype(np.int16), RATE)
        result = scorer.score(str(path))
        assert result.events == [] and result.emotion == "", name
        assert "no speech found" in result.error, (name, result.error)


def test_a_long_recording_of_one_short_word_stays_without_speech(tmp_path) -> None:
    """The second reading is for short files (datasets, exports): 15 s holding one 0.55 s sound is not judged."""
    scorer = bare_scorer()
    word = one_word(clips()[0])
    quiet = np.zeros(int(7 * RATE), dtype=np.int16)
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate([quiet, word, quiet]), RATE)
    result = scorer.score(str(path))
    assert result.events == [] and "no speech found" in result.error, result.error
    short = tmp_path / "short.wav"
    sf.write(short, word, RATE)
    assert scorer.score(str(short)).emotion, "the same word alone in a short file is judged"
