"""A noise floor that dipped (an unmuted microphone, a gain control recovering, an edit): the VAD's steady-floor
rule (``[vad] steady_db``) restarts the floor at the room's tone, so the tone after the dip is not speech."""

from dataclasses import replace

import numpy as np
from conftest import load_clip
from scipy.signal import butter, lfilter

from monitor.batch.score import Analysis, FileScorer, ScoreOptions
from monitor.config import Config
from monitor.dsp.segmenter import Segmenter, SegmenterOptions, segment_audio
from monitor.dsp.vad import STEADY_DB, FrameVad, VadOptions, frame_levels_dbfs

SR = 16000
ON = SegmenterOptions.monitor()
OFF = replace(ON, vad=replace(ON.vad, steady_db=0.0))


def _band_noise(seconds: float, dbfs: float, seed: int) -> np.ndarray:
    """Room tone of 300-3000 Hz (what webrtcvad most often takes for speech once it is scaled up), unit RMS."""
    b, a = butter(2, [300 / (SR / 2), 3000 / (SR / 2)], "band")
    x = lfilter(b, a, np.random.default_rng(seed).standard_normal(int(seconds * SR)))
    return x / np.sqrt(np.mean(x**2)) * 10 ** (dbfs / 20)


def _unmuted(seconds: float, seed: int, dip_s: float = 1.5) -> np.ndarray:
    """``dip_s`` of dither at -90 dBFS (a muted microphone), then room tone at -45 dBFS."""
    x = _band_noise(seconds, -45.0, seed)
    x[: int(dip_s * SR)] = np.random.default_rng(seed + 1).standard_normal(int(dip_s * SR)) * 10 ** (-90 / 20)
    return x


def _int16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)


