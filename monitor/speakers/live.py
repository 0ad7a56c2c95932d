"""Live speaker turns: the online clustering for the first windows, then a second pass over the session so far.

A live window's speaker must be named when it arrives. The online clustering (monitor/speakers/cluster.py)
names it from running means; per file, the second pass over all windows (monitor/speakers/recluster.py) does
better (models/SPEAKERS.md), and most of what it does better is in the later windows, where the session has
heard enough of each voice. So live:

- the first ``live_warm_windows`` long windows (at least ``min_embed_s``) are named by the online clustering,
  which is the better of the two while little has been heard;
- from then on each long window is named by a complete-linkage clustering of the session's last
  ``RECENT_WINDOWS`` (30) long windows, itself included (``live_recluster_threshold``), groups of fewer than
  ``live_min_windows`` windows folded into their nearest unless they are young (their first window among the
  last ``live_settle_windows``: a new voice is given time to be heard again). Only the recent windows: with
  many windows complete linkage splits one voice (a group's widest pair grows with its size), and on long
  conversations clustering everything heard did worse than the online clustering (models/SPEAKERS.md);
- labels stay stable: each group of that clustering takes the label most of its earlier windows were given
  (the largest overlaps first, one label per group). A group no label is left for (a voice split off, a voice
  back after more than 30 windows, a new voice) takes the label whose long windows' mean lies nearest its
  centre if that is within ``threshold`` (the online clustering's "same voice"), else opens the next label,
  never reused; a label that no group takes at this step (a voice that now looks like another's, a folded
  one) is merged into the label of the group that holds most of its windows, so rows already written keep it
  and ``resolve`` maps it to that label, like the online clustering's merges. Unlike those, such a merge is
  undone when a later step gives the label a group again (the early clustering of a few windows joins
  voices that more windows tell apart): ``resolve`` always gives the session's current view, and ``count``
  the labels in use now;
- short windows take the label of the nearest group's centre, and open nothing; with ``max_speakers`` labels in
  use, a new group takes the label of the nearest named group instead of opening one.

Cost: the clustering runs once per long window on at most ``RECENT_WINDOWS`` windows, well under 1 ms of CPU
(benchmarks/bench_speakers.py), against about 17 ms for the embedding; the 20 ms per 3 s utterance aim covers
both. Only the last ``RECENT_WINDOWS`` vectors and one running sum per label are kept, so memory stays
bounded on endless sessions.
``live_recluster_threshold = 0`` keeps the online clustering alone.

``replay`` runs a file's windows through it at once: ``voice-monitor score`` labels files of more than
``recluster_max_windows`` long windows that way (monitor/speakers/turns.py, ``file_labels``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.speakers.cluster import SpeakerOptions, SpeakerTracker
from monitor.speakers.recluster import centres, complete_linkage

RECENT_WINDOWS = 30  # long windows clustered per step: the most recent


def _number(label: str) -> int:
    return int(label[1:]) if label[1:].isdigit() else 0


def fold_settled(x: np.ndarray, group: np.ndarray, first: np.ndarray, min_windows: int, young_after: int) -> np.ndarray:
    """Groups of fewer than ``min_windows`` rows joined to the nearest other group's centre (smallest first), except
    young ones: those whose first row has a position (``first``, per row) of ``young_after`` or later. Returns
    renumbered groups (0..k-1)."""
    group = group.copy()
    while True:
        ids, counts = np.unique(group, return_counts=True)
        if len(ids) < 2:
            break
        born = np.array([int(first[group == g].min()) for g in ids])
        small = np.nonzero((counts < min_windows) & (born < young_after))[0]
        if not len(small):
            break
        drop = ids[small[int(np.argmin(counts[small]))]]
        sums = centres(x, group)[ids] @ x[group == drop].sum(axis=0)
        sums[ids == drop] = -np.inf
        group[group == drop] = ids[int(np.argmax(sums))]
    return np.unique(group, return_inverse=True)[1]


@dataclass
class LiveTracker:
    """Speaker labels of one live session (the same ``assign``/``resolve`` as SpeakerTracker)."""

    options: SpeakerOptions = field(default_factory=SpeakerOptions)
    online: SpeakerTracker = field(init=False)
    vectors: list[np.ndarray] = field(default_factory=list)  # the last RECENT_WINDOWS long windows
    given: list[str] = field(default_factory=list)  # the label each of them was given
    order: list[int] = field(default_factory=list)  # and its position among the session's long windows
    merged: dict[str, str] = field(default_factory=dict)  # retired label -> the label it merged into
    opened: int = 0  # labels handed out so far
    heard: int = 0  # long windows so far
    centres: np.ndarray | None = None  # of the last clustering's groups, for short windows
    centre_labels: list[str] = field(default_factory=list)
    sums: dict[str, np.ndarray] = field(default_factory=dict)  # label as given -> sum of its long windows' vectors

    def __post_init__(self) -> None:
        self.online = SpeakerTracker(self.options)

    def resolve(self, label: str) -> str:
        seen = {label}
        while label in self.merged and self.merged[label] not in seen:
            label = self.merged[label]
            seen.add(label)
        return label

    @property
    def count(self) -> int:
        """Speakers found so far: labels handed out and not merged into another."""
        return self.opened - len(self.merged)

    def assign(self, emb: np.ndarray | None, duration_s: float) -> str:
        if emb is None:
            return ""
        long = duration_s >= self.options.min_embed_s
        if self.heard < self.options.live_warm_windows or (not long and self.centres is None):
            label = self.online.assign(emb, duration_s)
            self.merged.update(self.online.merged)
            self.opened = self.online.opened
            if long:
                self._keep(np.asarray(emb, dtype=np.float64), label)
                self._count(self.vectors[-1], label)
            return label
        emb = np.asarray(emb, dtype=np.float64)
        if not long:
            assert self.centres is not None
            return self.resolve(self.centre_labels[int(np.argmax(self.centres @ emb))])
        self._keep(emb, "")
        label = self._second_pass()
        self.given[-1] = label
        self._count(emb, label)
        return label

    def _count(self, emb: np.ndarray, label: str) -> None:
        self.sums[label] = self.sums[label] + emb if label in self.sums else emb.copy()

    def _keep(self, emb: np.ndarray, label: str) -> None:
        self.vectors.append(emb)
        self.given.append(label)
        self.order.append(self.heard)
        self.heard += 1
        if len(self.vectors) > RECENT_WINDOWS:
            del self.vectors[0], self.given[0], self.order[0]

    def _known(self, centre: np.ndarray) -> str | None:
        """The label in use whose long windows' mean is nearest ``centre``, if within ``threshold``."""
        sums: dict[str, np.ndarray] = {}
        for label, total in self.sums.items():
            label = self.resolve(label)
            sums[label] = sums[label] + total if label in sums else total
        if not sums:
            return None
        labels = list(sums)
        means = np.stack([sums[k] / max(float(np.linalg.norm(sums[k])), 1e-12) for k in labels])
        sims = means @ (centre / max(float(np.linalg.norm(centre)), 1e-12))
        best = int(np.argmax(sims))
        return labels[best] if 1.0 - float(sims[best]) <= self.options.threshold else None

    def _core(self) -> list[int]:
        """Indices (into ``vectors``) of the windows clustered: the ``RECENT_WINDOWS`` most recent (all kept)."""
        return list(range(len(self.vectors)))

    def _second_pass(self) -> str:
        """Cluster the session's long windows (the newest included), map the groups to labels, return the newest's."""
        o = self.options
        core = self._core()
        x = np.stack([self.vectors[i] for i in core])
        first = np.array([self.order[i] for i in core])
        group = fold_settled(
            x, complete_linkage(x, o.live_recluster_threshold), first, o.live_min_windows,
            self.heard - o.live_settle_windows,
        )
        labels = [self.given[i] for i in core[:-1]]  # as given (the newest has none yet)
        overlap: dict[tuple[int, str], int] = {}
        for g, label in zip(group[:-1].tolist(), labels, strict=True):
            overlap[(g, label)] = overlap.get((g, label), 0) + 1
        name: dict[int, str] = {}
        taken: set[str] = set()
        for (g, label), _ in sorted(overlap.items(), key=lambda kv: (-kv[1], _number(kv[0][1]))):
            if g not in name and label not in taken:
                name[g] = label
                taken.add(label)
        for label in taken:  # a label merged at an earlier step that a group carries again is back
            self.merged.pop(label, None)
        for label in sorted({lab for _, lab in overlap} - taken, key=_number):
            g = max((g for g, lab in overlap if lab == label), key=lambda g, lab=label: overlap[(g, lab)])
            if g in name:  # a voice that now looks like another's: its rows resolve to that one's label
                self.merged[label] = name[g]
        newest = int(group[-1])
        self.centres = centres(x, group)
        if newest not in name and name and self.count >= self.options.max_speakers:  # no more labels: the nearest
            near = max(name, key=lambda g: float(self.centres[g] @ self.centres[newest]))
            name[newest] = name[near]
        elif newest not in name:
            known = self._known(self.centres[newest])  # a voice heard before, split off or come back
            if known is not None:
                name[newest] = known
            else:
                self.opened += 1
                name[newest] = f"S{self.opened}"
        for g in range(len(self.centres)):  # a group whose labels all went to larger groups: its main one
            if g not in name:
                main = max((lab for h, lab in overlap if h == g), key=lambda lab, g=g: overlap[(g, lab)])
                name[g] = self.resolve(main)
        self.centre_labels = [name[g] for g in range(len(self.centres))]
        return name[newest]


def replay(
    vectors: Sequence[np.ndarray | None], durations: Sequence[float], options: SpeakerOptions
) -> list[str]:
    """The labels a live session would give a file's windows heard in order (LiveTracker; the online clustering
    alone with ``live_recluster_threshold`` 0), each resolved as at the end of the session."""
    tracker: SpeakerTracker | LiveTracker = (
        LiveTracker(options) if options.live_recluster_threshold > 0 else SpeakerTracker(options)
    )
    labels = [tracker.assign(v, d) for v, d in zip(vectors, durations, strict=True)]
    return [tracker.resolve(lab) if lab else "" for lab in labels]
