"""The VAD segmenter on real recordings and synthetic noise."""

import numpy as np
import pytest
from conftest import load_clip

from monitor.dsp.segmenter import Segmenter, SegmenterOptions, segment_audio
from monitor.dsp.vad import VadOptions

SR = 16000


def _stream(clips, gap_s=2.0):
    parts = [np.zeros(int(gap_s * SR), np.int16)]
    spans = []
    pos = len(parts[0])
    for c in clips:
        spans.append((pos / SR, (pos + len(c)) / SR))
        parts += [c, np.zeros(int(gap_s * SR), np.int16)]
        pos += len(c) + int(gap_s * SR)
    return np.concatenate(parts), spans


def _feed(audio, block, options=None, speech=False):
    seg = Segmenter(options, speech_chunks=speech)
    out = []
    chunks = []
    for i in range(0, len(audio), block):
        out += seg.feed(audio[i : i + block])
        chunks += seg.take_speech()
    out += seg.flush()
    chunks += seg.take_speech()
    return out, chunks


def test_finds_speech_in_every_quiet_clip(clips):
    for path in clips:
        audio = load_clip(path)
        peak_dbfs = 20 * np.log10(np.abs(audio).max() / 32768)
        windows = segment_audio(audio)
        assert windows, f"{path.name} (peak {peak_dbfs:.1f} dBFS): no speech found"
        assert all(0.0 <= w.start_s < w.end_s <= len(audio) / SR for w in windows)


def test_quiet_clip_attenuated_further_is_still_found(clips):
    audio = (load_clip(clips[0]).astype(np.float32) * 10 ** (-12 / 20)).astype(np.int16)
    assert 20 * np.log10(np.abs(audio).max() / 32768) < -35
    assert segment_audio(audio)


@pytest.mark.parametrize("level", [0.0005, 0.005, 0.05, 0.3])
def test_nothing_from_steady_white_noise(level):
    rng = np.random.default_rng(1)
    noise = np.clip(rng.standard_normal(20 * SR) * level * 32768, -32768, 32767).astype(np.int16)
    assert segment_audio(noise) == []


def test_nothing_from_hum_or_brown_noise_or_silence():
    t = np.arange(15 * SR) / SR
    hum = (0.1 * 32768 * (np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t))).astype(np.int16)
    rng = np.random.default_rng(2)
    brown = np.cumsum(rng.standard_normal(15 * SR))
    brown = (brown - np.convolve(brown, np.ones(801) / 801, mode="same"))  # remove the drift
    brown = (brown / np.abs(brown).max() * 0.2 * 32768).astype(np.int16)
    assert segment_audio(hum) == []
    assert segment_audio(brown) == []
    assert segment_audio(np.zeros(10 * SR, np.int16)) == []


def test_speech_in_noise_is_found_and_the_noise_is_not(clips):
    speech = load_clip(clips[4]).astype(np.float64)
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(12 * SR)
    speech_rms = np.sqrt(np.mean(speech[int(1 * SR) : int(2.5 * SR)] ** 2))
    noise *= speech_rms / 10 ** (15 / 20)  # 15 dB SNR
    mix = noise.copy()
    mix[5 * SR : 5 * SR + len(speech)] += speech
    windows = segment_audio(np.clip(mix, -32768, 32767).astype(np.int16))
    assert windows
    assert all(4.5 <= w.start_s and w.end_s <= 5 + len(speech) / SR + 0.5 for w in windows)


def _by_utterance(chunks):
    return {u: np.concatenate([c.audio for c in chunks if c.utterance == u]) for u in {c.utterance for c in chunks}}


def test_chunk_size_invariance(clips):
    audio, _ = _stream([load_clip(c) for c in clips[:4]])
    ref, ref_chunks = _feed(audio, len(audio), speech=True)
    assert len(ref) >= 4
    for block in (1, 160, 333, 480, 4096):
        got, chunks = _feed(audio, block, speech=True)
        assert [(w.start_sample, w.end_sample, w.utterance) for w in got] == [
            (w.start_sample, w.end_sample, w.utterance) for w in ref
        ]
        assert all(np.array_equal(a.audio, b.audio) for a, b in zip(got, ref, strict=True))
        # The speech stream for the transcriber is the same audio too.
        joined, joined_ref = _by_utterance(chunks), _by_utterance(ref_chunks)
        assert joined.keys() == joined_ref.keys()
        assert all(np.array_equal(joined[u], joined_ref[u]) for u in joined)


