"""Per-speaker emotion summary (dashboard panel, end-of-run lines) and an utterance's speaker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from monitor.events import Event


def utterance_speaker(events: Iterable[Event], resolve: Callable[[str], str] = str) -> str:
    """The speaker of most of an utterance's windows ("" if none has one)."""
    counts = Counter(resolve(e.speaker) for e in events if e.speaker)
    return counts.most_common(1)[0][0] if counts else ""


@dataclass
class SpeakerSummary:
    """Window counts per speaker and emotion. Labels of merged speakers are resolved when read."""

    emotions: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        if event.speaker:
            self.emotions.setdefault(event.speaker, Counter())[event.emotion] += 1

    def rows(self, resolve: Callable[[str], str] = str) -> list[tuple[str, int, list[tuple[str, float]]]]:
        """(speaker, windows, [(emotion, share), ...] most frequent first), speakers in label order."""
        merged: dict[str, Counter[str]] = {}
        for label, counts in self.emotions.items():
            merged.setdefault(resolve(label), Counter()).update(counts)
        out = []
        for label in sorted(merged, key=lambda s: int(s[1:]) if s[1:].isdigit() else 0):
            total = sum(merged[label].values())
            out.append((label, total, [(emo, n / total) for emo, n in merged[label].most_common()]))
        return out

    def lines(self, resolve: Callable[[str], str] = str, top: int = 3) -> list[str]:
        return [
            f"{label}: {n} windows, " + ", ".join(f"{emo} {share:.0%}" for emo, share in shares[:top])
            for label, n, shares in self.rows(resolve)
        ]
