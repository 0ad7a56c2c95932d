"""The run's baseline: what every file of a batch leans towards, taken out in part (``score --baseline run``).

On voices, languages and microphones it never heard, the model leans: a corpus comes out mostly "sad", another
mostly "calm", whatever was said. The lean is shared by the files of one batch (the same language, the same
recording set-up), so a batch can measure it. Before scoring, ``score`` surveys the run: every file's mean
window log-probabilities (at most ``max_files`` of them, a fixed sample of the paths; at most ``max_windows``
windows of each), averaged over the files::

    lean   = mean over the surveyed files of (mean over the file's windows of log p)
    offset = strength * n / (n + prior_files) * lean                n = surveyed files with speech
    p'     = softmax(log p - offset)                                 for every window of every file

With ``strength`` 1 a run's average prediction would become uniform, which assumes that the batch holds every
emotion about equally; ``strength`` 0.75 (chosen on the speaker-independent cross-validation, and the better
choice when one emotion makes up most of the batch: ``models/REPORT.md``) takes out three quarters of the lean.
A run of one file is scored as it is; a few files move it little (``prior_files``).

Numpy only; ``training.multi_report`` measures it with the same arithmetic.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from monitor.inference.prosody import FeatureStats
from monitor.inference.run_voices import RunVoices

FLOOR = 1e-6  # probabilities below this count as this (an int8 output of 0)
MODES = ("run", "off")


@dataclass(frozen=True)
class BaselineOptions:
    strength: float = 0.75
    prior_files: float = 8.0  # files of evidence at which the offset is half of ``strength``
    max_files: int = 100  # files surveyed at most (a fixed sample of a larger run: 100 do as well as all)
    max_windows: int = 20  # windows read of each surveyed file at most (its first minute of speech)


def log_probs(p: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(p, dtype=np.float64), FLOOR))


def survey_sample(paths: Sequence[str], max_files: int) -> list[str]:
    """The files a run's survey reads: all of them, or a fixed sample of ``max_files`` chosen by a hash of the
    absolute path (the same files whatever the order they were found in, and however the folder was named:
    ``./calls``, ``calls`` or ``/data/calls``, as --resume matches rows; so a resumed run gets the same baseline)."""
    if len(paths) <= max_files:
        return list(paths)
    ranked = sorted(paths, key=lambda p: hashlib.sha1(os.path.abspath(p).encode("utf-8", "surrogateescape")).digest())
    return sorted(ranked[:max_files])


@dataclass(frozen=True)
class Moments:
    """A file's windows' head inputs (``monitor.dsp.functionals``, and a voice head's states components), summed:
    count, sum, sum of squares; with speaker turns, ``voice``: the sum of its windows' unit vectors in the speaker
    space (``monitor.inference.run_voices``; empty without)."""

    windows: int
    total: tuple[float, ...]
    squares: tuple[float, ...]
    voice: tuple[float, ...] = ()


def pooled_stats(moments: Sequence[Moments | None]) -> FeatureStats | None:
    """The mean and spread of the head inputs over all the surveyed files' windows (None without any)."""
    rows = [m for m in moments if m is not None and m.windows > 0]
    if len(rows) < 2:
        return None
    n = sum(m.windows for m in rows)
    mean = np.sum([m.total for m in rows], axis=0) / n
    var = np.maximum(np.sum([m.squares for m in rows], axis=0) / n - mean**2, 0.0)
    return FeatureStats(tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in np.sqrt(var)),
                        len(rows))


@dataclass(frozen=True)
class Baseline:
    """The offset subtracted from every window's log-probabilities, the run's statistics of the head inputs
    (None without a prosody head) and its voices (None without speaker turns). Picklable and hashable (it travels with
    the scoring options to the workers)."""

    offset: tuple[float, ...]
    files: int = 0  # surveyed files with speech
    stats: FeatureStats | None = None  # the surveyed windows' head inputs (monitor.inference.prosody)
    voices: RunVoices | None = None  # the surveyed files grouped by voice (monitor.inference.run_voices)

    @classmethod
    def from_file_means(cls, means: Sequence[np.ndarray | None], options: BaselineOptions) -> Baseline | None:
        """The baseline of a run from its surveyed files' mean window ``log_probs`` (None: a file without speech);
        None when fewer than two files have speech (nothing to compare a file with)."""
        rows = [np.asarray(m, dtype=np.float64) for m in means if m is not None]
        if len(rows) < 2:
            return None
        lean = np.mean(rows, axis=0)
        lean = lean - lean.mean()  # a constant shift changes nothing after the softmax; keep the numbers small
        weight = options.strength * len(rows) / (len(rows) + options.prior_files)
        return cls(tuple(round(float(v), 6) for v in weight * lean), len(rows))

    @classmethod
    def from_survey(cls, means: Sequence[np.ndarray | None], moments: Sequence[Moments | None],
                    options: BaselineOptions, voices: bool = False) -> Baseline | None:
        """The baseline of a run from what its survey read of each file: mean window ``log_probs`` and
        ``Moments`` (None: a file without speech); with ``voices`` (speaker turns on, ``[speakers] run_voices``)
        also the run's voices (``RunVoices``). None when fewer than two files have speech."""
        base = cls.from_file_means(means, options)
        if base is None:
            return None
        stats = pooled_stats(moments)
        grouped = RunVoices.from_survey(moments) if voices and stats is not None else None
        return replace(base, stats=stats, voices=grouped)

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Probabilities (..., labels) -> the same with the run's lean taken out (sums to 1)."""
        z = log_probs(p) - np.asarray(self.offset)
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
