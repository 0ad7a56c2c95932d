"""Speaker turns of one file or session: window audio -> embedding -> speaker label (``S1``, ``S2``, ...)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.dsp.vad import SAMPLE_RATE
from monitor.events import Event
from monitor.speakers.cluster import SpeakerOptions, SpeakerTracker
from monitor.speakers.encoder import SpeakerEncoder
from monitor.speakers.live import LiveTracker, replay
from monitor.speakers.recluster import centres, long_windows, merge_close, name_windows, recluster, refine


def file_labels(
    vectors: Sequence[np.ndarray | None], durations: Sequence[float], options: SpeakerOptions
) -> list[str] | None:
    """The labels ``voice-monitor score`` writes for a whole file's windows ("S1", ... in order of appearance; ""
    without an embedding); None when no window is long enough to cluster (the caller keeps the online labels).

    Up to ``recluster_max_windows`` long windows (0: any number), all of them clustered at once (complete linkage,
    monitor/speakers/recluster.py). Complete linkage splits one voice when it clusters many windows (a group's
    widest pair grows with its size; on 80-turn conversations it never found the right number of speakers,
    models/SPEAKERS.md), so a longer file is heard as a live session would hear it (monitor/speakers/live.py:
    each long window named by clustering the last 30), and then speakers whose long windows' centres lie within
    ``merge_threshold`` become one (closest first), as the online clustering merges them: a voice split over
    the session is joined again at the end, which live rows already written cannot be.

    Either way the speakers found are then refined (``recluster_refine_iterations`` rounds at most; 0: not):
    k-means started from them over the long windows (``refine_labels``). The live pass names a window from the
    last 30 only, before the rest of the file is heard; the refinement gives each long window the speaker whose
    centre over the whole file is nearest."""
    o = options
    long = long_windows(vectors, durations, o.min_embed_s)
    if not long:
        return None
    if o.recluster_max_windows <= 0 or len(long) <= o.recluster_max_windows:
        labels = recluster(vectors, durations, o.recluster_threshold, o.recluster_min_windows, o.min_embed_s)
    else:
        labels = live_and_merged(vectors, durations, o)
    if labels is None or o.recluster_refine_iterations <= 0:
        return labels
    return refine_labels(vectors, durations, labels, o)


def live_and_merged(
    vectors: Sequence[np.ndarray | None], durations: Sequence[float], options: SpeakerOptions
) -> list[str]:
    """A file's labels as a live session would give them (``replay``), then speakers whose long windows' centres
    lie within ``merge_threshold`` joined (closest first); S1, S2, ... in order of appearance."""
    o = options
    labels = replay(vectors, durations, o)
    named = [i for i in long_windows(vectors, durations, o.min_embed_s) if labels[i]]
    names = sorted({labels[i] for i in named})
    same: dict[str, str] = {}  # label -> the first label of its merged group
    if named:
        x = np.stack([np.asarray(vectors[i], dtype=np.float64) for i in named])
        before = np.array([names.index(labels[i]) for i in named])
        after = merge_close(x, before, o.merge_threshold)
        first: dict[int, str] = {}
        for b, a in sorted(set(zip(before.tolist(), after.tolist(), strict=True))):
            same[names[b]] = first.setdefault(a, names[b])
    order: dict[str, str] = {}
    out = []
    for label in labels:
        if label:
            label = order.setdefault(same.get(label, label), f"S{len(order) + 1}")
        out.append(label)
    return out


def refine_labels(
    vectors: Sequence[np.ndarray | None], durations: Sequence[float], labels: Sequence[str], options: SpeakerOptions
) -> list[str]:
    """``labels`` refined: k-means over the labelled long windows started from their labels (each moved to the
    nearest speaker's centre, the normalised mean of its long windows; speakers left with fewer than
    ``recluster_min_windows`` folded into their nearest; until nothing moves or ``recluster_refine_iterations``
    rounds, monitor/speakers/recluster.py ``refine``), then every other window with an embedding given the nearest
    centre; S1, S2, ... in order of appearance, "" without an embedding."""
    o = options
    long = [i for i in long_windows(vectors, durations, o.min_embed_s) if labels[i]]
    if not long:
        return list(labels)
    x = np.stack([np.asarray(vectors[i], dtype=np.float64) for i in long])
    names = sorted({labels[i] for i in long})
    group = refine(x, np.array([names.index(labels[i]) for i in long]), o.recluster_min_windows,
                   o.recluster_refine_iterations)
    return name_windows(vectors, dict(zip(long, group.tolist(), strict=True)), centres(x, group))


class SpeakerTurns:
    """Labels the windows of ONE file or session (the encoder is shared; the clustering state is not).

    ``whole_file``: the windows are a file's (batch), so ``relabel`` may label them again at the end
    (``file_labels``, ``recluster_threshold``); it keeps each window's vector (48 floats) for that. Otherwise
    (live) the labels are those of monitor/speakers/live.py (``live_recluster_threshold``; 0: the online
    clustering alone). Per file the online clustering's labels are what the emotion model's normalisation is
    keyed by until the second pass relabels the file, as before."""

    def __init__(
        self, encoder: SpeakerEncoder, options: SpeakerOptions | None = None, whole_file: bool = False
    ) -> None:
        self.encoder = encoder
        self.options = options or SpeakerOptions()
        live = not whole_file and self.options.live_recluster_threshold > 0
        self.tracker: SpeakerTracker | LiveTracker = LiveTracker(self.options) if live else SpeakerTracker(self.options)
        self.keep = whole_file and self.options.recluster_threshold > 0
        self.vectors: list[np.ndarray | None] = []
        self.durations: list[float] = []
        self.final: list[str] | None = None  # the second pass's labels (whole file), once ``relabel`` ran
        self.embedding: np.ndarray | None = None  # the last window's embedding (before the LDA)
        self.states: np.ndarray | None = None  # and the encoder's states for it (``read``), for the voice head
        self.vector: np.ndarray | None = None  # and its place in the speaker space (``project``)

    def label(self, audio: np.ndarray) -> str:
        """The speaker of one window's audio ("" for silence, or a short window before any speaker). Its
        embedding stays in ``embedding``, the encoder's states in ``states`` and its vector in ``vector``, until
        the next call."""
        reading = self.encoder.read(audio)
        self.embedding, self.states = reading if reading is not None else (None, None)
        vector, duration = self.encoder.project(self.embedding), len(audio) / SAMPLE_RATE
        self.vector = vector
        if self.keep:
            self.vectors.append(vector)
            self.durations.append(duration)
        return self.tracker.assign(vector, duration)

    def resolve(self, label: str) -> str:
        return self.tracker.resolve(label) if label else ""

    def relabel(self, events: Sequence[Event]) -> list[Event]:
        """Batch, before writing: ``events`` (one per ``label`` call, in order) with their final labels: those
        of the second pass over the whole file (``whole_file``), else the online ones with merged speakers
        replaced by the survivors."""
        if self.keep and len(events) == len(self.vectors):
            self.final = file_labels(self.vectors, self.durations, self.options)
        if self.final is not None:
            return [e if e.speaker == lab else e.with_speaker(lab) for e, lab in zip(events, self.final, strict=True)]
        return [e if e.speaker == self.resolve(e.speaker) else e.with_speaker(self.resolve(e.speaker)) for e in events]

    @property
    def count(self) -> int:
        """Speakers found so far (after merges; after ``relabel`` of a whole file, those of the second pass)."""
        if self.final is not None:
            return len({lab for lab in self.final if lab})
        return self.tracker.count
