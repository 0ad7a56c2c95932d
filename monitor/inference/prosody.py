"""The prosody head: a softmax regression on a window's functionals, fused with the CNN.

The CNN hears the spectrum; voices it never heard shift the spectrum more than they shift how pitch, loudness and
voicing move. Beside the CNN a small regression reads ``monitor.dsp.functionals`` (40 numbers per window),
standardised by a mean and spread::

    log p = (w log p_cnn + (1 - w) log softmax(coef @ ((f - mean) / std) + intercept)) / T

Which mean and spread: in ``score`` with the run's baseline, those of the windows its survey read (a corpus, a
call centre's export, a folder recorded on one set-up), pulled towards the training windows' own while the
survey has few files (the same ``n / (n + prior_files)`` as the baseline); otherwise (one file, the live
monitor, ``--baseline off``) the training windows'. ``w`` differs between those two settings; both are chosen
on the speaker-independent cross-validation, and the temperature ``T`` of each is fitted there so that the
confidence shown means what it says (``training/prosody.py``, ``models/PROSODY.md``).

The head lives in ``models/emotion.prosody.json`` beside the emotion model; without it the CNN is used alone.
Numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.errors import ModelError

FLOOR = 1e-6


@dataclass(frozen=True)
class FeatureStats:
    """The mean and spread the functionals are standardised by (picklable: it travels with the scoring options)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    files: int = 0  # surveyed files behind it (0: the training windows')


@dataclass(frozen=True)
class ProsodyHead:
    names: tuple[str, ...]
    mean: tuple[float, ...]  # the training windows' statistics
    std: tuple[float, ...]
    coef: tuple[tuple[float, ...], ...]  # (labels, features)
    intercept: tuple[float, ...]
    weight_run: float  # the CNN's weight with the run's statistics
    weight_alone: float  # the CNN's weight with the training windows' statistics
    temperature_run: float = 1.0  # the fused output's calibration in each setting (fitted on the CV)
    temperature_alone: float = 1.0

    @property
    def population(self) -> FeatureStats:
        return FeatureStats(self.mean, self.std, 0)

    def log_probs(self, f: np.ndarray, mean: np.ndarray | tuple, std: np.ndarray | tuple) -> np.ndarray:
        """Functionals (..., features) -> log-probabilities (..., labels)."""
        x = (np.asarray(f, dtype=np.float64) - np.asarray(mean)) / (np.asarray(std) + 1e-6)
        x = np.clip(x, -6.0, 6.0)  # a window far outside anything heard must not decide alone
        z = x @ np.asarray(self.coef).T + np.asarray(self.intercept)
        z -= z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    def shrunk(self, mean: np.ndarray, std: np.ndarray, files: int, prior_files: float) -> FeatureStats:
        """A run's statistics pulled towards the training windows' by ``prior_files`` files of evidence."""
        lam = files / (files + prior_files)
        m = lam * np.asarray(mean) + (1 - lam) * np.asarray(self.mean)
        var = lam * np.asarray(std) ** 2 + (1 - lam) * np.asarray(self.std) ** 2
        return FeatureStats(tuple(round(float(v), 6) for v in m), tuple(round(float(v), 6) for v in np.sqrt(var)),
                            files)

    def save(self, path: Path, extra: dict | None = None) -> None:
        d = {"kind": "prosody-softmax-v1", "features": list(self.names), "mean": list(self.mean),
             "std": list(self.std), "coef": [list(r) for r in self.coef], "intercept": list(self.intercept),
             "weight_run": self.weight_run, "weight_alone": self.weight_alone,
             "temperature_run": self.temperature_run, "temperature_alone": self.temperature_alone, **(extra or {})}
        Path(path).write_text(json.dumps(d, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path, labels: tuple[str, ...], names: tuple[str, ...]) -> ProsodyHead:
        try:
            d = json.loads(Path(path).read_text())
            head = cls(tuple(d["features"]), tuple(map(float, d["mean"])), tuple(map(float, d["std"])),
                       tuple(tuple(map(float, r)) for r in d["coef"]), tuple(map(float, d["intercept"])),
                       float(d["weight_run"]), float(d["weight_alone"]), float(d.get("temperature_run", 1.0)),
                       float(d.get("temperature_alone", 1.0)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: unreadable prosody head ({exc}); restore it from the repository or delete "
                             "it to use the CNN alone") from None
        if head.names != names or np.shape(head.coef) != (len(labels), len(names)):
            raise ModelError(f"{path}: made for other functionals or labels than this monitor's; retrain it "
                             "(python -m training.prosody) or delete it to use the CNN alone")
        if not (0 <= head.weight_run <= 1 and 0 <= head.weight_alone <= 1):
            raise ModelError(f"{path}: fusion weights must be between 0 and 1")
        if not (head.temperature_run > 0 and head.temperature_alone > 0):
            raise ModelError(f"{path}: temperatures must be > 0")
        return head


def fuse(p_cnn: np.ndarray, log_p_prosody: np.ndarray, weight: float, temperature: float = 1.0) -> np.ndarray:
    """The CNN's probabilities and the head's log-probabilities -> fused probabilities (sum to 1), divided by
    ``temperature`` in the log domain (the fused output's calibration)."""
    z = weight * np.log(np.maximum(np.asarray(p_cnn, dtype=np.float64), FLOOR)) + (1 - weight) * log_p_prosody
    z = z / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
