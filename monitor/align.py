"""Words <-> emotion windows, by time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.events import Event, Word


def words_in_window(words: Iterable[Word], start_s: float, end_s: float) -> tuple[Word, ...]:
    """The words whose midpoint lies in [start_s, end_s)."""
    return tuple(w for w in words if start_s <= w.mid_s < end_s)


def dominant_emotion(events: Sequence[Event]) -> tuple[str, float] | None:
    """The label with the highest mean probability over ``events`` and that mean, or None if empty."""
    if not events:
        return None
    labels = list(events[0].probabilities)
    means = {lab: sum(e.probabilities[lab] for e in events) / len(events) for lab in labels}
    best = max(means, key=means.__getitem__)
    return best, means[best]
