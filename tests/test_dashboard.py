"""The dashboard renders all its parts (through Rich's recording console)."""

from rich.console import Console

from monitor.events import Event
from monitor.labels import LABELS
from monitor.pipeline import TranscriptLine
from monitor.sinks.dashboard import Dashboard, Status


def _event(i, label, p=0.6):
    probs = {lab: (p if lab == label else (1 - p) / 7) for lab in LABELS}
    return Event(i, i, 3.0 * i, 3.0 * i + 3, 1_700_000_000 + 3 * i, label, p, probs, latency_s=0.012)


def test_renders_every_part():
    status = Status(level_dbfs=-23.5, in_speech=True, position_s=12.5, windows=3, dropped_blocks=2,
                    dropped_windows=1, latency_median_ms=12, latency_p95_ms=30, transcriber_lag_s=1.5,
                    skipped_utterances=1, partial="dogs are sit")
    dash = Dashboard(LABELS, "pulse (16000 Hz, 1 ch)", "emotion.tflite", "pocketsphinx", lambda: status)
    for i, lab in enumerate(["angry", "sad", "happy"]):
        dash.on_event(_event(i, lab))
    dash.on_transcript(TranscriptLine(0, 0.0, 2.5, "kids are talking by the door", "angry"))
    console = Console(record=True, width=160, color_system="standard")
    console.print(dash.render())
    styled = console.export_text(clear=False, styles=True)
    text = console.export_text()
    assert "device: pulse" in text and "emotion.tflite" in text and "pocketsphinx" in text
    assert "now: HAPPY 60%" in text  # the current emotion
    for lab in LABELS:  # a bar for every label (and the legend)
        assert text.count(lab) >= 2, lab
    assert "timeline" in text and text.count("██") >= 3
    assert "-23.5 dBFS" in text and "SPEECH" in text  # level and VAD state
    assert "[angry] kids are talking by the door" in text  # transcript tagged with its emotion
    assert "… dogs are sit" in text  # partial result
    assert "dropped blocks 2" in text and "dropped windows 1" in text and "12/30 ms" in text
    assert "text lag 1.5 s" in text and "skipped utterances 1" in text
    assert "\x1b[31m██" in styled and "\x1b[34m██" in styled  # angry and sad blocks in their colours


def test_empty_state_renders():
    dash = Dashboard(LABELS, "file x", "m", "off")
    console = Console(record=True, width=100)
    console.print(dash.render())
    text = console.export_text()
    assert "waiting for speech" in text and "no windows yet" in text and "no transcript yet" in text


def test_speakers_beside_transcript_lines_and_per_speaker_summary():
    dash = Dashboard(LABELS, "file x", "m", "pocketsphinx")
    for i, (lab, spk) in enumerate([("angry", "S1"), ("angry", "S1"), ("sad", "S1"), ("calm", "S2"), ("calm", "S3")]):
        dash.on_event(_event(i, lab).with_speaker(spk))
    dash.on_transcript(TranscriptLine(0, 0.0, 2.5, "kids are talking by the door", "angry", "S1"))
    dash.on_transcript(TranscriptLine(3, 9.0, 11.5, "dogs are sitting by the door", "calm", "S3"))
    dash.resolve = lambda label: "S2" if label == "S3" else label  # S3 was merged into S2
    console = Console(record=True, width=160)
    console.print(dash.render())
    text = console.export_text()
    assert "S1 [angry] kids are talking by the door" in text
    assert "S2 [calm] dogs are sitting by the door" in text  # shown under the surviving label
    assert "speakers" in text and "S3" not in text
    assert "S1  3 windows  angry 67%  sad 33%" in text and "S2  2 windows  calm 100%" in text
    assert "speakers" not in _render_without_speakers()


def _render_without_speakers() -> str:
    dash = Dashboard(LABELS, "file x", "m", "off")
    dash.on_event(_event(0, "sad"))
    console = Console(record=True, width=160)
    console.print(dash.render())
    return console.export_text()