def test_windows_line_up_with_the_clips(clips):
    audio, spans = _stream([load_clip(c) for c in clips[:3]], gap_s=3.0)
    windows = segment_audio(audio)
    for start, end in spans:
        inside = [w for w in windows if start - 0.3 <= w.start_s and w.end_s <= end + 0.3]
        assert inside, f"no window for the clip at {start:.1f}-{end:.1f} s"
    for w in windows:
        assert any(s - 0.3 <= w.start_s and w.end_s <= e + 0.3 for s, e in spans), "a window in a silence"


def test_short_utterances_padded_long_speech_split_with_hop(clips):
    options = SegmenterOptions(hop_s=1.5, min_speech_s=0.5)
    a = load_clip(clips[2])
    # Long continuous speech: the same clip three times back to back, no gap.
    long = np.concatenate([a[int(0.8 * SR) : int(3.0 * SR)]] * 4)
    long = np.concatenate([np.zeros(SR, np.int16), long, np.zeros(SR, np.int16)])
    windows = segment_audio(long, options)
    full = [w for w in windows if len(w.audio) == 3 * SR]
    assert len(full) >= 3
    starts = [w.start_s for w in full]
    assert all(abs((b - a) - 1.5) < 1e-6 for a, b in zip(starts, starts[1:], strict=False) if b - a < 2)
    assert windows[-1].final
    # A short utterance (< 3 s) becomes one window shorter than 3 s (the features pad it).
    short = segment_audio(np.concatenate([np.zeros(SR, np.int16), a[int(0.8 * SR) : int(2.2 * SR)],
                                          np.zeros(SR, np.int16)]), options)
    assert len(short) == 1 and 0.5 * SR <= len(short[0].audio) < 3 * SR
    # Below min_speech_s: nothing.
    tiny = segment_audio(np.concatenate([np.zeros(SR, np.int16), a[int(1.0 * SR) : int(1.2 * SR)],
                                         np.zeros(SR, np.int16)]), SegmenterOptions(min_speech_s=0.5))
    assert tiny == []


def test_bad_options_are_refused():
    with pytest.raises(ValueError):
        Segmenter(SegmenterOptions(vad=VadOptions(aggressiveness=5)))
    with pytest.raises(ValueError):
        Segmenter(SegmenterOptions(min_speech_s=4.0))


def test_frames_judged_by_the_block_decide_as_one_by_one() -> None:
    """``FrameVad.are_speech`` (the segmenter's: one numpy call scales a block's frames for webrtcvad) decides
    every frame as ``is_speech`` one at a time does, through quiet and loud stretches (gain up and down), in
    blocks of any size, and leaves the same floor behind."""
    from monitor.audio.convert import read_audio
    from monitor.dsp.vad import FrameVad, VadOptions, frame_levels_dbfs
    from tests.test_batch import clips

    parts = []
    for clip, gain in zip(clips()[:4], (0.02, 1.0, 3.0, 0.3), strict=True):
        audio, _ = read_audio(clip)
        parts.append(np.clip(audio.astype(np.float64) * gain, -32768, 32767).astype(np.int16))
    audio = np.concatenate(parts)
    opts = VadOptions()
    n = len(audio) // opts.frame_samples
    frames = audio[: n * opts.frame_samples].reshape(n, opts.frame_samples)
    levels = frame_levels_dbfs(frames)
    one = FrameVad(opts)
    expected = [one.is_speech(f, lv) for f, lv in zip(frames, levels, strict=True)]
    assert 0.2 < np.mean(expected) < 0.9
    rng = np.random.default_rng(3)
    block = FrameVad(opts)
    got: list[bool] = []
    i = 0
    while i < n:
        k = int(rng.integers(1, 40))
        got += block.are_speech(frames[i : i + k], levels[i : i + k])
        i += k
    assert got == expected
    assert (block.noise_floor_dbfs, block.level_dbfs, block.peak_dbfs()) == (
        one.noise_floor_dbfs, one.level_dbfs, one.peak_dbfs())
