"""The predecessor's recipe, kept as a baseline on the same folds.

librosa load at 22.05 kHz, 40 MFCCs averaged over the whole clip (a 40-value vector), a Conv1D stack
(32/64/128 filters, kernel 5) and dense layers, trained on the originals plus a noise copy and a time-stretch
copy of each training clip. Augmented copies stay with their clip's actor (evaluation: originals only).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from monitor.labels import LABELS
from training.manifest import Manifest

BASELINE_VERSION = 1


@dataclass(frozen=True)
class BaselineOptions:
    sample_rate: int = 22050
    n_mfcc: int = 40
    noise_amp: float = 0.035  # noise std relative to the clip's peak, times U(0, 1)
    stretch_rate: float = 0.8
    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 1234


@dataclass
class BaselineSet:
    x: np.ndarray  # (n, n_mfcc)
    y: np.ndarray
    actor: np.ndarray
    copy: np.ndarray  # 0 original, 1 noise, 2 time-stretch
    clip: np.ndarray


def mfcc_mean(y: np.ndarray, sr: int, n_mfcc: int) -> np.ndarray:
    import librosa

    return librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc).mean(axis=1).astype(np.float32)


def baseline_features(manifest: Manifest, opts: BaselineOptions, cache_dir: Path, log=print) -> BaselineSet:
    import librosa

    key = hashlib.sha1(json.dumps({"v": BASELINE_VERSION, **asdict(opts), "clips": [c.clip_id for c in
                                                                                     manifest.clips]},
                                  sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir).expanduser() / f"baseline-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            log(f"baseline: features from cache {path}")
            return BaselineSet(z["x"], z["y"], z["actor"], z["copy"], z["clip"])
    log(f"baseline: MFCC features of {len(manifest.clips)} clips x 3 copies into {path}")
    xs, ys, actors, copies, clips = [], [], [], [], []
    t0 = time.perf_counter()
    for i, c in enumerate(manifest.clips):
        rng = np.random.default_rng([opts.seed, int(c.clip_id.replace("-", ""))])
        y, sr = librosa.load(str(c.path), sr=opts.sample_rate)
        noisy = y + opts.noise_amp * rng.uniform() * np.max(np.abs(y)) * rng.standard_normal(len(y))
        stretched = librosa.effects.time_stretch(y, rate=opts.stretch_rate)
        for k, v in enumerate((y, noisy.astype(np.float32), stretched)):
            xs.append(mfcc_mean(v, sr, opts.n_mfcc))
            ys.append(c.emotion_index)
            actors.append(c.actor)
            copies.append(k)
            clips.append(i)
        if (i + 1) % 200 == 0:
            log(f"  [{i + 1}/{len(manifest.clips)}] {time.perf_counter() - t0:.0f}s")
    bs = BaselineSet(np.stack(xs), np.array(ys), np.array(actors), np.array(copies), np.array(clips))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **asdict(bs))
    return bs


def build_baseline_model(n_mfcc: int, n_classes: int, seed: int):
    import keras
    from keras import layers

    init = keras.initializers.GlorotUniform
    return keras.Sequential(
        [
            keras.Input(shape=(n_mfcc, 1)),
            layers.Conv1D(32, 5, padding="same", activation="relu", kernel_initializer=init(seed)),
            layers.Conv1D(64, 5, padding="same", activation="relu", kernel_initializer=init(seed + 1)),
            layers.MaxPooling1D(2),
            layers.Conv1D(128, 5, padding="same", activation="relu", kernel_initializer=init(seed + 2)),
            layers.MaxPooling1D(2),
            layers.Dropout(0.3, seed=seed),
            layers.Flatten(),
            layers.Dense(64, activation="relu", kernel_initializer=init(seed + 3)),
            layers.Dropout(0.3, seed=seed + 1),
            layers.Dense(n_classes, activation="softmax", kernel_initializer=init(seed + 4)),
        ],
        name="baseline_mfcc_conv1d",
    )


def run_baseline_fold(data: BaselineSet, train_actors: list[int], test_actors: list[int],
                      opts: BaselineOptions) -> tuple[np.ndarray, np.ndarray]:
    """Train on the training actors (all 3 copies), predict the held-out actors' originals.

    Returns (true labels, predicted labels) of the held-out clips. Features are standardised with the
    training set's statistics only.
    """
    import keras

    from training.model import set_seeds

    set_seeds(opts.seed)
    tr = np.isin(data.actor, train_actors)
    te = np.isin(data.actor, test_actors) & (data.copy == 0)
    mean, std = data.x[tr].mean(axis=0), data.x[tr].std(axis=0) + 1e-8
    xtr = ((data.x[tr] - mean) / std)[..., None]
    xte = ((data.x[te] - mean) / std)[..., None]
    model = build_baseline_model(data.x.shape[1], len(LABELS), opts.seed)
    model.compile(optimizer=keras.optimizers.Adam(opts.learning_rate), loss="sparse_categorical_crossentropy")
    model.fit(xtr, data.y[tr], batch_size=opts.batch_size, epochs=opts.epochs, verbose=0, shuffle=True)
    pred = model.predict(xte, verbose=0).argmax(axis=1)
    return data.y[te], pred
