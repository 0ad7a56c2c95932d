"""The dashboard fits the terminal it has: at 80x24 and 120x40 (and smaller) the counters line and the newest
transcript line are always on screen, and the other parts shrink or go by priority (Rich's fixed-size console)."""

import re

import pytest
from rich.console import Console

from monitor.events import Event
from monitor.labels import LABELS
from monitor.pipeline import TranscriptLine
from monitor.sinks.dashboard import Dashboard, Status

COUNTERS = re.compile(r"windows 40 +dropped blocks 3 +dropped windows 1 ")


def _event(i, label, p=0.6):
    probs = {lab: (p if lab == label else (1 - p) / 7) for lab in LABELS}
    return Event(i, i, 3.0 * i, 3.0 * i + 3, 1_700_000_000 + 3 * i, label, p, probs, latency_s=0.012)


def busy_dashboard(partial="dogs are sit", message=""):
    """Forty windows, eight long transcript lines (more than the dashboard keeps), a partial result."""
    status = Status(level_dbfs=-23.5, in_speech=True, position_s=120.5, windows=40, dropped_blocks=3,
                    dropped_windows=1, latency_median_ms=12, latency_p95_ms=30, transcriber_lag_s=1.5,
                    partial=partial, message=message)
    dash = Dashboard(LABELS, "file demo.flac (16000 Hz, 1 ch)", "emotion.tflite", "pocketsphinx", lambda: status)
    for i in range(40):
        dash.on_event(_event(i, LABELS[i % 8]))
    for i in range(8):
        dash.on_transcript(TranscriptLine(i, 3.0 * i, 3.0 * i + 2,
                                          f"line {i} kids are talking by the door and dogs are sitting there",
                                          LABELS[i % 8]))
    return dash


def draw(dash, width, height):
    console = Console(width=width, height=height, record=True, color_system=None)
    console.print(dash.render())
    return console.export_text().splitlines()


def test_80x24_keeps_counters_newest_lines_and_the_bars():
    rows = draw(busy_dashboard(), 80, 24)
    text = "\n".join(rows)
    assert len(rows) <= 24
    assert all(len(r) <= 80 for r in rows)
    assert COUNTERS.search(text)  # the counters line, whole
    assert "[surprised] line 7 kids are talking" in text  # the newest transcript line
    assert "[disgust] line 6" in text and "[fearful] line 5" in text  # and the two before it
    assert "[happy] line 2" not in text  # older ones give way
    assert "surprised  ██████" in text  # the bars of every label still fit
    assert "timeline" in text and "dBFS" in text and "device: file demo.flac" in text


def test_120x40_shows_everything():
    rows = draw(busy_dashboard(), 120, 40)
    text = "\n".join(rows)
    assert len(rows) <= 40
    assert COUNTERS.search(text) and "text lag 1.5 s" in text
    for i in range(2, 8):  # the six lines the dashboard keeps, each on one row
        assert f"] line {i} kids are talking by the door and dogs are sitting there" in text
    assert "… dogs are sit" in text
    assert "■ neutral" in text  # the timeline's legend
    for lab in LABELS:
        assert re.search(rf"{lab} +[█·]+ +0\.\d\d", text), lab


@pytest.mark.parametrize("size", [(80, 16), (80, 10), (60, 8), (50, 6)])
def test_short_terminals_keep_the_counters_and_the_newest_line(size):
    width, height = size
    rows = draw(busy_dashboard(message="microphone lost: reconnecting"), width, height)
    text = " ".join(r.strip() for r in rows)  # counters may wrap on a narrow terminal
    assert len(rows) <= height, rows
    assert re.search(r"windows 40 +dropped blocks 3 +dropped windows 1", text), rows
    assert "[surprised] line 7" in text, rows
    assert "microphone lost" in text


def test_the_partial_result_gives_way_to_the_newest_tagged_line():
    rows = draw(busy_dashboard(), 80, 10)
    text = "\n".join(rows)
    assert "[surprised] line 7" in text and "dogs are sit" not in text


def test_the_timeline_keeps_the_newest_windows():
    dash = busy_dashboard()
    dash.on_event(_event(40, "angry", 0.9))
    console = Console(width=40, height=12, record=True, color_system="standard")
    console.print(dash.render())
    last_row = [r for r in console.export_text(styles=True).splitlines() if "██" in r][-1]
    assert last_row.endswith("\x1b[31m██\x1b[0m"), last_row  # the newest (angry, red) on the right
