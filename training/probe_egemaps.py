"""Probe (not shipped): do prosodic functionals add to the CNN on corpora it never heard?

eGeMAPS v02 functionals (88 per clip: pitch, jitter, shimmer, HNR, formants, loudness, spectral balance, MFCC 1-4,
voiced-segment rates; openSMILE) of every clip, standardised per corpus (what a run's survey could measure), a
class-balanced logistic regression trained on four corpora and scored on the fifth, alone and fused with the
shipped configuration's leave-one-corpus-out probabilities (the run's baseline taken out, as ``score`` does):
``log p = w log p_cnn + (1 - w) log p_functionals``. Prints 8-way UAR per held-out corpus, over its own labels,
and binary arousal.

openSMILE and scikit-learn are not dependencies of this project (openSMILE is free for research and
non-commercial use only, takes about 50 ms per 3 s window and has no aarch64 wheel): run the probe from a
separate environment that has them and numpy, soundfile, with this repository on the path::

    python -m venv /tmp/smile && /tmp/smile/bin/pip install opensmile scikit-learn soundfile numpy
    PYTHONPATH=. /tmp/smile/bin/python -m training.probe_egemaps --data ../shared/data   # ~15 min the first time

The functionals are cached in ``~/.cache/voice-monitor/egemaps.npz``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from training.multi_metrics import HIGH, LOW, arousal_values, pool, uar, with_temperature
from training.multi_report import with_run_baseline

LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
CORPORA = ("ravdess16k", "nemo", "ased", "esd0020", "turev")
CACHE = Path.home() / ".cache" / "voice-monitor" / "egemaps.npz"
NUMPY_CACHE = Path.home() / ".cache" / "voice-monitor" / "functionals.npz"


def clip_key(corpus: str, path: str) -> str:
    p = Path(corpus) / path
    return f"{corpus}:{p.parent.name}/{p.name}"  # training.corpora.Record.key


def functionals(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features, corpus, key, emotion) of every clip of the manifests, cached."""
    if CACHE.exists():
        z = np.load(CACHE)
        return z["x"], z["corpus"], z["key"], z["emotion"]
    import opensmile
    import soundfile as sf

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    rows = []
    for name in CORPORA:
        with (data / name / "manifest.csv").open(newline="") as f:
            rows += [(name, r["path"], r["emotion"]) for r in csv.DictReader(f)]
    x = np.zeros((len(rows), 88), np.float32)
    for i, (name, path, _) in enumerate(rows):
        audio, rate = sf.read(str(data / name / path), dtype="float32", always_2d=True)
        x[i] = smile.process_signal(audio.mean(axis=1), rate).values[0]
    corpus = np.array([r[0] for r in rows])
    key = np.array([clip_key(r[0], r[1]) for r in rows])
    emotion = np.array([r[2] for r in rows])
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE, x=x, corpus=corpus, key=key, emotion=emotion)
    return x, corpus, key, emotion


def numpy_functionals(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The same table from ``training.functionals`` (numpy; the monitor's own audio reader), cached."""
    if NUMPY_CACHE.exists():
        z = np.load(NUMPY_CACHE)
        return z["x"], z["corpus"], z["key"], z["emotion"]
    from concurrent.futures import ProcessPoolExecutor

    rows = []
    for name in CORPORA:
        with (data / name / "manifest.csv").open(newline="") as f:
            rows += [(name, r["path"], r["emotion"]) for r in csv.DictReader(f)]
    with ProcessPoolExecutor(2) as ex:
        x = np.stack(list(ex.map(_clip_functionals, [str(data / n / p) for n, p, _ in rows], chunksize=64)))
    corpus = np.array([r[0] for r in rows])
    key = np.array([clip_key(r[0], r[1]) for r in rows])
    emotion = np.array([r[2] for r in rows])
    NUMPY_CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(NUMPY_CACHE, x=x, corpus=corpus, key=key, emotion=emotion)
    return x, corpus, key, emotion


def _clip_functionals(path: str) -> np.ndarray:
    from monitor.audio.convert import read_audio
    from training.functionals import functionals as numpy_table

    audio, _ = read_audio(path)
    return numpy_table(audio)


def per_corpus(x: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float64)
    for c in np.unique(corpus):
        m = corpus == c
        out[m] = (x[m] - x[m].mean(axis=0)) / (x[m].std(axis=0) + 1e-6)
    return out


def cnn_probs(results: Path, held: str, temperature: float) -> dict[str, np.ndarray]:
    """Clip key -> the shipped configuration's held-out probabilities, the run's baseline taken out."""
    with np.load(results / f"loco_{held}.npz") as z:
        keys, probs = z["keys"], with_temperature(z["probs_file"].astype(np.float64), temperature)
    _, clip = np.unique(keys, return_inverse=True)
    ids, pooled = pool(with_run_baseline(probs, clip, np.zeros(len(keys))), clip)
    return dict(zip(np.unique(keys), pooled, strict=True))


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--results", type=Path, default=Path("models/results/cnn2d-spknorm"))
    ap.add_argument("--temperature", type=float, default=1.447)
    ap.add_argument("--features", choices=("egemaps", "numpy"), default="egemaps",
                    help="openSMILE's eGeMAPS, or training.functionals (numpy)")
    a = ap.parse_args()
    x, corpus, key, emotion = (functionals if a.features == "egemaps" else numpy_functionals)(a.data)
    y = np.array([LABELS.index(e) for e in emotion])
    xs = per_corpus(x.astype(np.float64), corpus)
    weights = (0.0, 0.25, 0.5, 0.75, 1.0)
    scores: dict[float, list[tuple[float, float, float]]] = {w: [] for w in weights}
    for held in CORPORA:
        tr, te = corpus != held, corpus == held
        sw = np.zeros(int(tr.sum()))
        for c in np.unique(corpus[tr]):  # each corpus x label the same total weight
            for lab in np.unique(y[tr][corpus[tr] == c]):
                m = (corpus[tr] == c) & (y[tr] == lab)
                sw[m] = 1.0 / m.sum()
        clf = LogisticRegression(max_iter=2000, C=0.1).fit(xs[tr], y[tr], sample_weight=sw / sw.mean())
        p_fun = np.full((int(te.sum()), len(LABELS)), 1e-6)
        p_fun[:, clf.classes_] = clf.predict_proba(xs[te])
        cnn = cnn_probs(a.results, held, a.temperature)
        p_cnn = np.stack([cnn[k] for k in key[te]])
        labs = sorted(set(y[te].tolist()))
        names = [LABELS[i] for i in y[te]]
        high, low = np.isin(names, HIGH), np.isin(names, LOW)
        for w in weights:
            z = w * np.log(np.clip(p_cnn, 1e-6, 1)) + (1 - w) * np.log(np.clip(p_fun, 1e-6, 1))
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            own = np.full_like(p, -1.0)
            own[:, labs] = p[:, labs]
            ar = arousal_values(p)
            scores[w].append((uar(y[te], p.argmax(1), labs), uar(y[te], own.argmax(1), labs),
                              (np.mean(ar[high] > 0) + np.mean(ar[low] <= 0)) / 2))
    print("CNN weight | " + " | ".join(CORPORA) + " | mean (8-way / own labels / arousal)")
    for w in weights:
        cells = " | ".join(f"{s[0]:.3f}" for s in scores[w])
        mean = np.mean(scores[w], axis=0)
        print(f"{w:.2f} | {cells} | {mean[0]:.3f} / {mean[1]:.3f} / {mean[2]:.3f}")


if __name__ == "__main__":
    main()
