"""The prosody head beside the CNN: functionals of every window, a softmax regression, and its fusion weight.

What it does, in steps (each result is cached or written, so a step runs again in seconds):

1. ``monitor.dsp.functionals`` of every window the monitor's segmenter cuts from every clip of every corpus (the
   recording itself, as the CNN's held-out windows; a clip without a window is used whole, as the CNN's cache
   does). Cached per corpus under ``~/.cache/voice-monitor/prosody-<code>/``.
2. A class-balanced softmax regression on the functionals, each corpus standardised by its own statistics (what a
   run's survey measures). The loss of a window is taken over the labels its corpus has (a corpus without
   "calm" never teaches that calm is absent), and every corpus x label has the same total weight.
3. The fusion with the CNN's held-out probabilities (``models/results/<config>/cv_*.npz`` and ``loco_*.npz``,
   the shipped temperature applied), as the monitor does it (``monitor.inference.prosody``)::

       log p = w log p_cnn + (1 - w) log p_prosody

   in two settings: "run" (``score`` with the run's baseline: the CNN's lean and the functionals' statistics
   both from the run; here each held-out corpus of a result file is one run) and "alone" (one file, the live
   monitor, ``--baseline off``: the CNN judged alone, the functionals standardised by the training windows'
   statistics). The weight of each setting is chosen on the speaker-independent cross-validation (mean 8-way
   UAR over folds and corpora), then read on the corpora never heard (the regression trained on the other
   four).
4. The shipped head: trained on every window of every corpus, with the chosen weights, written to
   ``models/emotion.prosody.json``; the tables to ``models/results/prosody.json`` and ``models/PROSODY.md``.

    python -m training.prosody --data ../shared/data            # ~5 min the first time (2 cores), then seconds
"""

from __future__ import annotations

import argparse
import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.audio.convert import read_audio
from monitor.dsp.functionals import NAMES, functionals
from monitor.dsp.segmenter import segment_audio
from monitor.inference.baseline import BaselineOptions
from monitor.inference.prosody import ProsodyHead, fuse
from monitor.labels import LABELS
from training.corpora import KNOWN_CORPORA, Corpus, load_corpora
from training.dataset import DEFAULT_CACHE, framing_fingerprint, save_npz_atomic
from training.multi_metrics import corpus_scores, ece, fit_temperature, pool, with_temperature
from training.multi_report import _survey_rows, skewed_subset, with_run_baseline

WEIGHTS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0)
C = 0.1  # inverse L2 strength (per unit of mean sample weight)
N = len(LABELS)


def code_key() -> str:
    h = hashlib.sha1(framing_fingerprint().encode())
    h.update((Path(__file__).resolve().parents[1] / "monitor/dsp/functionals.py").read_bytes())
    return h.hexdigest()[:12]


def _clip_rows(path: str) -> np.ndarray:
    audio, _ = read_audio(path)
    windows = segment_audio(audio)
    if not windows:
        return functionals(audio)[None, :]
    return np.stack([functionals(w.audio) for w in windows])


@dataclass
class Windows:
    """Functionals of every window: ``x[i]`` of clip ``key[i]`` (``training.corpora.Record.key``)."""

    x: np.ndarray  # (n, len(NAMES)) float64
    key: np.ndarray  # (n,) str
    corpus: np.ndarray  # (n,) str
    label: np.ndarray  # (n,) int
    corpus_labels: dict[str, list[int]]


