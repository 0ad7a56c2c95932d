"""The live pipeline in-process: file sources in different block sizes, sinks, counters."""

from __future__ import annotations

import csv

import numpy as np
import soundfile as sf
from conftest import load_clip

from monitor.audio.sources import FileSource
from monitor.dsp.segmenter import segment_audio
from monitor.pipeline import Pipeline
from monitor.sinks.csv_timeline import CsvTimeline


class Collect:
    def __init__(self):
        self.events = []
        self.closed = False

    def handle(self, event):
        self.events.append(event)

    def close(self):
        self.closed = True


def _stream_file(tmp_path, clips):
    parts = [np.zeros(8000, np.int16)]
    for c in clips:
        parts += [load_clip(c), np.zeros(24000, np.int16)]
    audio = np.concatenate(parts)
    path = tmp_path / "stream.wav"
    sf.write(path, audio, 16000, subtype="PCM_16")
    return path, audio


def _run(path, classifier, block_ms, sinks=()):
    collect = Collect()
    source = FileSource(path, realtime=False, block_ms=block_ms)
    p = Pipeline(source, classifier, sinks=[collect, *sinks])
    p.start()
    p.wait(60)
    p.stop()
    assert p.error is None and source.error is None
    return collect, p


def test_block_size_does_not_change_the_events(tmp_path, clips, classifier):
    path, audio = _stream_file(tmp_path, clips[:4])
    runs = [_run(path, classifier, ms)[0].events for ms in (3, 20, 250)]
    ref = runs[0]
    assert len(ref) >= 4
    for events in runs[1:]:
        assert [(e.start_s, e.end_s, e.emotion) for e in events] == [(e.start_s, e.end_s, e.emotion) for e in ref]
        for a, b in zip(events, ref, strict=True):
            assert a.probabilities == b.probabilities
    # And the same windows as the offline segmentation of the whole signal.
    assert [(round(e.start_s, 3), round(e.end_s, 3)) for e in ref] == [
        (round(w.start_s, 3), round(w.end_s, 3)) for w in segment_audio(audio)
    ]


def test_events_reach_the_csv_in_order_with_all_columns(tmp_path, clips, classifier):
    path, _ = _stream_file(tmp_path, clips[:3])
    out = tmp_path / "timeline.csv"
    sink = CsvTimeline(out, classifier.labels)
    collect, p = _run(path, classifier, 20, sinks=[sink])
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(collect.events) == p.stats.events
    assert [int(r["index"]) for r in rows] == sorted(int(r["index"]) for r in rows)
    for r, e in zip(rows, collect.events, strict=True):
        assert r["emotion"] == e.emotion and r["emotion"] in classifier.labels
        assert abs(sum(float(r[f"p_{lab}"]) for lab in classifier.labels) - 1) < 0.01
        assert float(r["end_s"]) > float(r["start_s"])
    assert collect.closed
    assert p.stats.dropped_windows == 0 and p.dropped_blocks == 0


def test_silence_only_gives_no_events(tmp_path, classifier):
    path = tmp_path / "silence.flac"
    rng = np.random.default_rng(0)
    sf.write(path, (rng.standard_normal(16000 * 8) * 30).astype(np.int16), 16000, subtype="PCM_16")
    collect, p = _run(path, classifier, 20)
    assert collect.events == [] and p.stats.windows == 0
