"""Probe (not shipped): do prosodic functionals add to the CNN on corpora it never heard?

eGeMAPS v02 functionals (88 per clip: pitch, jitter, shimmer, HNR, formants, loudness, spectral balance, MFCC 1-4,
voiced-segment rates; openSMILE) of every clip, standardised per corpus (what a run's survey could measure), a
class-balanced logistic regression trained on four corpora and scored on the fifth, alone and fused with the
shipped configuration's held-out probabilities (the run's baseline taken out, as ``score`` does):
``log p = w log p_cnn + (1 - w) log p_functionals``. The weight is chosen on the speaker-independent
cross-validation (the folds of the CNN's ``cv_*.npz``: the regression trains on every clip not held out by the
fold), then read on the leave-one-corpus-out runs: 8-way UAR per held-out corpus, over its own labels, and
binary arousal.

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


def _table(cache: Path, data: Path, compute) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features, corpus, key, emotion) of every clip of the manifests: ``compute(paths)`` -> features, cached."""
    if cache.exists():
        z = np.load(cache)
        return z["x"], z["corpus"], z["key"], z["emotion"]
    rows = []
    for name in CORPORA:
        with (data / name / "manifest.csv").open(newline="") as f:
            rows += [(name, r["path"], r["emotion"]) for r in csv.DictReader(f)]
    x = compute([str(data / n / p) for n, p, _ in rows])
    corpus = np.array([r[0] for r in rows])
    key = np.array([clip_key(r[0], r[1]) for r in rows])
    emotion = np.array([r[2] for r in rows])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, x=x, corpus=corpus, key=key, emotion=emotion)
    return x, corpus, key, emotion


def functionals(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """openSMILE's eGeMAPS v02 functionals of every clip, cached."""

    def compute(paths: list[str]) -> np.ndarray:
        import opensmile
        import soundfile as sf

        smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                feature_level=opensmile.FeatureLevel.Functionals)
        x = np.zeros((len(paths), 88), np.float32)
        for i, path in enumerate(paths):
            audio, rate = sf.read(path, dtype="float32", always_2d=True)
            x[i] = smile.process_signal(audio.mean(axis=1), rate).values[0]
        return x

    return _table(CACHE, data, compute)


