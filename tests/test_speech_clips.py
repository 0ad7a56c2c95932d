"""Clips that are speech from their first to their last sample (as datasets and call-centre exports cut them)
give windows: in the segmenter, in ``voice-monitor score`` and in ``voice-monitor --file``.

The clips are the RAVDESS recordings of tests/data cut to their speech by level (benchmarks/bench_speech_clips.py,
which also measures the effect on the shared corpora), whole (1.2-2.5 s) and their middle 1 s and 1.5 s. Before
the segmenter judged the stream's first frames against the floor of its first seconds, the noise-floor rule had no
quiet frame to measure against and several of them gave no window at all.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, load_clip, ravdess_dir
from test_cli import run
from test_pipeline import Collect

from monitor.audio.sources import FileSource
from monitor.batch.score import FileScorer, ScoreOptions
from monitor.dsp.segmenter import Segmenter, SegmenterOptions, segment_audio
from monitor.pipeline import Pipeline

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_speech_clips import cut_to_speech, middle  # noqa: E402

SR = 16000


def speech_clips(clips) -> dict[str, np.ndarray]:
    out = {}
    for path in clips:
        cut = cut_to_speech(load_clip(path))
        out[f"{path.stem}-cut"] = cut
        for seconds in (1.0, 1.5):
            out[f"{path.stem}-{seconds}s"] = middle(cut, seconds)
    return out


def _starts_in_speech(audio: np.ndarray) -> bool:
    """The first 30 ms are within 25 dB of the clip's loudest 30 ms: no quiet lead-in."""
    frames = audio[: len(audio) // 480 * 480].astype(np.float64).reshape(-1, 480)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-9)
    return level[:2].max() >= level.max() - 25


def test_clips_cut_to_their_speech_give_windows(clips):
    cut = speech_clips(clips)
    assert all(0.9 * SR <= len(a) <= 2.6 * SR for a in cut.values())
    assert all(_starts_in_speech(a) for a in cut.values())
    missing = [name for name, audio in cut.items() if not segment_audio(audio)]
    assert missing == [], f"no window for {missing}"
    # The windows lie inside the clip and cover most of it.
    for audio in cut.values():
        windows = segment_audio(audio)
        assert windows[0].start_sample >= 0 and windows[-1].end_sample <= len(audio)
        assert sum(w.end_sample - w.start_sample for w in windows) >= 0.6 * len(audio)


def test_judging_the_start_causally_loses_them(clips):
    """The old rule (no warm-up) on the same clips: the failure this fixes, so the test above can fail."""
    cut = speech_clips(clips)
    lost = [n for n, a in cut.items() if not segment_audio(a, SegmenterOptions(floor_warmup_s=0.0))]
    assert len(lost) >= 3, lost


def test_a_stream_that_begins_at_its_floor_is_cut_as_before(clips):
    """RAVDESS clips as they are whose room tone at the start sits at the floor of their first 3 s (first 90 ms
    within 9 dB of its 10th-percentile frame): the warm-up decides them frame by frame, as the causal rule did,
    so their windows do not move by a sample."""
    at_floor = 0
    for path in clips:
        audio = load_clip(path)
        frames = audio[: 3 * SR].astype(np.float64).reshape(-1, 480)
        level = 10 * np.log10(np.mean(frames**2, axis=1) / 32768**2 + 1e-12)
        if level[:3].max() >= np.percentile(level, 10) + 9:
            continue
        at_floor += 1
        old = segment_audio(audio, SegmenterOptions(floor_warmup_s=0.0))
        assert [(w.start_sample, w.end_sample) for w in segment_audio(audio)] == [
            (w.start_sample, w.end_sample) for w in old
        ], path.name
    assert at_floor >= 5


def test_windows_of_speech_from_the_first_sample_do_not_depend_on_the_block_size(clips):
    cut = speech_clips(clips)
    # One clip shorter than the warm-up, and back-to-back speech that runs past it.
    for audio in (cut[f"{clips[0].stem}-1.0s"], np.concatenate([cut[f"{c.stem}-cut"] for c in clips[:4]])):
        ref = segment_audio(audio)
        assert ref
        for block in (1, 160, 333, 4096, len(audio)):
            seg = Segmenter()
            got = []
            for i in range(0, len(audio), block):
                got += seg.feed(audio[i : i + block])
            got += seg.flush()
            assert [(w.start_sample, w.end_sample, w.utterance) for w in got] == [
                (w.start_sample, w.end_sample, w.utterance) for w in ref
            ]


def test_steady_noise_from_the_first_sample_still_gives_nothing():
    """Shorter than the warm-up, exactly it and longer: noise and hum are judged against their own floor."""
    rng = np.random.default_rng(5)
    t = np.arange(8 * SR) / SR
    hum = 0.1 * (np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t))
    for signal in (0.05 * rng.standard_normal(8 * SR), hum):
        audio = np.clip(signal * 32768, -32768, 32767).astype(np.int16)
        for seconds in (1.0, 3.0, 8.0):
            assert segment_audio(audio[: int(seconds * SR)]) == []


