"""training.arousal's metrics and regression, checked against brute force on small cases."""

from __future__ import annotations

import itertools

import numpy as np

from monitor.labels import LABELS
from training.arousal import auc, balanced, fit_arousal, oracle_balanced

HIGH, LOW, DISGUST = LABELS.index("angry"), LABELS.index("sad"), LABELS.index("disgust")


def _clips(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows of ``n`` clips (1-3 each): arousal, clip id, label."""
    a, clip, lab = [], [], []
    for i in range(n):
        label = rng.choice([HIGH, LOW, DISGUST])
        k = int(rng.integers(1, 4))
        a += list(rng.normal(0.3 if label == HIGH else -0.1, 0.5, k))
        clip += [i] * k
        lab += [label] * k
    return np.array(a), np.array(clip), np.array(lab)


def _by_hand(a: np.ndarray, clip: np.ndarray, lab: np.ndarray) -> tuple[list[float], list[float]]:
    means = {i: float(np.mean(a[clip == i])) for i in np.unique(clip)}
    label = {i: int(lab[clip == i][0]) for i in np.unique(clip)}
    return ([m for i, m in means.items() if label[i] == HIGH], [m for i, m in means.items() if label[i] == LOW])


def test_metrics_equal_brute_force() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, clip, lab = _clips(rng, 40)
        hi, lo = _by_hand(a, clip, lab)
        pairs = [1.0 if h > low else 0.5 if h == low else 0.0 for h, low in itertools.product(hi, lo)]
        assert np.isclose(auc(a, clip, lab), np.mean(pairs))
        bal = 0.5 * (np.mean(np.array(hi) > 0) + np.mean(np.array(lo) <= 0))
        assert np.isclose(balanced(a, clip, lab), bal)
        best = max(0.5 * (np.mean(np.array(hi) > t) + np.mean(np.array(lo) <= t)) for t in [-9.0, *hi, *lo])
        assert np.isclose(oracle_balanced(a, clip, lab), best)
        assert oracle_balanced(a, clip, lab) >= balanced(a, clip, lab)


def test_fit_arousal_separates_and_balances() -> None:
    rng = np.random.default_rng(0)
    n = 400
    high = rng.random(n) < 0.2  # few high windows: the class balance must still centre the boundary
    x = rng.normal(0, 1, (n, 3))
    x[:, 0] += np.where(high, 1.5, -1.5)
    corpus = np.array(["a", "b"])[rng.integers(0, 2, n)]
    coef, icpt = fit_arousal(x, high, corpus, c=1.0)
    z = x @ coef + icpt
    assert coef[0] > 2 * max(abs(coef[1]), abs(coef[2]))
    recall = 0.5 * (np.mean(z[high] > 0) + np.mean(z[~high] <= 0))
    assert recall > 0.9
    assert abs(np.mean(z[high] > 0) - np.mean(z[~high] <= 0)) < 0.1
