"""The run's voices: a ``score`` run's surveyed files grouped by voice, so that a short clip is judged against
the clips of voices like its own rather than against the whole run.

A folder of 1-5 s clips gives each file one or two windows, too few to know its voice, so the head's inputs
(``monitor.inference.prosody``: the functionals and the speaker encoder's states) are standardised mostly by the
run's statistics. Those mix every voice of the run: a deep voice's pitch reads as sad, a high one's as excited.
With speaker turns on, the survey also places each surveyed file in the speaker space (the normalised mean of
its windows' vectors, ``monitor.speakers``) and groups the files by voice as a file's windows are grouped into
speakers (``monitor.speakers.recluster``: complete linkage at ``THRESHOLD``, groups of fewer than ``MIN_FILES``
files folded into the nearest: the defaults of ``recluster_threshold`` and ``recluster_min_windows``). Each
group keeps the statistics of its files' windows (``[speakers] run_voices = false``: the run's alone). The
linkage was chosen for the survey's at most 100 files, where one voice stays one group; over a few hundred files
complete linkage splits one voice by emotion (``models/results/FINDINGS.md``).
A window is then standardised against its voice as far as heard (``VoiceStats``), pulled towards the statistics
of the group nearest to that voice, themselves pulled towards the run's by ``n / (n + prior_files)`` of the
group's files. A run of one voice is one group (the run's statistics, as before); the groups are found once,
before scoring, and travel with the run's baseline to every worker.

Numpy only; ``training.prosody`` measures it with this arithmetic (``models/VOICE.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from monitor.inference.prosody import FeatureStats, shrink
from monitor.speakers.recluster import centres, complete_linkage, fold_small

if TYPE_CHECKING:
    from monitor.inference.baseline import Moments

PRIOR_FILES = 4.0  # a group's files at which its statistics count half against the run's (chosen on the CV)
THRESHOLD = 0.95  # complete linkage of the files' vectors (cosine distance), as a file's windows are clustered
MIN_FILES = 3  # a group of fewer files joins its nearest


@dataclass(frozen=True)
class RunVoice:
    centre: tuple[float, ...]  # unit vector in the speaker space
    files: int
    mean: tuple[float, ...]  # of the head inputs over the group's files' windows
    std: tuple[float, ...]


@dataclass(frozen=True)
class RunVoices:
    """The groups of a run (picklable and hashable: it travels with the baseline to the workers)."""

    voices: tuple[RunVoice, ...]
    prior_files: float = PRIOR_FILES

    @classmethod
    def from_survey(cls, files: Sequence[Moments | None], threshold: float = THRESHOLD, min_files: int = MIN_FILES,
                    prior_files: float = PRIOR_FILES) -> RunVoices | None:
        """The run's voices from its surveyed files' ``Moments`` (their head inputs and ``voice``; None: a file
        without speech); None when fewer than two files were placed in the speaker space (nothing to group)."""
        rows = [f for f in files if f is not None and f.windows > 0 and f.voice and np.linalg.norm(f.voice) > 0]
        if len(rows) < 2:
            return None
        x = np.array([f.voice for f in rows], dtype=np.float64)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        group = fold_small(x, complete_linkage(x, threshold), max(1, min_files))
        cents = centres(x, group)
        voices = []
        for g in range(len(cents)):
            members = [f for f, k in zip(rows, group.tolist(), strict=True) if k == g]
            n = sum(f.windows for f in members)
            mean = np.sum([f.total for f in members], axis=0) / n
            var = np.maximum(np.sum([f.squares for f in members], axis=0) / n - mean**2, 0.0)
            voices.append(RunVoice(_rounded(cents[g]), len(members), _rounded(mean), _rounded(np.sqrt(var))))
        return cls(tuple(voices), prior_files)

    def nearest(self, vector: np.ndarray) -> RunVoice:
        """The group whose centre is closest (cosine) to ``vector`` (a voice's vectors summed, or one)."""
        sims = np.array([v.centre for v in self.voices]) @ np.asarray(vector, dtype=np.float64)
        return self.voices[int(np.argmax(sims))]

    def prior(self, vector: np.ndarray | None, run: FeatureStats) -> FeatureStats:
        """The statistics a voice at ``vector`` is pulled towards: its nearest group's, pulled towards the run's
        (``run``, already the head's full input statistics); ``run`` itself without a vector. Inputs the group
        has no statistics for (a survey without them) keep the run's."""
        if vector is None or not np.any(vector):
            return run
        v = self.nearest(vector)
        m0, s0 = np.asarray(run.mean, dtype=np.float64), np.asarray(run.std, dtype=np.float64)
        k = min(len(v.mean), len(m0))
        mean, std = m0.copy(), s0.copy()
        mean[:k], std[:k] = shrink(np.asarray(v.mean[:k]), np.asarray(v.std[:k]) ** 2, v.files, self.prior_files,
                                   FeatureStats(tuple(m0[:k]), tuple(s0[:k])))
        return FeatureStats(tuple(mean), tuple(std), run.files)


def _rounded(a: np.ndarray) -> tuple[float, ...]:
    return tuple(round(float(v), 6) for v in a)
