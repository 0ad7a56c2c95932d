"""Batch speaker turns: one more clustering pass over a whole file's windows, after the online pass.

Live, a window's speaker must be named when it arrives (monitor/speakers/cluster.py: online, with merges to
undo early mistakes). Per file, every window is known before anything is written, so the labels can come from
all of them at once: agglomerative clustering with complete linkage (two groups join while the farthest pair
of their windows lies within ``threshold``, cosine distance in the space the online pass compares voices in),
then groups of fewer than ``min_windows`` windows (``[speakers] recluster_min_windows``, 3) folded into the
nearest group (smallest first), then each short window (under ``min_embed_s``) given to the nearest group's
centre. Labels are S1, S2, ... in order of first appearance. The threshold and the group size are chosen on
cross-fitted tuning conversations of training/speaker_eval.py (models/SPEAKERS.md). The price of the group
size: a voice heard in only one or two windows of a file is given to another speaker (in the evaluation one
voice split into two small groups was the more frequent error).

``voice-monitor score`` uses it for files of up to ``[speakers] recluster_max_windows`` (18) long windows
(monitor/speakers/turns.py, ``file_labels``): with more, a group's widest pair grows with its size and complete
linkage splits one voice (on 80-turn conversations it never found the right number of speakers), so longer
files are labelled by the live pass and joined with ``merge_close``.
Either way the speakers found are then refined by ``refine`` (k-means started from them over the long windows,
``[speakers] recluster_refine_iterations``; turns.py ``refine_labels``).

Above ``MAX_WINDOWS`` long windows (hours of speech, with ``recluster_max_windows`` 0) the groups are found
on evenly spaced ``MAX_WINDOWS`` of them and the others take the nearest group's centre, so time and memory
stay bounded (the distance matrix is ``MAX_WINDOWS``^2 float32, 16 MB).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_WINDOWS = 2000


def complete_linkage(x: np.ndarray, threshold: float) -> np.ndarray:
    """Group index (0..k-1) of each unit row of ``x``: complete-linkage agglomeration on cosine distance, joining
    while the closest two groups' farthest pair is within ``threshold``."""
    n = len(x)
    group = np.arange(n)
    if n < 2:
        return group
    dist = (1.0 - x @ x.T).astype(np.float32)
    np.fill_diagonal(dist, np.inf)
    while True:
        flat = int(np.argmin(dist))
        i, j = divmod(flat, n)
        if not dist[i, j] <= threshold:  # also stops on inf (one group left)
            break
        i, j = min(i, j), max(i, j)
        merged = np.maximum(dist[i], dist[j])  # complete linkage: the farther of the two
        merged[i] = np.inf
        dist[i], dist[:, i] = merged, merged
        dist[j], dist[:, j] = np.inf, np.inf
        group[group == j] = i
    return np.unique(group, return_inverse=True)[1]


def centres(x: np.ndarray, group: np.ndarray) -> np.ndarray:
    sums = np.zeros((int(group.max()) + 1, x.shape[1]))
    np.add.at(sums, group, x)
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def fold_small(x: np.ndarray, group: np.ndarray, min_windows: int) -> np.ndarray:
    """Groups of fewer than ``min_windows`` rows joined to the nearest other group's centre, smallest first,
    while more than one group is left. Returns renumbered groups (0..k-1)."""
    group = group.copy()
    while True:
        ids, counts = np.unique(group, return_counts=True)
        if len(ids) < 2 or counts.min() >= min_windows:
            return np.unique(group, return_inverse=True)[1]
        small = ids[int(np.argmin(counts))]
        cents = centres(x, group)
        mean = x[group == small].sum(axis=0)
        sims = cents[ids] @ mean
        sims[ids == small] = -np.inf
        group[group == small] = ids[int(np.argmax(sims))]


def merge_close(x: np.ndarray, group: np.ndarray, threshold: float) -> np.ndarray:
    """The two groups whose centres lie closest joined, again, while that distance is within ``threshold``.
    Returns renumbered groups (0..k-1)."""
    group = np.unique(group, return_inverse=True)[1]
    while group.max() > 0:
        cents = centres(x, group)
        sims = cents @ cents.T
        np.fill_diagonal(sims, -np.inf)
        i, j = divmod(int(np.argmax(sims)), len(cents))
        if 1.0 - float(sims[i, j]) > threshold:
            break
        group = np.unique(np.where(group == max(i, j), min(i, j), group), return_inverse=True)[1]
    return group


def refine(x: np.ndarray, group: np.ndarray, min_windows: int, iterations: int) -> np.ndarray:
    """K-means started from ``group``: each unit row of ``x`` moved to its nearest group centre (the normalised mean
    of the group's rows), then groups of fewer than ``min_windows`` rows folded into their nearest (``fold_small``),
    until nothing moves or ``iterations`` rounds. Returns renumbered groups (0..k-1)."""
    group = np.unique(group, return_inverse=True)[1]
    for _ in range(iterations):
        nearest = np.argmax(x @ centres(x, group).T, axis=1)
        moved = fold_small(x, np.unique(nearest, return_inverse=True)[1], min_windows)
        if np.array_equal(moved, group):
            break
        group = moved
    return group


def long_windows(vectors: Sequence[np.ndarray | None], durations: Sequence[float], min_embed_s: float) -> list[int]:
    """The indices of the windows with an embedding and at least ``min_embed_s`` of audio: those clustered."""
    return [i for i, (v, d) in enumerate(zip(vectors, durations, strict=True)) if v is not None and d >= min_embed_s]


def recluster(
    vectors: Sequence[np.ndarray | None],
    durations: Sequence[float],
    threshold: float,
    min_windows: int = 2,
    min_embed_s: float = 0.8,
) -> list[str] | None:
    """Labels ("S1", ...; "" without an embedding) for a whole file's windows; None when no window is long
    enough to cluster (the caller keeps the online labels)."""
    long = long_windows(vectors, durations, min_embed_s)
    if not long:
        return None
    x = np.stack([np.asarray(vectors[i], dtype=np.float64) for i in long])
    sample = np.linspace(0, len(long) - 1, MAX_WINDOWS).round().astype(int) if len(long) > MAX_WINDOWS else None
    core = x if sample is None else x[sample]
    group = fold_small(core, complete_linkage(core, threshold), min_windows)
    cents = centres(core, group)
    if sample is None:
        group_of = dict(zip(long, group.tolist(), strict=True))
    else:
        group_of = {long[s]: g for s, g in zip(sample.tolist(), group.tolist(), strict=True)}
    return name_windows(vectors, group_of, cents)


def name_windows(vectors: Sequence[np.ndarray | None], group_of: dict[int, int], cents: np.ndarray) -> list[str]:
    """Every window's label: its group (``group_of``, by window index) or else the group whose centre is nearest;
    S1, S2, ... in order of first appearance, "" without a vector."""
    names: dict[int, str] = {}
    labels = []
    for i, v in enumerate(vectors):
        if v is None:
            labels.append("")
            continue
        g = group_of.get(i)
        if g is None:
            g = int(np.argmax(cents @ np.asarray(v, dtype=np.float64)))
        labels.append(names.setdefault(g, f"S{len(names) + 1}"))
    return labels
