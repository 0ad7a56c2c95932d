"""Allowed ranges of the numeric settings, and the command-line flag that sets each (if any).

A value outside its range (``hop_s = 0.0001`` makes thousands of windows, ``--stdin-rate 1`` a 16000x
resampler) is refused with one line naming the key, its flag and the range.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from monitor.errors import ConfigError

# (section, key) -> (lowest, highest), both allowed.
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("audio", "block_ms"): (5, 200),
    ("audio", "ring_seconds"): (1, 600),
    ("audio", "stdin_rate"): (8000, 192000),
    ("audio", "stdin_channels"): (1, 32),
    ("vad", "margin_db"): (0, 40),
    ("vad", "quiet_after_loud_db"): (0, 60),
    ("vad", "steady_db"): (0, 20),
    ("vad", "floor_window_s"): (0.5, 60),
    ("vad", "min_level_dbfs"): (-150, 0),
    ("vad", "pre_pad_ms"): (0, 1000),
    ("vad", "post_pad_ms"): (0, 1000),
    ("vad", "hangover_ms"): (90, 3000),
    ("windows", "hop_s"): (0.5, 30),
    ("windows", "min_speech_s"): (0.1, 3),
    ("windows", "short_speech_s"): (0, 3),
    ("windows", "max_utterance_s"): (3, 600),
    ("model", "threads"): (1, 64),
    ("transcriber", "max_backlog_s"): (1, 3600),
    ("transcriber", "text_wait_s"): (0, 600),
    ("output", "refresh_hz"): (0.2, 30),
    ("output", "history"): (1, 1000),
    ("pipeline", "queue_windows"): (1, 1000),
}

FLAGS: dict[tuple[str, str], str] = {
    ("audio", "stdin_rate"): "--stdin-rate",
    ("audio", "stdin_channels"): "--stdin-channels",
    ("windows", "hop_s"): "--hop",
    ("model", "threads"): "--threads",
}


def _fmt(x: float) -> str:
    return f"{x:g}"


def check_ranges(cfg: Any) -> None:
    """Raise ConfigError for the first numeric setting of ``cfg`` (a Config) outside its range."""
    for section in fields(cfg):
        values = getattr(cfg, section.name)
        for f in fields(values):
            value = getattr(values, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            where = f"[{section.name}] {f.name}"
            flag = FLAGS.get((section.name, f.name))
            if flag:
                where += f" ({flag})"
            if not math.isfinite(value):
                raise ConfigError(f"config: {where} must be a finite number (got {value})")
            bounds = RANGES.get((section.name, f.name))
            if bounds and not bounds[0] <= value <= bounds[1]:
                raise ConfigError(
                    f"config: {where} must be between {_fmt(bounds[0])} and {_fmt(bounds[1])} (got {_fmt(value)})"
                )
