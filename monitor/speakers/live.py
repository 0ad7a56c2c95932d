"""Live speaker turns: the online clustering for the first windows, then a second pass over the session so far.

A live window's speaker must be named when it arrives. The online clustering (monitor/speakers/cluster.py)
names it from running means; per file, the second pass over all windows (monitor/speakers/recluster.py) does
better (models/SPEAKERS.md), and most of what it does better is in the later windows, where the session has
heard enough of each voice. So live:

- the first ``live_warm_windows`` long windows (at least ``min_embed_s``) are named by the online clustering,
  which is the better of the two while little has been heard;
- from then on each long window is named by a complete-linkage clustering of every long window of the session
  so far, itself included (``live_recluster_threshold``), groups of fewer than ``live_min_windows`` windows
  folded into their nearest unless they are young (their first window among the last
  ``live_settle_windows``: a new voice is given time to be heard again);
- labels stay stable: each group of that clustering takes the label most of its earlier windows were given
  (the largest overlaps first, one label per group); a group no label is left for opens the next label,
  which is never reused; a label that no group takes at this step (a voice that now looks like another's, a
  folded one) is merged into the label of the group that holds most of its windows, so rows already written
  keep it and ``resolve`` maps it to that label, like the online clustering's merges. Unlike those, such a
  merge is undone when a later step gives the label a group again (the early clustering of a few windows
  joins voices that more windows tell apart): ``resolve`` always gives the session's current view, and
  ``count`` the labels in use now. On the tuning conversations undoing merges scored better than keeping
  them (models/SPEAKERS.md);
- short windows take the label of the nearest group's centre, and open nothing; with ``max_speakers`` labels in
  use, a new group takes the label of the nearest named group instead of opening one.

Cost: the clustering runs once per long window on at most ``MAX_WINDOWS`` of them (the most recent
``RECENT_WINDOWS`` and evenly spaced older ones), about 1-2 ms of CPU, under the 20 ms per 3 s utterance the
encoder and clustering may take together (benchmarks/bench_speakers.py). The vectors kept are thinned past
``KEEP_WINDOWS`` (every other one of the older half dropped), so memory stays bounded on endless sessions.
``live_recluster_threshold = 0`` keeps the online clustering alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from monitor.speakers.cluster import SpeakerOptions, SpeakerTracker
from monitor.speakers.recluster import centres, complete_linkage

MAX_WINDOWS = 80  # long windows clustered at most per step
RECENT_WINDOWS = 40  # of which the most recent always
KEEP_WINDOWS = 4000  # long windows' vectors kept (48 floats each) before the older half is thinned


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
    vectors: list[np.ndarray] = field(default_factory=list)  # long windows kept (see KEEP_WINDOWS)
    given: list[str] = field(default_factory=list)  # the label each of them was given
    order: list[int] = field(default_factory=list)  # and its position among the session's long windows
    merged: dict[str, str] = field(default_factory=dict)  # retired label -> the label it merged into
    opened: int = 0  # labels handed out so far
    heard: int = 0  # long windows so far
    centres: np.ndarray | None = None  # of the last clustering's groups, for short windows
    centre_labels: list[str] = field(default_factory=list)

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
            return label
        emb = np.asarray(emb, dtype=np.float64)
        if not long:
            assert self.centres is not None
            return self.resolve(self.centre_labels[int(np.argmax(self.centres @ emb))])
        self._keep(emb, "")
        label = self._second_pass()
        self.given[-1] = label
        return label

    def _keep(self, emb: np.ndarray, label: str) -> None:
        self.vectors.append(emb)
        self.given.append(label)
        self.order.append(self.heard)
        self.heard += 1
        if len(self.vectors) > KEEP_WINDOWS:
            half = len(self.vectors) // 2
            keep = list(range(0, half, 2)) + list(range(half, len(self.vectors)))
            self.vectors = [self.vectors[i] for i in keep]
            self.given = [self.given[i] for i in keep]
            self.order = [self.order[i] for i in keep]

    def _core(self) -> list[int]:
        """Indices (into ``vectors``) of the windows clustered: all, or the recent ones and evenly spaced older."""
        n = len(self.vectors)
        if n <= MAX_WINDOWS:
            return list(range(n))
        older = np.linspace(0, n - RECENT_WINDOWS - 1, MAX_WINDOWS - RECENT_WINDOWS).round().astype(int)
        return sorted(set(older.tolist())) + list(range(n - RECENT_WINDOWS, n))

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
            self.opened += 1
            name[newest] = f"S{self.opened}"
        for g in range(len(self.centres)):  # a group whose labels all went to larger groups: its main one
            if g not in name:
                main = max((lab for h, lab in overlap if h == g), key=lambda lab, g=g: overlap[(g, lab)])
                name[g] = self.resolve(main)
        self.centre_labels = [name[g] for g in range(len(self.centres))]
        return name[newest]
