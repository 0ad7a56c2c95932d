"""The transcription engine in its own process (what the live monitor uses)."""

import numpy as np
import pytest
from conftest import load_clip

from monitor.errors import TranscriberError
from monitor.transcription.isolated import IsolatedTranscriber


def test_pocketsphinx_in_a_child_process_gives_words_in_stream_time(clips):
    t = IsolatedTranscriber("pocketsphinx")
    try:
        assert t.enabled and t.name
        audio = load_clip(clips[0])  # "Kids are talking by the door"
        t.start_utterance(3, 16000 * 10)
        partial = ""
        for i in range(0, len(audio), 1600):
            partial = t.accept(audio[i : i + 1600]) or partial
        result = t.end_utterance()
        assert result.utterance == 3
        assert result.words, result
        assert all(10.0 <= w.start_s <= w.end_s <= 10.0 + len(audio) / 16000 + 0.05 for w in result.words)
        assert "door" in result.text
        # Silence gives no words.
        t.start_utterance(4, 0)
        t.accept(np.zeros(16000 * 2, np.int16))
        assert t.end_utterance().words == ()
    finally:
        t.close()
    assert not t._proc.is_alive()


def test_bad_vosk_model_is_a_one_line_error(tmp_path):
    (tmp_path / "junk.txt").write_text("not a model")
    with pytest.raises(TranscriberError) as err:
        IsolatedTranscriber("vosk", str(tmp_path))
    assert "\n" not in str(err.value) and "not a Vosk model" in str(err.value)


def test_none_engine_is_disabled():
    t = IsolatedTranscriber("none")
    assert not t.enabled
