"""Online clustering of speaker embeddings into speakers S1, S2, ... (per file, and a live session's first windows).

- The first embedding long enough (``min_embed_s``) opens S1.
- Each next one goes to the nearest speaker if its distance from that speaker's centre is within
  ``threshold``; farther from every speaker, it opens a new one, unless ``max_speakers`` are open: then it
  takes the nearest.
- Centroids are running means of their embeddings (an embedding counts once, normalised).
- Distances are corrected for how many embeddings a centroid holds. One speaker's embeddings scatter around
  a centre (model: centre + independent noise of variance ``spread`` relative to it), so the cosine between a
  new embedding and the mean of n of them is lower than its cosine with the centre by a factor
  ``sqrt(1 + spread / n)``, and the cosine between two single embeddings by ``1 + spread``. Uncorrected, a
  voice looks farther from a young speaker (one embedding: two noises) than from an old one. With a
  correction both the assignment and the merge compare estimated centres. It is off by default (``spread``
  0): it did not do better on the tuning conversations (models/SPEAKERS.md).
- Merging: after every update, two speakers whose centroids have come within ``merge_threshold`` of each other
  become one. The older label (the smaller number) survives and takes the other's embeddings; the younger
  label is retired and never reused, so a label always means the same voice and numbers never shift. Rows
  already written (live CSV) keep the retired label; ``resolve`` maps it to the survivor (batch scoring
  relabels a file's windows with it before writing them).
- Folding: a speaker still holding fewer than ``min_windows`` windows ``settle_windows`` windows after it
  opened is folded into its nearest speaker, like a merge (the label is retired). Most wrong speakers are one
  odd window of a known voice (a shout, a laugh); a new voice that keeps talking passes the bar at once.
- Short windows (audio under ``min_embed_s``) give noisy embeddings: they take the nearest known speaker
  without moving its centroid and never open a speaker; before any speaker exists they stay unlabelled ("").

Per file (batch scoring) the labels written are those of a second pass over all the file's windows
(monitor/speakers/recluster.py, ``recluster_threshold``; above ``recluster_max_windows`` long windows the live
pass over the file, then merges: monitor/speakers/turns.py, ``file_labels``); live, this clustering names the first
``live_warm_windows`` long windows and a second pass over the session so far the rest (monitor/speakers/live.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SpeakerOptions:
    enabled: bool = True
    threshold: float = 0.70  # distance from every speaker's centre beyond which a voice opens a new speaker
    merge_threshold: float = 0.60  # two speakers whose centres come closer than this merge
    max_speakers: int = 8
    min_embed_s: float = 0.8  # shorter windows take the nearest speaker, never open or move one
    spread: float = 0.0  # within-speaker variance of the embeddings (sigma^2), see the module's docstring; 0: off
    lda: bool = True  # compare voices in the LDA speaker space (SpeakerEncoder.vector), not raw embeddings
    min_windows: int = 2  # a speaker with fewer windows than this ...
    settle_windows: int = 8  # ... this many windows after it opened is folded into its nearest; 0: never
    recluster_threshold: float = 0.95  # per file (batch): clustering of all windows at the end; 0: online labels
    recluster_min_windows: int = 3  # per file: a group of the second pass with fewer windows joins its nearest
    recluster_max_windows: int = 18  # per file: above this many long windows, the live pass + merges; 0: never
    recluster_refine_iterations: int = 10  # per file: k-means rounds from the labels found (at most); 0: none
    live_recluster_threshold: float = 1.0  # live: each long window clusters the session so far; 0: online only
    live_warm_windows: int = 6  # live: the first long windows are named by the online clustering
    live_min_windows: int = 3  # live: a group with fewer windows joins its nearest, once it is no longer young:
    live_settle_windows: int = 4  # its first window more than this many long windows ago
    run_voices: bool = True  # score: the survey's files grouped by voice (monitor.inference.run_voices)

    def validate(self) -> None:
        if not 0 < self.threshold < 2:
            raise ValueError("[speakers] threshold must be between 0 and 2 (a cosine distance)")
        if not 0 <= self.merge_threshold < self.threshold:
            raise ValueError("[speakers] merge_threshold must be >= 0 and below threshold")
        if self.max_speakers < 1:
            raise ValueError("[speakers] max_speakers must be >= 1")
        if self.spread < 0:
            raise ValueError("[speakers] spread must be >= 0")
        if self.min_embed_s < 0:
            raise ValueError("[speakers] min_embed_s must be >= 0")
        if self.min_windows < 1 or self.settle_windows < 0:
            raise ValueError("[speakers] min_windows must be >= 1 and settle_windows >= 0")
        if self.recluster_max_windows < 0:
            raise ValueError("[speakers] recluster_max_windows must be >= 0 (0: no limit)")
        if self.recluster_refine_iterations < 0:
            raise ValueError("[speakers] recluster_refine_iterations must be >= 0 (0: no refinement)")
        if self.recluster_min_windows < 1:
            raise ValueError("[speakers] recluster_min_windows must be >= 1")
        if not 0 <= self.recluster_threshold < 2:
            raise ValueError("[speakers] recluster_threshold must be between 0 (off) and 2 (a cosine distance)")
        if not 0 <= self.live_recluster_threshold < 2:
            raise ValueError("[speakers] live_recluster_threshold must be between 0 (off) and 2 (a cosine distance)")
        if self.live_min_windows < 1:
            raise ValueError("[speakers] live_min_windows must be >= 1")
        if self.live_warm_windows < 0 or self.live_settle_windows < 0:
            raise ValueError("[speakers] live_warm_windows and live_settle_windows must be >= 0")


@dataclass
class _Speaker:
    label: str
    total: np.ndarray  # sum of its (unit) embeddings
    count: int

    @property
    def centroid(self) -> np.ndarray:
        return self.total / max(float(np.linalg.norm(self.total)), 1e-12)


@dataclass
class SpeakerTracker:
    """State of one file or session. ``assign`` returns the label for one embedding."""

    options: SpeakerOptions = field(default_factory=SpeakerOptions)
    speakers: list[_Speaker] = field(default_factory=list)
    merged: dict[str, str] = field(default_factory=dict)  # retired label -> the label it merged into
    opened: int = 0  # labels handed out so far (S1..S<opened>)
    seen: int = 0  # windows assigned so far
    born: dict[str, int] = field(default_factory=dict)  # label -> ``seen`` when it opened

    def resolve(self, label: str) -> str:
        """The label that ``label`` stands for now (itself, or the survivor of the merges it went through)."""
        while label in self.merged:
            label = self.merged[label]
        return label

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.speakers]

    @property
    def count(self) -> int:
        """Speakers found so far (after merges)."""
        return len(self.speakers)

    def _shrink(self, count: np.ndarray | int) -> np.ndarray:
        """How much a mean of ``count`` embeddings lowers cosine similarities: ``sqrt(1 + spread / count)``."""
        return np.sqrt(1.0 + self.options.spread / np.asarray(count, dtype=np.float64))

    def _nearest(self, emb: np.ndarray) -> tuple[int, float]:
        """The nearest speaker and the distance of ``emb`` from its estimated centre (see ``spread``)."""
        counts = np.array([s.count for s in self.speakers])
        sims = np.array([float(np.dot(s.centroid, emb)) for s in self.speakers]) * self._shrink(counts)
        best = int(np.argmax(sims))
        return best, 1.0 - float(sims[best]) * float(self._shrink(1))

    def assign(self, emb: np.ndarray | None, duration_s: float) -> str:
        self.seen += 1
        label = self._assign(emb, duration_s)
        self._fold()
        return self.resolve(label) if label else ""

    def _assign(self, emb: np.ndarray | None, duration_s: float) -> str:
        if emb is None:
            return ""
        emb = np.asarray(emb, dtype=np.float64)
        short = duration_s < self.options.min_embed_s
        if not self.speakers:
            return "" if short else self._open(emb)
        best, dist = self._nearest(emb)
        if short:
            return self.speakers[best].label
        if dist > self.options.threshold and len(self.speakers) < self.options.max_speakers:
            return self._open(emb)
        spk = self.speakers[best]
        spk.total = spk.total + emb
        spk.count += 1
        label = spk.label
        self._merge()
        return label

    def _open(self, emb: np.ndarray) -> str:
        self.opened += 1
        label = f"S{self.opened}"
        self.speakers.append(_Speaker(label, emb.copy(), 1))
        self.born[label] = self.seen
        return label

    def _absorb(self, keep: _Speaker, drop: _Speaker) -> None:
        keep.total = keep.total + drop.total
        keep.count += drop.count
        self.merged[drop.label] = keep.label
        self.speakers.remove(drop)

    def _fold(self) -> None:
        """Fold speakers that stayed too small (see the module's docstring) into their nearest."""
        settle = self.options.settle_windows
        if settle <= 0:
            return
        for spk in list(self.speakers):
            young = self.seen - self.born.get(spk.label, self.seen) < settle
            if len(self.speakers) > 1 and spk.count < self.options.min_windows and not young:
                others = [o for o in self.speakers if o is not spk]
                self._absorb(max(others, key=lambda o: float(o.centroid @ spk.centroid)), spk)

    def _merge(self) -> None:
        while len(self.speakers) > 1:
            cents = np.stack([s.centroid for s in self.speakers])
            shrink = self._shrink(np.array([s.count for s in self.speakers]))
            dist = 1.0 - (cents @ cents.T) * np.outer(shrink, shrink)
            np.fill_diagonal(dist, np.inf)
            i, j = np.unravel_index(int(np.argmin(dist)), dist.shape)
            if dist[i, j] >= self.options.merge_threshold:
                return
            keep, drop = sorted((int(i), int(j)))  # speakers stay in label order: the older survives
            self._absorb(self.speakers[keep], self.speakers[drop])