def corpus_windows(corpora: list[Corpus], cache: Path | None = None, jobs: int = 2, log=print) -> Windows:
    cache = Path(cache or DEFAULT_CACHE).expanduser() / f"prosody-{code_key()}"
    cache.mkdir(parents=True, exist_ok=True)
    xs, keys, names, labels = [], [], [], []
    for c in corpora:
        path = cache / f"{c.name}.npz"
        want = [r.key for r in c.records]
        z = None
        if path.exists():
            with np.load(path) as f:
                if list(f["clips"]) == want:
                    z = {k: f[k] for k in f.files}
        if z is None:
            log(f"prosody: functionals of {len(c.records)} clips of {c.name} ...")
            with ProcessPoolExecutor(jobs) as ex:
                rows = list(ex.map(_clip_rows, [str(r.path) for r in c.records], chunksize=32))
            z = {"x": np.concatenate(rows), "clips": np.array(want),
                 "key": np.concatenate([[r.key] * len(m) for r, m in zip(c.records, rows, strict=True)]),
                 "label": np.concatenate([[r.label] * len(m) for r, m in zip(c.records, rows, strict=True)])}
            save_npz_atomic(path, z)
        xs.append(z["x"].astype(np.float64))
        keys.append(z["key"])
        labels.append(z["label"])
        names.append(np.full(len(z["key"]), c.name))
    return Windows(np.concatenate(xs), np.concatenate(keys), np.concatenate(names),
                   np.concatenate(labels).astype(int), {c.name: c.labels for c in corpora})


