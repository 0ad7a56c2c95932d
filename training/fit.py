"""The training loop: SpecAugment + mixup per epoch, class weights, label smoothing, early stopping on
validation actors (taken from the training actors, never from the held-out fold)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from monitor.labels import LABELS
from training.augment import SpecAugmentOptions, mixup, spec_augment
from training.dataset import WindowSet
from training.metrics import score
from training.model import ModelOptions, build_model, set_seeds


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 40  # maximum; early stopping picks the best epoch when there are validation actors
    patience: int = 15
    # The best validation epoch is only looked for in the low-learning-rate tail (from this share of the
    # horizon on): two validation actors give a noisy UAR, and an early lucky spike (fold 2 of a first run:
    # epoch 6 of 60) stopped a model long before it had learnt.
    select_from: float = 2 / 3
    batch_size: int = 32
    learning_rate: float = 2e-3
    # Cosine decay over ``lr_horizon`` epochs (fixed, not the epochs actually run), so the final model trained for
    # N epochs follows exactly the learning-rate path the cross-validation models had at epoch N.
    lr_horizon: int = 60
    lr_floor: float = 0.05  # final learning rate as a fraction of the initial one
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.2
    mixup_prob: float = 0.3
    class_weighting: bool = True  # neutral has half the clips of the other emotions
    one_copy_per_epoch: bool = True  # each epoch sees one random version (original or augmented) of each clip
    spec: SpecAugmentOptions = field(default_factory=SpecAugmentOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    seed: int = 1234


@dataclass
class FitResult:
    model: object  # keras.Model with the best weights
    best_epoch: int  # 1-based; == epochs run when there is no validation set
    epochs_run: int
    history: list[dict]
    seconds: float


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(float)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return w


def learning_rate_at(epoch: int, opts: TrainOptions) -> float:
    """Learning rate of a 1-based epoch: cosine from ``learning_rate`` to ``lr_floor`` of it over the horizon."""
    t = min(max(epoch - 1, 0) / max(opts.lr_horizon - 1, 1), 1.0)
    return float(opts.learning_rate * (opts.lr_floor + (1 - opts.lr_floor) * 0.5 * (1 + np.cos(np.pi * t))))


def predict(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    out = [np.asarray(model(x[i : i + batch_size].astype(np.float32)[..., None], training=False))
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), dtype=np.float32)


def fit_model(train: WindowSet, val: WindowSet | None, opts: TrainOptions, epochs: int | None = None,
              log=print, tag: str = "") -> FitResult:
    """Train a fresh model on ``train``; with ``val`` keep the weights of the epoch with the best val UAR."""
    import keras

    set_seeds(opts.seed)
    n_classes = len(LABELS)
    epochs = epochs or opts.epochs
    model = build_model(train.x.shape[1:3], n_classes, opts.model, seed=opts.seed)
    model.compile(optimizer=keras.optimizers.Adam(opts.learning_rate),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=opts.label_smoothing))
    rng = np.random.default_rng(opts.seed)
    y_onehot = np.eye(n_classes, dtype=np.float32)[train.y.astype(int)]
    weights = class_weights(train.y.astype(int), n_classes) if opts.class_weighting else np.ones(n_classes)
    x_train = train.x.astype(np.float32)
    first_pick = max(1, int(np.ceil(opts.select_from * min(opts.lr_horizon, epochs))))
    n_copies = int(train.copy.max()) + 1
    n_clips = int(train.clip.max()) + 1
    best = (-1.0, 0, None)
    history: list[dict] = []
    t0 = time.perf_counter()
    bad = 0
    epoch = 0
    for epoch in range(1, epochs + 1):
        lr = learning_rate_at(epoch, opts)
        model.optimizer.learning_rate.assign(lr)
        if opts.one_copy_per_epoch:
            chosen = rng.integers(0, n_copies, size=n_clips)
            rows = np.flatnonzero(chosen[train.clip] == train.copy)
        else:
            rows = np.arange(len(x_train))
        order = rows[rng.permutation(len(rows))]
        xb = spec_augment(x_train[order], opts.spec, rng)
        yb = y_onehot[order]
        xb, ymix = mixup(xb, yb, opts.mixup_alpha, rng, opts.mixup_prob)
        sw = (weights[None, :] * ymix).sum(axis=1).astype(np.float32)  # class weight of the (mixed) target
        h = model.fit(xb[..., None], ymix, sample_weight=sw, batch_size=opts.batch_size, epochs=1, shuffle=False,
                      verbose=0)
        rec = {"epoch": epoch, "loss": float(h.history["loss"][-1]), "lr": lr}
        msg = f"{tag}epoch {epoch}/{epochs} lr {lr:.2e} loss {rec['loss']:.3f}"
        if val is not None and len(val.y):
            p = predict(model, val.x)
            s = score(val.y, p.argmax(axis=1), n_classes)
            rec["val_uar"] = s.uar
            msg += f" val UAR {s.uar:.3f}"
            if epoch >= first_pick:
                if s.uar > best[0]:
                    best = (s.uar, epoch, model.get_weights())
                    bad = 0
                else:
                    bad += 1
        elapsed = time.perf_counter() - t0
        msg += f" ({elapsed:.0f}s, {elapsed / epoch:.1f}s/epoch)"
        log(msg)
        history.append(rec)
        if val is not None and bad >= opts.patience:
            log(f"{tag}early stop: best val UAR {best[0]:.3f} at epoch {best[1]}")
            break
    best_epoch = epoch
    if best[2] is not None:
        model.set_weights(best[2])
        best_epoch = best[1]
    return FitResult(model, best_epoch, epoch, history, time.perf_counter() - t0)
