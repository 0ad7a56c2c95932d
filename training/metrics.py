"""Classification metrics (numpy only): UAR, accuracy, macro-F1, confusion matrix; clip-level pooling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Scores:
    uar: float  # unweighted average recall = mean per-class recall
    accuracy: float
    macro_f1: float
    n: int
    confusion: np.ndarray  # rows: true class, columns: predicted class
    recall: np.ndarray  # per class

    def to_dict(self) -> dict:
        return {"uar": round(self.uar, 4), "accuracy": round(self.accuracy, 4), "macro_f1": round(self.macro_f1, 4),
                "n": self.n, "recall": [round(float(r), 4) for r in self.recall]}


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return cm


def scores_from_confusion(cm: np.ndarray) -> Scores:
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(float)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    n = int(cm.sum())
    return Scores(
        uar=float(recall[present].mean()) if present.any() else 0.0,
        accuracy=float(tp.sum() / n) if n else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        n=n,
        confusion=cm,
        recall=recall,
    )


def score(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> Scores:
    return scores_from_confusion(confusion_matrix(y_true, y_pred, n_classes))


def pool_by_clip(probs: np.ndarray, clip: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean window probabilities per clip -> (clip ids, pooled probabilities, clip labels)."""
    ids, inverse = np.unique(clip, return_inverse=True)
    pooled = np.zeros((len(ids), probs.shape[1]))
    np.add.at(pooled, inverse, probs)
    pooled /= np.bincount(inverse)[:, None]
    labels = np.zeros(len(ids), dtype=int)
    labels[inverse] = y
    return ids, pooled, labels