def _write(folder: Path, cut: dict[str, np.ndarray]) -> list[Path]:
    folder.mkdir()
    paths = []
    for name, audio in cut.items():
        paths.append(folder / f"{name}.flac")
        sf.write(paths[-1], audio, SR, subtype="PCM_16")
    return paths


def test_score_gives_every_cut_clip_an_emotion(tmp_path, clips, model_path):
    _write(tmp_path / "cut", speech_clips(clips))
    out = tmp_path / "out.csv"
    proc = run(["score", str(tmp_path / "cut"), "--out", str(out), "--transcriber", "none", "--model",
                str(model_path), "--progress", "none"])
    assert proc.returncode == 0, proc.stderr.decode()
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 24
    assert [r["path"] for r in rows if not r["emotion"] or int(r["windows"]) < 1] == []


def test_live_file_gives_windows_for_a_cut_clip(tmp_path, clips, model_path, classifier):
    cut = speech_clips(clips)
    name = f"{clips[0].stem}-1.0s"  # lost by the old rule
    (path,) = _write(tmp_path / "cut", {name: cut[name]})
    out = tmp_path / "timeline.csv"
    proc = run(["--file", str(path), "--no-dashboard", "--transcriber", "none", "--csv", str(out), "--model",
                str(model_path)])
    assert proc.returncode == 0, proc.stderr.decode()
    rows = list(csv.DictReader(out.open()))
    assert len(rows) >= 1 and rows[0]["emotion"] in classifier.labels
    # In-process, in small and large blocks: the same windows as the offline segmentation.
    expected = [(round(w.start_s, 3), round(w.end_s, 3)) for w in segment_audio(cut[name])]
    for block_ms in (10, 250):
        collect = Collect()
        source = FileSource(path, realtime=False, block_ms=block_ms)
        p = Pipeline(source, classifier, sinks=[collect])
        p.start()
        p.wait(60)
        p.stop()
        assert p.error is None and source.error is None
        assert [(round(e.start_s, 3), round(e.end_s, 3)) for e in collect.events] == expected


def test_opus_corpus_clips_cut_to_their_speech(classifier):
    """Needs the shared data (nemo and ased beside RAVDESS_DIR): 20 Opus clips of each, cut to their speech and
    to their middle 1.5 s, scored as a file is."""
    shared = ravdess_dir().parent
    folders = [shared / name for name in ("nemo", "ased")]
    if not all((f / "manifest.csv").is_file() for f in folders):
        pytest.skip(f"nemo and ased not found in {shared}: set RAVDESS_DIR to the ravdess16k of the shared data")
    scorer = FileScorer(ScoreOptions(), classifier)
    for folder in folders:
        with (folder / "manifest.csv").open(newline="", encoding="utf-8") as f:
            paths = [folder / row["path"] for row in csv.DictReader(f)][::97][:20]
        n = empty_before = empty_after = 0
        for path in paths:
            cut = cut_to_speech(load_clip(path))
            for audio in (cut, middle(cut, 1.5)):
                if len(audio) < 1.0 * SR:
                    continue  # shorter than the 1-2 s this is about (and often below min_speech_s of speech)
                n += 1
                empty_after += not scorer.analyze(audio).events
                empty_before += not segment_audio(audio, SegmenterOptions(floor_warmup_s=0.0))
        # A few ased clips stay without: loud, under 20 dB from their quietest to their loudest frame, or with
        # under 0.6 s of speech on either side of a pause.
        assert n >= 30 and empty_after <= 0.12 * n, f"{folder.name}: {empty_after} of {n} cut clips without windows"
        assert empty_before >= 2 * empty_after, (folder.name, empty_before, empty_after)


def test_the_level_shown_follows_the_audio_during_the_warm_up(clips):
    """The first 3 s are decided together, but the dashboard's level meter must not freeze meanwhile."""
    from monitor.dsp.vad import frame_level_dbfs

    audio = np.concatenate([cut_to_speech(load_clip(c)) for c in clips[:3]])  # speech from sample 0, > 3 s
    assert len(audio) > 48000
    seg = Segmenter()
    seen = []
    for i in range(0, 48000, 4800):
        block = audio[i : i + 4800]
        seg.feed(block)
        assert seg.level_dbfs == pytest.approx(frame_level_dbfs(block[len(block) // 480 * 480 - 480 :][:480]))
        seen.append(seg.level_dbfs)
    assert len(set(seen)) > 3 and max(seen) > -60


def test_the_speech_state_shown_moves_during_the_warm_up(clips):
    """A clip as it is (room tone, then speech within the first 3 s): the dashboard's SPEECH state comes on while
    the warm-up's windows are still held back, and the windows then come out as the causal rule cut them."""
    audio = load_clip(clips[2])
    seg = Segmenter()
    lit = None
    windows = []
    for i in range(0, len(audio), 480):
        windows += seg.feed(audio[i : i + 480])
        if seg.in_speech and lit is None:
            lit = i / SR
    windows += seg.flush()
    assert lit is not None and lit < 2.0
    old = segment_audio(audio, SegmenterOptions(floor_warmup_s=0.0))
    assert [(w.start_sample, w.end_sample) for w in windows] == [(w.start_sample, w.end_sample) for w in old]