def _floors(audio: np.ndarray, options: VadOptions) -> list[float]:
    vad = FrameVad(options)
    frames = audio[: len(audio) // 480 * 480].reshape(-1, 480)
    out = []
    for frame, level in zip(frames, frame_levels_dbfs(frames), strict=True):
        vad.is_speech(frame, level)
        out.append(vad.noise_floor_dbfs)
    return out


def test_the_floor_comes_back_to_the_room_a_second_after_a_dip():
    audio = _int16(_unmuted(8.0, seed=0))
    on = _floors(audio, VadOptions(steady_db=STEADY_DB))
    off = _floors(audio, VadOptions())
    after = int(3.0 * 1000 / 30)  # 1.5 s after the tone began
    assert max(off[: int(1.5 * 1000 / 30)]) < -85  # the dither was the floor
    assert all(f < -85 for f in off[after : after + 60])  # ... and stays it for 5 s without the rule
    assert all(-55 < f < -45 for f in on[after:])  # ... while the rule takes the tone as the floor


def test_room_tone_after_an_unmuted_microphone_gives_no_window():
    for seed in range(4):
        audio = _int16(_unmuted(10.0, seed))
        assert segment_audio(audio, ON) == [], seed
        assert [w for w in segment_audio(audio, OFF) if w.start_s >= 3.0], seed  # the defect, without the rule
        seg = Segmenter(ON)  # live, in the sound card's blocks: the same
        assert [w for i in range(0, len(audio), 1024) for w in seg.feed(audio[i : i + 1024])] + seg.flush() == []


def test_speech_after_a_dip_is_found_and_the_tone_around_it_is_not(clips):
    speech = load_clip(clips[4]).astype(np.float64) / 32768  # angry, RAVDESS actor 01
    speech *= 10 ** (-45 / 20) * 10 ** (15 / 20) / np.sqrt(np.mean(speech**2))  # 15 dB over the tone
    x = _unmuted(14.0, seed=7)
    start = 6 * SR
    x[start : start + len(speech)] += speech
    end = (start + len(speech)) / SR

    def tone_windows(options):
        found = segment_audio(_int16(x), options)
        assert any(w.start_s < end and w.end_s > start / SR for w in found)  # the speech has its window
        return [w for w in found if w.end_s <= start / SR or w.start_s >= end]

    assert tone_windows(OFF)  # the tone after the unmute, a window of its own without the rule ...
    assert tone_windows(ON) == []  # ... and none with it


def test_windows_do_not_depend_on_the_blocks_with_many_restarts():
    """A long stream whose room level steps every 1.35 s restarts the floor again and again: the restarts an
    utterance looks back at must not be pushed out by later ones, whatever the blocks."""
    for seed in range(2):
        x = _band_noise(60.0, -45.0, seed)
        x[4 * SR : int(5.5 * SR)] = np.random.default_rng(seed).standard_normal(int(1.5 * SR)) * 10 ** (-90 / 20)
        t = np.arange(len(x) - 20 * SR) / SR
        x[20 * SR :] *= 1 + 0.5 * (np.sin(2 * np.pi * t / 2.7) > 0)  # from 20 s, the level steps 3.5 dB
        audio = _int16(x)
        seg = Segmenter(ON)
        blocks = [w for i in range(0, len(audio), 8000) for w in seg.feed(audio[i : i + 8000])] + seg.flush()
        assert len(seg.vad.restarts) < 50  # the segmenter drops the restarts it no longer needs
        whole = segment_audio(audio, ON)
        assert [(w.start_sample, w.end_sample) for w in whole] == [(w.start_sample, w.end_sample) for w in blocks]
        assert whole == [] and segment_audio(audio, OFF), seed


def test_an_unvoiced_burst_with_no_dip_keeps_its_window():
    """The voicing check is for utterances heard against a floor that restarted, not for every short one: a
    0.7 s burst of band noise in a quiet room (shorter than the steady second a restart needs) keeps the window it
    always had. (A steady second of it restarts the floor and gives none: a noise that started.)"""
    x = _band_noise(6.0, -70.0, seed=3)
    x[3 * SR : int(3.7 * SR)] += _band_noise(0.7, -25.0, seed=4)
    audio = _int16(x)
    off = segment_audio(audio, OFF)
    assert off and [(w.start_sample, w.end_sample) for w in segment_audio(audio, ON)] == [
        (w.start_sample, w.end_sample) for w in off
    ]


def test_single_clips_and_their_speech_alone_keep_their_windows(clips):
    for path in clips:
        audio = load_clip(path)
        for cut in (audio, audio[int(0.5 * SR) : -int(0.5 * SR)]):
            on = [(w.start_sample, w.end_sample) for w in segment_audio(cut, ON)]
            assert on and on == [(w.start_sample, w.end_sample) for w in segment_audio(cut, OFF)]


def test_the_monitor_and_score_use_the_rule_and_its_noisy_reading_leaves_it_out():
    assert Config().segmenter_options().vad.steady_db == STEADY_DB == ON.vad.steady_db
    assert SegmenterOptions().vad.steady_db == 0  # training's windows are cut without it
    scorer = FileScorer(ScoreOptions())
    assert scorer.options.segmenter.vad.steady_db == STEADY_DB
    readings = scorer.readings_again(Analysis([], 0.0, ""))
    noisy = [r for r in readings if r.vad.margin_db < ON.vad.margin_db]
    assert noisy and all(r.vad.steady_db == 0 for r in noisy)


def _compressed(audio: np.ndarray) -> np.ndarray:
    """A clip through a hard compressor, as broadcast and podcast voices are: every 10 ms within 35 dB of the peak
    lifted to 6 dB under it, so its syllables no longer stand out from each other; 1 s of silence either side."""
    x = audio.astype(np.float64)
    n = len(x) // 160
    frames = x[: n * 160].reshape(n, 160)
    level = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) / 32768 + 1e-12)
    gain = np.where(level > level.max() - 35, 10 ** ((level.max() - 6 - level) / 20), 1.0)
    y = (frames * np.convolve(gain, np.ones(5) / 5, "same")[:, None]).reshape(-1)
    y = np.concatenate([np.zeros(SR), y, np.zeros(SR)])
    return np.round(y / np.abs(y).max() * 0.5 * 32767).astype(np.int16)


def test_even_compressed_speech_is_voiced_and_keeps_its_windows(clips):
    steady = 0
    for path in clips:
        audio = _compressed(load_clip(path))
        levels = np.array(frame_levels_dbfs(audio[: len(audio) // 480 * 480].reshape(-1, 480)))
        for i in range(len(levels) - 33):  # a second of it as steady as room tone, standing above the silence
            second = np.sort(levels[i : i + 33])
            steady += bool(second[3] > levels[levels >= -100].min() + 3 and second[-4] - second[3] <= STEADY_DB)
        assert [(w.start_sample, w.end_sample) for w in segment_audio(audio, ON)] == [
            (w.start_sample, w.end_sample) for w in segment_audio(audio, OFF)
        ], path.name
    assert steady  # the rule's level test takes some of it for room tone: its voicing check keeps it speech
