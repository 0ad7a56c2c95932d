"""Batch scoring reads files in blocks: the same windows as the whole-file path, memory independent of length.

The reference is the previous path: ``read_audio`` (the whole file in memory) -> ``FileScorer.analyze``.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_batch import BAD, MODEL, build_corpus

from monitor.audio.convert import read_audio
from monitor.batch.reader import AudioBlocks
from monitor.batch.score import FileScorer, ScoreOptions
from monitor.errors import AudioError


@pytest.fixture(scope="module")
def scorer() -> FileScorer:
    return FileScorer(ScoreOptions(model_path=str(MODEL)))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("blocks")
    return root, build_corpus(root)


def _long_file(path: Path, seconds: float, rate: int = 44100) -> Path:
    """Test clips one after another, with pauses, as a 44.1 kHz stereo 16-bit WAV of about ``seconds``."""
    clips = sorted((Path(__file__).parent / "data").glob("*.flac"))
    import soxr

    with sf.SoundFile(path, "w", rate, 2, "PCM_16") as out:
        written, i = 0, 0
        while written < seconds * rate:
            y, sr = sf.read(clips[i % len(clips)], dtype="float32")
            y = soxr.resample(np.concatenate([y, np.zeros(sr, np.float32)]), sr, rate)
            out.write(np.stack([y, 0.7 * y], axis=1))
            written += len(y)
            i += 1
    return path


def test_block_reader_gives_the_samples_of_read_audio(corpus) -> None:
    root, expected = corpus
    for rel, kind in expected.items():
        if kind == "bad":
            continue
        whole, duration = read_audio(root / rel)
        reader = AudioBlocks(root / rel, block_s=0.5)
        parts = list(reader.blocks())
        assert max(len(b) for b in parts) <= 2 * 8000, rel  # 0.5 s blocks (soxr delays a few hundred samples)
        streamed = np.concatenate(parts)
        assert reader.duration_s == pytest.approx(duration, abs=1e-9), rel
        assert len(streamed) == len(whole), rel
        diff = np.abs(streamed.astype(np.int32) - whole.astype(np.int32))
        assert diff.max() <= 1, (rel, diff.max())  # float rounding of the resampler, at most one LSB
        if rel.endswith(".flac"):  # 16 kHz mono: no resampling, the very same samples
            assert diff.max() == 0, rel


def test_bad_files_give_the_errors_of_read_audio(corpus) -> None:
    root, _ = corpus
    for rel in [*BAD, "no_such.wav", "sub"]:
        with pytest.raises(AudioError) as whole:
            read_audio(root / rel)
        with pytest.raises(AudioError) as streamed:
            list(AudioBlocks(root / rel).blocks())
        assert str(streamed.value) == str(whole.value), rel


def test_per_window_results_equal_the_whole_file_path(corpus, scorer: FileScorer, tmp_path: Path) -> None:
    root, expected = corpus
    files = [root / rel for rel, kind in expected.items() if kind != "bad"]
    files.append(_long_file(tmp_path / "long.wav", 60))
    windows = 0
    for path in files:
        audio, duration = read_audio(path)
        before = scorer.summarize(str(path), duration, scorer.analyze(audio))
        after = scorer.score(str(path))
        assert not after.failed, after.error
        assert after.duration_s == pytest.approx(before.duration_s, abs=1e-9)
        assert after.speech_s == before.speech_s
        assert after.emotion == before.emotion and after.error == before.error, path
        assert len(after.events) == len(before.events), path
        for a, b in zip(after.events, before.events, strict=True):
            assert (a.index, a.utterance, a.start_s, a.end_s, a.emotion) == (b.index, b.utterance, b.start_s,
                                                                            b.end_s, b.emotion), path
            for lab in scorer.labels:
                assert a.probabilities[lab] == pytest.approx(b.probabilities[lab], abs=1e-6), (path, lab)
        windows += len(after.events)
    assert windows >= len(files)


def test_memory_does_not_grow_with_the_file_length(scorer: FileScorer, tmp_path: Path) -> None:
    """The peak of traced allocations while scoring 30 s and 120 s of 44.1 kHz stereo: the whole-file path
    needs 4x as much for the long file (its float32 samples alone are 42 MB); blocks keep it flat."""
    peaks = []
    for seconds in (30, 120):
        path = _long_file(tmp_path / f"{seconds}.wav", seconds)
        scorer.score(str(path))  # warm: lazy imports and caches are not the file's
        tracemalloc.start()
        try:
            result = scorer.score(str(path))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert not result.failed and result.events, result.error
    short, long = peaks
    assert long < short + 2 * 2**20, f"peak {short / 2**20:.1f} MB for 30 s, {long / 2**20:.1f} MB for 120 s"