def standardise_per(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    for g in np.unique(groups):
        m = groups == g
        out[m] = (x[m] - x[m].mean(axis=0)) / (x[m].std(axis=0) + 1e-6)
    return out


def fit_head(xs: np.ndarray, y: np.ndarray, corpus: np.ndarray, corpus_labels: dict[str, list[int]],
             mask: bool = True, c: float = C) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced softmax regression on standardised ``xs`` -> (coef (8, d), intercept (8,)). ``mask``: each
    window's softmax over the labels its corpus has."""
    from scipy.optimize import minimize

    n, d = xs.shape
    sw = np.zeros(n)
    for g in np.unique(corpus):
        for lab in np.unique(y[corpus == g]):
            m = (corpus == g) & (y == lab)
            sw[m] = 1.0 / m.sum()
    sw /= sw.mean()
    allowed = np.ones((n, N), bool)
    if mask:
        for g in np.unique(corpus):
            allowed[corpus == g] = np.isin(np.arange(N), corpus_labels[str(g)])
    onehot = np.eye(N)[y]
    xb = np.hstack([xs, np.ones((n, 1))])

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta.reshape(N, d + 1)
        z = np.where(allowed, xb @ w.T, -np.inf)
        zmax = z.max(axis=1, keepdims=True)
        e = np.exp(z - zmax)
        s = e.sum(axis=1, keepdims=True)
        p = e / s
        nll = -(np.sum(np.where(onehot > 0, z, 0.0), axis=1) - (zmax[:, 0] + np.log(s[:, 0])))
        reg = 0.5 * np.sum(w[:, :d] ** 2)
        g = c * ((p - onehot) * sw[:, None]).T @ xb
        g[:, :d] += w[:, :d]
        return float(reg + c * np.sum(sw * nll)), g.ravel()

    res = minimize(objective, np.zeros(N * (d + 1)), jac=True, method="L-BFGS-B", options={"maxiter": 3000})
    w = res.x.reshape(N, d + 1)
    return w[:, :d], w[:, d]


def head_from(coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, std: np.ndarray,
              weight_run: float = 0.75, weight_alone: float = 0.75, temperature_run: float = 1.0,
              temperature_alone: float = 1.0) -> ProsodyHead:
    return ProsodyHead(tuple(NAMES), tuple(map(float, mean)), tuple(map(float, std)),
                       tuple(tuple(map(float, r)) for r in coef), tuple(map(float, intercept)),
                       weight_run, weight_alone, temperature_run, temperature_alone)


def _align(win: Windows, keys: np.ndarray) -> np.ndarray:
    """Rows of ``win`` for a result file's windows (its clip keys, each clip's windows in order)."""
    where: dict[str, list[int]] = {}
    for i, k in enumerate(win.key):
        where.setdefault(str(k), []).append(i)
    seen: dict[str, int] = {}
    rows = []
    for k in keys:
        k = str(k)
        j = seen.get(k, 0)
        seen[k] = j + 1
        rows.append(where[k][min(j, len(where[k]) - 1)])
    mismatched = sum(1 for k, v in seen.items() if v != len(where[k]))
    if mismatched:
        print(f"prosody: {mismatched} clips have another window count than the CNN's results (nearest used)")
    return np.array(rows)


def evaluate_file(win: Windows, path: Path, temperature: float, masks: tuple[bool, ...] = (True, False)) -> dict:
    """Scores of one result file's held-out corpora for every setting, loss and weight:
    ``{setting: {mask: {weight: ({corpus: corpus_scores}, window probabilities)}}}``, and the windows' labels
    under ``"y"``."""
    with np.load(path) as z:
        keys = z["keys"]
        probs = with_temperature(z["probs_file"].astype(np.float64), temperature)
    rows = _align(win, keys)
    train = ~np.isin(win.key, list(set(map(str, keys))))
    runs = np.array([str(k).split(":", 1)[0] for k in keys])
    _, clip = np.unique(keys, return_inverse=True)
    y_win = win.label[rows]
    xs_train = standardise_per(win.x[train], win.corpus[train])
    pop_mean, pop_std = win.x[train].mean(axis=0), win.x[train].std(axis=0)
    x = win.x[rows]
    # "run60": runs in which neutral (TurEV: calm) makes 60 % of the clips (as natural speech might)
    subsets = {"run": np.arange(len(rows)), "alone": np.arange(len(rows)),
               "run60": np.flatnonzero(skewed_subset(y_win, clip, runs, 0.6))}
    out: dict = {s: {} for s in subsets}
    out["y"] = y_win
    for mask in masks:
        coef, icpt = fit_head(xs_train, win.label[train], win.corpus[train], win.corpus_labels, mask=mask)
        head = head_from(coef, icpt, pop_mean, pop_std)
        for setting, idx in subsets.items():
            c, r_, xi = clip[idx], runs[idx], x[idx]
            if setting == "alone":
                cnn = probs[idx].astype(np.float32)
                lp = head.log_probs(xi, pop_mean, pop_std)
            else:
                cnn = with_run_baseline(probs[idx], c, r_)
                # each run standardised by a survey of its files (at most 100, all their windows here)
                lp = np.zeros((len(idx), N))
                for r in np.unique(r_):
                    m = np.flatnonzero(r_ == r)
                    ids, inv = np.unique(c[m], return_inverse=True)
                    chosen = np.isin(inv, _survey_rows(len(ids), BaselineOptions().max_files))
                    lp[m] = head.log_probs(xi[m], xi[m][chosen].mean(axis=0), xi[m][chosen].std(axis=0))
            per_w = {}
            for w in WEIGHTS:
                p = fuse(cnn, lp, w)
                per_c = {}
                for r in np.unique(r_):
                    m = r_ == r
                    ids, pooled = pool(p[m], c[m])
                    first = np.array([np.flatnonzero(c[m] == i)[0] for i in ids])
                    per_c[str(r)] = corpus_scores(pooled, y_win[idx][m][first], win.corpus_labels[str(r)])
                per_w[w] = (per_c, p)
            out[setting][mask] = per_w
    return out


def _mean(scores: list[tuple[str, dict]], metric: str, corpus: str | None = None) -> float:
    return float(np.mean([s[metric] for c, s in scores if corpus is None or c == corpus]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--results", type=Path, default=Path("models/results/cnn2d-spknorm"))
    ap.add_argument("--model-dir", type=Path, default=Path("models"))
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    meta = json.loads((a.model_dir / "emotion.json").read_text())
    temperature = float(meta["temperature"])
    corpora = load_corpora(a.data, KNOWN_CORPORA)
    win = corpus_windows(corpora, jobs=a.jobs)
    print(f"prosody: {len(win.x)} windows of {len(corpora)} corpora")
    masks = (True, False)
    settings = ("run", "alone", "run60")
    cv: dict = {s: {m: {w: [] for w in WEIGHTS} for m in masks} for s in settings}
    cv_p: dict = {s: {m: {w: [] for w in WEIGHTS} for m in masks} for s in settings}
    cv_y: list[np.ndarray] = []
    for fold in sorted(a.results.glob("cv_*.npz")):
        res = evaluate_file(win, fold, temperature, masks)
        cv_y.append(res["y"])
        for s in settings:
            for m in masks:
                for w in WEIGHTS:
                    cv[s][m][w] += list(res[s][m][w][0].items())
                    cv_p[s][m][w].append(res[s][m][w][1])
        print(f"  {fold.name} done")
    loco: dict = {s: {m: {w: {} for w in WEIGHTS} for m in masks} for s in settings}
    for c in KNOWN_CORPORA:
        res = evaluate_file(win, a.results / f"loco_{c}.npz", temperature, masks)
        for s in settings:
            for m in masks:
                for w in WEIGHTS:
                    loco[s][m][w][c] = res[s][m][w][0][c]
        print(f"  loco {c} done")
    # the loss (masked or not) by the sum of both settings' best CV; each setting's weight within it
    best = {m: sum(max(_mean(cv[s][m][w], "uar8") for w in WEIGHTS) for s in ("run", "alone")) for m in masks}
    mask = max(masks, key=lambda m: best[m])
    chosen = {s: max(WEIGHTS, key=lambda w, s=s: _mean(cv[s][mask][w], "uar8")) for s in ("run", "alone")}
    chosen["run60"] = chosen["run"]  # the same runs as "run" (not a setting of its own): its weight
    y_cv = np.concatenate(cv_y)
    calibration = {}
    for s in ("run", "alone"):
        p_alone_cnn = np.concatenate(cv_p[s][mask][1.0])
        p = np.concatenate(cv_p[s][mask][chosen[s]])
        t = fit_temperature(p, y_cv)
        calibration[s] = {"ece_cnn": ece(p_alone_cnn, y_cv), "ece_fused": ece(p, y_cv), "temperature": t,
                          "ece_fused_scaled": ece(with_temperature(p, t), y_cv)}
    table = {s: {str(m): {str(w): {"cv_uar8": _mean(cv[s][m][w], "uar8"),
                                   "cv_per_corpus": {c: _mean(cv[s][m][w], "uar8", c) for c in KNOWN_CORPORA
                                                     if any(k == c for k, _ in cv[s][m][w])},
                                   "loco": {c: {k: loco[s][m][w][c][k] for k in ("uar8", "uar", "arousal_uar")}
                                            for c in KNOWN_CORPORA}}
                          for w in WEIGHTS} for m in masks} for s in settings}
    # the shipped head: every window of every corpus
    xs = standardise_per(win.x, win.corpus)
    coef, icpt = fit_head(xs, win.label, win.corpus, win.corpus_labels, mask=mask)
    head = head_from(coef, icpt, win.x.mean(axis=0), win.x.std(axis=0), chosen["run"], chosen["alone"],
                     calibration["run"]["temperature"], calibration["alone"]["temperature"])
    head.save(a.model_dir / "emotion.prosody.json",
              {"trained_on": list(KNOWN_CORPORA), "windows": int(len(win.x)), "c": C, "masked_loss": mask,
               "command": "python -m training.prosody --data ../shared/data"})
    (a.model_dir / "results").mkdir(exist_ok=True)
    summary = {"chosen": chosen, "masked_loss": mask, "calibration": calibration, "table": table}
    (a.model_dir / "results" / "prosody.json").write_text(json.dumps(summary, indent=1))
    from training.prosody_md import write_markdown

    write_markdown(a.model_dir / "PROSODY.md", chosen, mask, calibration, table, len(win.x))
    print(f"prosody: weights chosen on the CV: run {chosen['run']}, alone {chosen['alone']}; wrote "
          f"{a.model_dir / 'emotion.prosody.json'} and {a.model_dir / 'PROSODY.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
