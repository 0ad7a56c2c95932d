"""Fitting the dashboard to the terminal it has.

The parts are laid out in tiers, richest first; the first tier whose fixed parts leave room for enough
transcript is drawn. What is kept longest: the counters line (windows, dropped blocks and windows) and the newest
transcript line; what goes first: the timeline's legend and border, then the bars of every label (one line for
the current emotion instead), then the header and level line. At 120x40 everything is drawn; at 80x24 the bars,
the timeline and three transcript lines fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.text import Text

PANEL_ROWS = 2  # a Panel's top and bottom border
PANEL_COLS = 4  # a Panel's side borders and padding


@dataclass
class Tier:
    """Parts above the transcript, the transcript's form, and parts below it."""

    top: Sequence[RenderableType]
    boxed: bool  # the transcript in a titled panel, or bare lines
    min_lines: int  # fewest transcript rows this tier accepts (fewer are drawn if there are fewer)
    bottom: Sequence[RenderableType] = field(default_factory=list)


def rows(console: Console, options: ConsoleOptions, renderable: RenderableType) -> int:
    return len(console.render_lines(renderable, options.update(height=None), pad=False))


def newest_lines(console: Console, entries: Sequence[Text], width: int, budget: int) -> tuple[list[Text], int]:
    """The newest entries that fit in ``budget`` rows at ``width`` (an entry may wrap), oldest first."""
    kept: list[Text] = []
    used = 0
    for entry in reversed(entries):
        n = max(1, len(entry.wrap(console, width)))
        if used + n > budget:
            break
        kept.append(entry)
        used += n
    if not kept and entries and budget > 0:  # the newest alone is taller than the room: cut it to fit
        last = entries[-1].copy()
        last.truncate(width * budget, overflow="ellipsis")
        kept, used = [last], budget
    return kept[::-1], used


@dataclass
class Screen:
    """A renderable that picks the richest tier fitting ``options.max_height`` rows."""

    tiers: Callable[[int], Sequence[Tier]]  # the tiers for a width, richest first
    transcript: Sequence[Text]  # one Text per line, oldest first; the newest is last
    empty: Text  # shown when there is no transcript yet
    partial: Text | None = None  # the words of the utterance being decoded: shown after the lines if room is left
    title: str = "transcript"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = options.height or options.max_height
        yield self._fit(console, options, height)

    def _fit(self, console: Console, options: ConsoleOptions, height: int) -> Group:
        entries = list(self.transcript) or ([] if self.partial is not None else [self.empty])
        tiers = self.tiers(options.max_width)
        for tier in tiers:
            fixed = sum(rows(console, options, p) for p in [*tier.top, *tier.bottom])
            room = height - fixed - (PANEL_ROWS if tier.boxed else 0)
            width = options.max_width - (PANEL_COLS if tier.boxed else 0)
            if room < min(tier.min_lines, len(entries)) or room < 1:
                continue
            kept, used = newest_lines(console, entries, width, room)
            if len(kept) < min(tier.min_lines, len(entries)):
                continue
            if self.partial is not None:
                extra, _ = newest_lines(console, [self.partial], width, room - used)
                kept += extra
            body = Text("\n").join(kept)
            part = Panel(body, title=self.title, title_align="left") if tier.boxed else body
            return Group(*tier.top, part, *tier.bottom)
        # Not even the last tier fits: the newest line and what is left of the bottom parts, cut to the height.
        kept, _ = newest_lines(console, entries, options.max_width, 1)
        return Group(*kept, *tiers[-1].bottom)
