"""Scores of held-out predictions across corpora: UAR over a corpus's labels (8-way and restricted), binary
arousal, calibration (ECE, temperature), and per-speaker normalisation of the outputs.

Binary arousal follows the issue's split: high = angry, happy, fearful, surprised; low = neutral, calm, sad;
disgust is left out. A clip is called high when its arousal value (``AROUSAL`` coordinates weighted by the
probabilities, the same mapping the monitor writes in its ``arousal`` column) is above 0; the figure is the
balanced accuracy (mean recall of high and low), so a corpus with more high clips cannot inflate it.
"""

from __future__ import annotations

import numpy as np

from monitor.affect import DEFAULT_COORDINATES
from monitor.labels import LABELS

N = len(LABELS)
HIGH = ("angry", "happy", "fearful", "surprised")
LOW = ("neutral", "calm", "sad")
# Arousal coordinates of the labels (the documented default mapping of the monitor's `arousal` column).
AROUSAL = {lab: a for lab, (a, _) in DEFAULT_COORDINATES.items()}


def arousal_values(probs: np.ndarray) -> np.ndarray:
    return probs @ np.array([AROUSAL[lab] for lab in LABELS])


def pool(probs: np.ndarray, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean window probabilities per clip -> (clip ids, pooled)."""
    ids, inv = np.unique(clip, return_inverse=True)
    out = np.zeros((len(ids), probs.shape[1]))
    np.add.at(out, inv, probs)
    return ids, out / np.bincount(inv)[:, None]


def uar(y: np.ndarray, pred: np.ndarray, labels: list[int]) -> float:
    rec = [float(np.mean(pred[y == lab] == lab)) for lab in labels if np.any(y == lab)]
    return float(np.mean(rec)) if rec else float("nan")


def corpus_scores(probs: np.ndarray, y: np.ndarray, labels: list[int], arousal_shift: float = 0.0) -> dict:
    """Clip-level scores of one corpus: probs (clips, 8), true labels, the corpus's label set. ``arousal_shift``:
    taken off every arousal value before its sign is read (another centre of the arousal axis)."""
    pred8 = probs.argmax(axis=1)
    restricted = np.full_like(probs, -1.0)
    restricted[:, labels] = probs[:, labels]
    pred_l = restricted.argmax(axis=1)
    names = [LABELS[i] for i in y]
    is_high = np.array([n in HIGH for n in names])
    is_low = np.array([n in LOW for n in names])
    a = arousal_values(probs) - arousal_shift
    ar = [float(np.mean(a[is_high] > 0))] if is_high.any() else []
    ar += [float(np.mean(a[is_low] <= 0))] if is_low.any() else []
    cm = np.zeros((N, N), dtype=int)
    np.add.at(cm, (y, pred8), 1)
    return {"n": int(len(y)), "uar8": uar(y, pred8, labels), "uar": uar(y, pred_l, labels),
            "acc8": float(np.mean(pred8 == y)), "arousal_uar": float(np.mean(ar)) if ar else float("nan"),
            "chance": 1.0 / len(labels), "confusion": cm.tolist()}


def speaker_normalised(probs: np.ndarray, groups: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Per-group output normalisation: subtract the group's mean log-probability, renormalise.

    With ``strength`` 1 every group's average prediction becomes uniform: a speaker who 'sounds sad' in every
    clip no longer makes every clip sad; what is left is how a clip differs from the speaker's usual."""
    z = np.log(np.clip(probs, 1e-6, 1.0))
    out = z.copy()
    for g in np.unique(groups):
        m = groups == g
        out[m] = z[m] - strength * z[m].mean(axis=0, keepdims=True)
    out -= out.max(axis=1, keepdims=True)
    p = np.exp(out)
    return p / p.sum(axis=1, keepdims=True)


def speaker_normalised_running(probs: np.ndarray, groups: np.ndarray, strength: float = 1.0,
                               min_count: int = 20, seed: int = 0) -> np.ndarray:
    """The live form of ``speaker_normalised``: clips arrive in a random order per group, and each is normalised
    by the mean log-probability of the clips of its group heard so far (itself included), once there are at least
    ``min_count`` of them; before that it is left as it is (what a monitor can do in the first minute)."""
    z = np.log(np.clip(probs, 1e-6, 1.0))
    out = z.copy()
    rng = np.random.default_rng(seed)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        idx = idx[rng.permutation(len(idx))]
        csum = np.cumsum(z[idx], axis=0)
        count = np.arange(1, len(idx) + 1)[:, None]
        mean = csum / count
        ready = (count >= min_count)[:, 0]
        out[idx[ready]] = z[idx[ready]] - strength * mean[ready]
    out -= out.max(axis=1, keepdims=True)
    p = np.exp(out)
    return p / p.sum(axis=1, keepdims=True)


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-label confidence (equal-width bins)."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def with_temperature(probs: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(probs, 1e-7, 1.0)) / t
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood (grid over 0.3-5, then refined)."""
    def nll(t: float) -> float:
        p = with_temperature(probs, t)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-9, 1.0))))

    grid = np.exp(np.linspace(np.log(0.3), np.log(5.0), 60))
    best = min(grid, key=nll)
    fine = best * np.exp(np.linspace(-0.06, 0.06, 25))
    return float(min(fine, key=nll))
