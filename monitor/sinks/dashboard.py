"""The Rich live dashboard. It renders on its own clock (Rich's refresh thread), from a snapshot of state
that the worker updates; rendering never blocks the pipeline.

Parts: a header (device, model, transcriber, elapsed time), the current emotion with bars for all labels,
a rolling timeline of recent windows as coloured blocks, the input level and VAD state, transcript lines
tagged with their speaker (with speaker turns on) and emotion, a per-speaker emotion summary, and counters
(windows, dropped blocks and windows, latency, transcriber lag).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from monitor.events import Event
from monitor.speakers.summary import SpeakerSummary

COLOURS: dict[str, str] = {
    "neutral": "grey70",
    "calm": "cyan",
    "happy": "yellow",
    "sad": "blue",
    "angry": "red",
    "fearful": "magenta",
    "disgust": "green",
    "surprised": "bright_white",
}


def colour(label: str) -> str:
    return COLOURS.get(label, "white")


@dataclass
class Status:
    """What the dashboard shows besides events; filled by a callable the CLI provides."""

    level_dbfs: float = -120.0
    in_speech: bool = False
    position_s: float = 0.0
    windows: int = 0
    dropped_blocks: int = 0
    dropped_windows: int = 0
    latency_median_ms: float = 0.0
    latency_p95_ms: float = 0.0
    transcriber_lag_s: float = 0.0
    skipped_utterances: int = 0
    partial: str = ""
    message: str = ""


class Dashboard:
    def __init__(
        self,
        labels: Sequence[str],
        device: str,
        model: str,
        transcriber: str,
        status: Callable[[], Status] | None = None,
        history: int = 40,
        transcript_lines: int = 6,
    ) -> None:
        self.labels = list(labels)
        self.device = device
        self.model = model
        self.transcriber = transcriber
        self.status = status or Status
        self._events: deque[Event] = deque(maxlen=history)
        self._lines: deque[tuple[str, str, float, str]] = deque(maxlen=transcript_lines)
        self._speakers = SpeakerSummary()
        self.resolve: Callable[[str], str] = str  # maps a merged speaker's label to the survivor's
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._live: Live | None = None

    # --- fed by the pipeline --------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)
            self._speakers.add(event)

    def on_transcript(self, line) -> None:  # monitor.pipeline.TranscriptLine
        with self._lock:
            self._lines.append((line.text, line.emotion, line.start_s, getattr(line, "speaker", "")))

    # --- rendering ------------------------------------------------------------------------------
    def _header(self) -> Text:
        elapsed = time.monotonic() - self._started
        t = Text()
        t.append("voice-monitor", style="bold")
        t.append(f"  device: {self.device}  model: {self.model}  text: {self.transcriber}  ")
        t.append(f"{int(elapsed // 60):02d}:{int(elapsed % 60):02d}", style="dim")
        return t

    def _current(self, last: Event | None) -> Panel:
        table = Table.grid(padding=(0, 1))
        table.add_column(width=10)
        table.add_column(width=32)
        table.add_column(justify="right", width=5)
        probs = last.probabilities if last else {}
        for lab in self.labels:
            p = probs.get(lab, 0.0)
            n = int(round(p * 30))
            table.add_row(Text(lab, style=colour(lab)), Text("█" * n + "·" * (30 - n), style=colour(lab)), f"{p:4.2f}")
        if last:
            title = Text.assemble(("now: ", "bold"), (last.emotion.upper(), f"bold {colour(last.emotion)}"),
                                  f" {last.confidence:.0%}  ({last.start_s:.1f}-{last.end_s:.1f} s)")
        else:
            title = Text("now: waiting for speech", style="dim")
        return Panel(table, title=title, title_align="left")

    def _timeline(self, events: list[Event]) -> Panel:
        line = Text()
        for e in events:
            line.append("██", style=colour(e.emotion))
        if not events:
            line.append("(no windows yet)", style="dim")
        legend = Text()
        for lab in self.labels:
            legend.append("■ ", style=colour(lab))
            legend.append(f"{lab}  ")
        return Panel(Group(line, legend), title="timeline (oldest → newest)", title_align="left")

    def _level(self, st: Status) -> Text:
        db = max(-80.0, min(0.0, st.level_dbfs))
        n = int(round((db + 80) / 80 * 30))
        t = Text("level ")
        t.append("▮" * n + "▯" * (30 - n), style="green" if st.in_speech else "dim")
        t.append(f" {st.level_dbfs:6.1f} dBFS  ")
        t.append("● SPEECH" if st.in_speech else "○ silence", style="bold green" if st.in_speech else "dim")
        t.append(f"   stream {st.position_s:7.1f} s")
        return t

    def _transcript(self, st: Status) -> Panel:
        body = Text()
        with self._lock:
            lines = list(self._lines)
        for text, emo, start, speaker in lines:
            body.append(f"{start:7.1f}s ", style="dim")
            if speaker:
                body.append(f"{self.resolve(speaker)} ", style="bold")
            body.append(f"[{emo or '?'}] ", style=f"bold {colour(emo)}")
            body.append(text + "\n")
        if st.partial:
            body.append("… " + st.partial + "\n", style="italic dim")
        if not lines and not st.partial:
            body.append("(no transcript yet)", style="dim")
        return Panel(body, title="transcript", title_align="left")

    def _speaker_panel(self) -> Panel | None:
        with self._lock:
            rows = self._speakers.rows(self.resolve)
        if not rows:
            return None
        table = Table.grid(padding=(0, 2))
        for label, n, shares in rows:
            mix = Text()
            for emo, share in shares[:4]:
                mix.append(f"{emo} {share:.0%}  ", style=colour(emo))
            table.add_row(Text(label, style="bold"), f"{n} windows", mix)
        return Panel(table, title="speakers", title_align="left")

    def _counters(self, st: Status) -> Text:
        t = Text()
        t.append(f"windows {st.windows}  ")
        t.append(f"dropped blocks {st.dropped_blocks}  ", style="bold red" if st.dropped_blocks else "")
        t.append(f"dropped windows {st.dropped_windows}  ", style="bold red" if st.dropped_windows else "")
        t.append(f"latency {st.latency_median_ms:.0f}/{st.latency_p95_ms:.0f} ms (median/p95)  ")
        t.append(f"text lag {st.transcriber_lag_s:.1f} s", style="bold yellow" if st.transcriber_lag_s > 5 else "")
        if st.skipped_utterances:
            t.append(f"  skipped utterances {st.skipped_utterances}", style="bold yellow")
        if st.message:
            t.append(f"\n{st.message}", style="bold yellow")
        return t

    def render(self) -> Group:
        st = self.status()
        with self._lock:
            events = list(self._events)
        parts = [
            self._header(),
            self._current(events[-1] if events else None),
            self._timeline(events),
            self._level(st),
            self._transcript(st),
            self._speaker_panel(),
            self._counters(st),
        ]
        return Group(*(p for p in parts if p is not None))

    def start(self, console: Console | None = None, refresh_hz: float = 4.0) -> None:
        self._live = Live(console=console, get_renderable=self.render, refresh_per_second=refresh_hz,
                          redirect_stdout=False, redirect_stderr=False)
        self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
