"""Headless output: one plain line per window (for --no-dashboard and services)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TextIO

from monitor.events import Event


def format_event(event: Event) -> str:
    clock = datetime.fromtimestamp(event.wall_start).strftime("%H:%M:%S")
    line = (
        f"{clock} {event.start_s:8.2f}-{event.end_s:8.2f}s  {event.emotion:<9} {event.confidence:4.2f}"
        f"  arousal {event.arousal:+.2f} valence {event.valence:+.2f}  ({event.latency_s * 1000:.0f} ms)"
    )
    if event.speaker:
        line += f"  {event.speaker}"
    if event.text:
        line += f"  | {event.text}"
    return line


class ConsoleLines:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def handle(self, event: Event) -> None:
        try:
            self.stream.write(format_event(event) + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass

    def close(self) -> None:
        pass
