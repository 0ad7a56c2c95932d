"""Word error rate: (substitutions + deletions + insertions) / reference words, by edit distance."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_TOKEN = re.compile(r"[a-z0-9']+")


def normalize(text: str) -> list[str]:
    """Lower-case words, punctuation dropped."""
    return _TOKEN.findall(text.lower())


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_error_rate(ref: str, hyp: str) -> float:
    r, h = normalize(ref), normalize(hyp)
    if not r:
        return 0.0 if not h else 1.0
    return edit_distance(r, h) / len(r)


def corpus_wer(pairs: Iterable[tuple[str, str]]) -> tuple[float, int, int]:
    """WER over many (reference, hypothesis) pairs: total errors / total reference words, and both counts."""
    errors = words = 0
    for ref, hyp in pairs:
        r, h = normalize(ref), normalize(hyp)
        errors += edit_distance(r, h)
        words += len(r)
    return (errors / words if words else 0.0), errors, words
