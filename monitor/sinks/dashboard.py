"""The Rich live dashboard. It renders on its own clock (Rich's refresh thread), from a snapshot of state
that the worker updates; rendering never blocks the pipeline.

Parts: a header (device, model, transcriber, elapsed time), the current emotion with bars for all labels,
a rolling timeline of recent windows as coloured blocks, the input level and VAD state, transcript lines
tagged with their speaker (with speaker turns on) and emotion, a per-speaker emotion summary, and counters
(windows, dropped blocks and windows, latency, transcriber lag).
The line naming the current emotion also gives its arousal and valence (``affect_text``).
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
from monitor.sinks.dashboard_layout import PANEL_COLS, Screen, Tier
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


def affect_text(event: Event) -> Text:
    """The window's arousal and valence, for the line that names the current emotion."""
    t = Text()
    for name, value in (("arousal", event.arousal), ("valence", event.valence)):
        t.append(f"  {name} ")
        t.append(f"{value:+.2f}", style="bold")
    return t


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
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("voice-monitor", style="bold")
        t.append(f"  device: {self.device}  model: {self.model}  text: {self.transcriber}  ")
        t.append(f"{int(elapsed // 60):02d}:{int(elapsed % 60):02d}", style="dim")
        return t

    def _now(self, last: Event | None) -> Text:
        if not last:
            return Text("now: waiting for speech", style="dim")
        t = Text.assemble(("now: ", "bold"), (last.emotion.upper(), f"bold {colour(last.emotion)}"),
                          f" {last.confidence:.0%}  ({last.start_s:.1f}-{last.end_s:.1f} s)", affect_text(last))
        if last.adapted >= 0:  # how well the monitor knows this voice yet (monitor.inference.normalise)
            t.append(f"  voice known {last.adapted:.0%}", style="dim")
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
        return Panel(table, title=self._now(last), title_align="left")

    def _current_line(self, last: Event | None) -> Text:
        """The current emotion in one line: the label and the two next most probable."""
        t = self._now(last)
        t.no_wrap, t.overflow = True, "ellipsis"
        if last:
            for lab, p in sorted(last.probabilities.items(), key=lambda kv: -kv[1])[1:3]:
                t.append(f"  {lab} {p:.2f}", style=colour(lab))
        return t

    def _blocks(self, events: list[Event], width: int) -> Text:
        line = Text(no_wrap=True, overflow="crop")
        for e in events[-max(1, width // 2):]:  # the newest that fit, newest on the right
            line.append("██", style=colour(e.emotion))
        if not events:
            line.append("(no windows yet)", style="dim")
        return line

    def _timeline(self, events: list[Event], width: int) -> Panel:
        legend = Text()
        gap = "  " if sum(len(lab) + 4 for lab in self.labels) <= width - PANEL_COLS else " "  # one row if it can
        for lab in self.labels:
            legend.append("■ ", style=colour(lab))
            legend.append(lab + gap)
        return Panel(Group(self._blocks(events, width - PANEL_COLS), legend), title="timeline (oldest → newest)",
                     title_align="left")

    def _timeline_line(self, events: list[Event], width: int) -> Text:
        t = Text(no_wrap=True, overflow="crop").append("timeline ", style="dim")
        return t.append_text(self._blocks(events, width - len(t)))

    def _level(self, st: Status, width: int = 120) -> Text:
        bar = 30 if width >= 90 else max(8, width - 52)
        db = max(-80.0, min(0.0, st.level_dbfs))
        n = int(round((db + 80) / 80 * bar))
        t = Text("level ", no_wrap=True, overflow="ellipsis")
        t.append("▮" * n + "▯" * (bar - n), style="green" if st.in_speech else "dim")
        t.append(f" {st.level_dbfs:6.1f} dBFS  ")
        t.append("● SPEECH" if st.in_speech else "○ silence", style="bold green" if st.in_speech else "dim")
        t.append(f"   stream {st.position_s:7.1f} s")
        return t

    def _transcript_lines(self) -> list[Text]:
        with self._lock:
            lines = list(self._lines)
        out = []
        for text, emo, start, speaker in lines:
            t = Text()
            t.append(f"{start:7.1f}s ", style="dim")
            if speaker:
                t.append(f"{self.resolve(speaker)} ", style="bold")
            t.append(f"[{emo or '?'}] ", style=f"bold {colour(emo)}")
            t.append(text)
            out.append(t)
        return out

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

    def _tiers(self, st: Status, events: list[Event], width: int) -> list[Tier]:
        """Richest first; each keeps the counters and at least the newest transcript line."""
        last = events[-1] if events else None
        head, level, counters = self._header(), self._level(st, width), self._counters(st)
        bars, now = self._current(last), self._current_line(last)
        timeline, timeline_line = self._timeline(events, width), self._timeline_line(events, width)
        speakers = self._speaker_panel()
        richest = [Tier([head, bars, timeline, level], boxed=True, min_lines=3, bottom=[speakers, counters])] \
            if speakers is not None else []
        return [
            *richest,
            Tier([head, bars, timeline, level], boxed=True, min_lines=3, bottom=[counters]),
            Tier([head, bars, timeline_line, level], boxed=True, min_lines=2, bottom=[counters]),
            Tier([head, now, timeline, level], boxed=True, min_lines=3, bottom=[counters]),
            Tier([head, now, timeline_line, level], boxed=True, min_lines=1, bottom=[counters]),
            Tier([head, now, timeline_line, level], boxed=False, min_lines=1, bottom=[counters]),
            Tier([now], boxed=False, min_lines=1, bottom=[counters]),
            Tier([], boxed=False, min_lines=1, bottom=[counters]),
        ]

    def render(self) -> Screen:
        """The whole dashboard, laid out for the height and width it is drawn at (see dashboard_layout)."""
        st = self.status()
        with self._lock:
            events = list(self._events)
        partial = Text("… " + st.partial, style="italic dim") if st.partial else None
        return Screen(lambda width: self._tiers(st, events, width), self._transcript_lines(),
                      Text("(no transcript yet)", style="dim"), partial=partial)

    def start(self, console: Console | None = None, refresh_hz: float = 4.0) -> None:
        self._live = Live(console=console, get_renderable=self.render, refresh_per_second=refresh_hz,
                          redirect_stdout=False, redirect_stderr=False)
        self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