def numpy_functionals(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The same table from ``monitor.dsp.functionals`` (numpy; the monitor's own audio reader), cached."""

    def compute(paths: list[str]) -> np.ndarray:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(2) as ex:
            return np.stack(list(ex.map(_clip_functionals, paths, chunksize=64)))

    return _table(NUMPY_CACHE, data, compute)


def _clip_functionals(path: str) -> np.ndarray:
    from monitor.audio.convert import read_audio
    from monitor.dsp.functionals import functionals as numpy_table

    audio, _ = read_audio(path)
    return numpy_table(audio)


def per_corpus(x: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float64)
    for c in np.unique(corpus):
        m = corpus == c
        out[m] = (x[m] - x[m].mean(axis=0)) / (x[m].std(axis=0) + 1e-6)
    return out


def cnn_probs(path: Path, temperature: float) -> dict[str, np.ndarray]:
    """Clip key -> a result file's held-out probabilities, each corpus's clips one run whose baseline is taken
    out (what ``score`` does)."""
    with np.load(path) as z:
        keys, probs = z["keys"], with_temperature(z["probs_file"].astype(np.float64), temperature)
    _, clip = np.unique(keys, return_inverse=True)
    runs = np.array([k.split(":", 1)[0] for k in keys])
    ids, pooled = pool(with_run_baseline(probs, clip, runs), clip)
    return dict(zip(np.unique(keys), pooled, strict=True))


WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def scores_of(test: np.ndarray, train: np.ndarray, xs: np.ndarray, y: np.ndarray, corpus: np.ndarray,
              key: np.ndarray, cnn: dict[str, np.ndarray]) -> dict[str, dict[float, tuple[float, float, float]]]:
    """Train the regression on ``train``, fuse with the CNN on ``test``: per held-out corpus and CNN weight,
    (8-way UAR, UAR over own labels, binary arousal)."""
    from sklearn.linear_model import LogisticRegression

    sw = np.zeros(int(train.sum()))
    for c in np.unique(corpus[train]):  # each corpus x label the same total weight
        for lab in np.unique(y[train][corpus[train] == c]):
            m = (corpus[train] == c) & (y[train] == lab)
            sw[m] = 1.0 / m.sum()
    clf = LogisticRegression(max_iter=2000, C=0.1).fit(xs[train], y[train], sample_weight=sw / sw.mean())
    p_fun_all = np.full((int(test.sum()), len(LABELS)), 1e-6)
    p_fun_all[:, clf.classes_] = clf.predict_proba(xs[test])
    out: dict[str, dict[float, tuple[float, float, float]]] = {}
    for held in np.unique(corpus[test]):
        m = corpus[test] == held
        p_fun = p_fun_all[m]
        p_cnn = np.stack([cnn[k] for k in key[test][m]])
        yt = y[test][m]
        labs = sorted(set(yt.tolist()))
        names = [LABELS[i] for i in yt]
        high, low = np.isin(names, HIGH), np.isin(names, LOW)
        out[str(held)] = {}
        for w in WEIGHTS:
            z = w * np.log(np.clip(p_cnn, 1e-6, 1)) + (1 - w) * np.log(np.clip(p_fun, 1e-6, 1))
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            own = np.full_like(p, -1.0)
            own[:, labs] = p[:, labs]
            ar = arousal_values(p)
            out[str(held)][w] = (uar(yt, p.argmax(1), labs), uar(yt, own.argmax(1), labs),
                                 (np.mean(ar[high] > 0) + np.mean(ar[low] <= 0)) / 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--results", type=Path, default=Path("models/results/cnn2d-spknorm"))
    ap.add_argument("--temperature", type=float, default=1.447)
    ap.add_argument("--features", choices=("egemaps", "numpy"), default="egemaps",
                    help="openSMILE's eGeMAPS, or monitor.dsp.functionals (numpy)")
    a = ap.parse_args()
    x, corpus, key, emotion = (functionals if a.features == "egemaps" else numpy_functionals)(a.data)
    y = np.array([LABELS.index(e) for e in emotion])
    xs = per_corpus(x.astype(np.float64), corpus)
    # the cross-validation's folds (the CNN's result files name their held-out clips): the weight is chosen here
    cv: dict[float, list[float]] = {w: [] for w in WEIGHTS}
    for fold in sorted(a.results.glob("cv_*.npz")):
        cnn = cnn_probs(fold, a.temperature)
        test = np.isin(key, list(cnn))
        for per in scores_of(test, ~test, xs, y, corpus, key, cnn).values():
            for w in WEIGHTS:
                cv[w].append(per[w][0])
    loco: dict[float, list[tuple[float, float, float]]] = {w: [] for w in WEIGHTS}
    for held in CORPORA:
        cnn = cnn_probs(a.results / f"loco_{held}.npz", a.temperature)
        per = scores_of(corpus == held, corpus != held, xs, y, corpus, key, cnn)[held]
        for w in WEIGHTS:
            loco[w].append(per[w])
    chosen = max(WEIGHTS, key=lambda w: float(np.mean(cv[w]))) if any(cv.values()) else None
    print("CNN weight | CV 8-way (mean over folds and corpora) | leave-one-corpus-out: " + " | ".join(CORPORA)
          + " | mean (8-way / own labels / arousal)")
    for w in WEIGHTS:
        cells = " | ".join(f"{s[0]:.3f}" for s in loco[w])
        mean = np.mean(loco[w], axis=0)
        mark = " (chosen on the CV)" if w == chosen else ""
        cvm = f"{np.mean(cv[w]):.3f}" if cv[w] else "-"
        print(f"{w:.2f}{mark} | {cvm} | {cells} | {mean[0]:.3f} / {mean[1]:.3f} / {mean[2]:.3f}")


if __name__ == "__main__":
    main()
