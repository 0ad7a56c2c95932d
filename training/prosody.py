"""The prosody head beside the CNN: functionals of every window, a softmax regression, and its fusion weight.

What it does, in steps (each result is cached or written, so a step runs again in seconds):

1. ``monitor.dsp.functionals`` of every window the monitor's segmenter cuts from every clip of every corpus (the
   recording itself, as the CNN's held-out windows; a clip without a window is used whole, as the CNN's cache
   does). Cached per corpus under ``~/.cache/voice-monitor/prosody-<code>/``.
2. A class-balanced softmax regression on the functionals, standardised per corpus or per speaker, its loss over
   all eight labels or over each corpus's own (four heads; every corpus x label has the same total weight).
3. The fusion with the CNN's held-out probabilities (``models/results/<config>/cv_*.npz`` and ``loco_*.npz``,
   the shipped temperature applied), as the monitor does it (``monitor.inference.prosody``)::

       log p = w log p_cnn + (1 - w) log p_prosody

   each window standardised by ``VoiceStats``'s arithmetic (``running_stats``) in the settings of
   ``evaluate_file``: a `score` run of clips (the run's statistics as the prior), a clip alone, a speaker's clips
   as a live session (the training windows' as the prior), and runs / sessions 60 % neutral. The head, and the
   weight of each prior, are chosen on the speaker-independent cross-validation (mean 8-way UAR over folds and
   corpora), then read on the corpora never heard (the regression trained on the other four); a temperature per
   prior is fitted on the CV's windows.
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
from monitor.inference.prosody import PRIOR_WINDOWS, ProsodyHead, fuse
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
    speaker: np.ndarray  # (n,) str, "corpus/speaker"


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
    spk = {r.key: f"{c.name}/{r.speaker}" for c in corpora for r in c.records}
    key = np.concatenate(keys)
    return Windows(np.concatenate(xs), key, np.concatenate(names), np.concatenate(labels).astype(int),
                   {c.name: c.labels for c in corpora}, np.array([spk[str(k)] for k in key]))


def running_stats(x: np.ndarray, groups: np.ndarray, order: np.ndarray, prior_mean: np.ndarray,
                  prior_std: np.ndarray, prior_windows: float = PRIOR_WINDOWS) -> tuple[np.ndarray, np.ndarray]:
    """Each window's mean and spread as ``monitor.inference.prosody.VoiceStats`` gives them (its group a session
    heard in ``order``, the window itself included, shrunk towards the prior: rows of ``prior_mean`` /
    ``prior_std``, one per window, or one for all)."""
    mean, std = np.zeros_like(x), np.zeros_like(x)
    m0 = np.broadcast_to(prior_mean, x.shape)
    v0 = np.broadcast_to(prior_std, x.shape) ** 2
    for g in np.unique(groups):
        idx = order[groups[order] == g]
        n = np.arange(1, len(idx) + 1)[:, None]
        m = np.cumsum(x[idx], axis=0) / n
        v = np.maximum(np.cumsum(x[idx] ** 2, axis=0) / n - m**2, 0.0)
        lam = n / (n + prior_windows)
        mean[idx] = lam * m + (1 - lam) * m0[idx]
        std[idx] = np.sqrt(lam * v + (1 - lam) * v0[idx])
    return mean, std


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


SETTINGS = ("run", "alone", "session", "run60", "session60")
HEADS = (("corpus", True), ("corpus", False), ("speaker", True), ("speaker", False))  # (standardised by, masked)


def evaluate_file(win: Windows, path: Path, temperature: float, heads: tuple[tuple[str, bool], ...] = HEADS,
                  reg: float = C) -> dict:
    """Scores of one result file's held-out windows, as the monitor judges them, for every setting, head and
    weight: ``{setting: {head: {weight: ({corpus: corpus_scores}, window probabilities)}}}``, and each
    setting's windows' labels under ``("y", setting)``. Settings (each window standardised by ``VoiceStats``'s
    arithmetic, ``running_stats``):

    - run: each clip a file of a `score` run (each held-out corpus one run): the CNN with the run's baseline,
      the file's voice over the run's statistics (a survey of at most 100 files);
    - alone: each clip a file judged alone (one file, ``--baseline off``): over the training windows';
    - session: each speaker's clips one live session, heard in a random order (the CNN normalised as heard):
      over the training windows';
    - run60 / session60: the same in runs / sessions in which neutral (TurEV: calm) is 60 % of the clips."""
    with np.load(path) as z:
        keys = z["keys"]
        p_file = with_temperature(z["probs_file"].astype(np.float64), temperature)
        p_live = with_temperature(z["probs_live"].astype(np.float64), temperature)
    rows = _align(win, keys)
    train = ~np.isin(win.key, list(set(map(str, keys))))
    runs = np.array([str(k).split(":", 1)[0] for k in keys])
    _, clip = np.unique(keys, return_inverse=True)
    y_win, spk, x = win.label[rows], win.speaker[rows], win.x[rows]
    pop_mean, pop_std = win.x[train].mean(axis=0), win.x[train].std(axis=0)
    rng = np.random.default_rng(0)
    rank = rng.permutation(clip.max() + 1)  # a live session hears its clips in a random order
    heard_at = np.empty(len(clip), dtype=int)  # each window's place in its session
    heard_at[np.lexsort((np.arange(len(clip)), rank[clip]))] = np.arange(len(clip))
    subsets = {"run": np.arange(len(rows)), "alone": np.arange(len(rows)), "session": np.arange(len(rows)),
               "run60": np.flatnonzero(skewed_subset(y_win, clip, runs, 0.6)),
               "session60": np.flatnonzero(skewed_subset(y_win, clip, spk, 0.6))}
    inputs = {}  # setting -> (CNN probabilities, mean, spread) of its windows
    for setting, idx in subsets.items():
        c, r_, xi = clip[idx], runs[idx], x[idx]
        if setting.startswith("session"):
            mean, std = running_stats(xi, spk[idx], np.argsort(heard_at[idx], kind="stable"), pop_mean, pop_std)
            inputs[setting] = (p_live[idx], mean, std)
        elif setting == "alone":
            mean, std = running_stats(xi, c, np.arange(len(idx)), pop_mean, pop_std)
            inputs[setting] = (p_file[idx].astype(np.float32), mean, std)
        else:
            prior_m, prior_s = np.zeros_like(xi), np.zeros_like(xi)
            for r in np.unique(r_):  # each run standardised by a survey of its files (at most 100)
                m = np.flatnonzero(r_ == r)
                ids, inv = np.unique(c[m], return_inverse=True)
                chosen = np.isin(inv, _survey_rows(len(ids), BaselineOptions().max_files))
                prior_m[m], prior_s[m] = xi[m][chosen].mean(axis=0), xi[m][chosen].std(axis=0)
            mean, std = running_stats(xi, c, np.arange(len(idx)), prior_m, prior_s)
            inputs[setting] = (with_run_baseline(p_file[idx], c, r_), mean, std)
    out: dict = {s: {} for s in subsets}
    for s_name, idx in subsets.items():
        out[("y", s_name)] = y_win[idx]
    for by, mask in heads:
        groups = win.corpus[train] if by == "corpus" else win.speaker[train]
        coef, icpt = fit_head(standardise_per(win.x[train], groups), win.label[train], win.corpus[train],
                              win.corpus_labels, mask=mask, c=reg)
        head = head_from(coef, icpt, pop_mean, pop_std)
        for setting, idx in subsets.items():
            cnn, mean, std = inputs[setting]
            lp = head.log_probs(x[idx], mean, std)
            c, r_, yi = clip[idx], runs[idx], y_win[idx]
            per_w = {}
            for w in WEIGHTS:
                p = fuse(cnn, lp, w)
                per_c = {}
                for r in np.unique(r_):
                    m = r_ == r
                    ids, pooled = pool(p[m], c[m])
                    first = np.array([np.flatnonzero(c[m] == i)[0] for i in ids])
                    per_c[str(r)] = corpus_scores(pooled, yi[m][first], win.corpus_labels[str(r)])
                per_w[w] = (per_c, p)
            out[setting][(by, mask)] = per_w
    return out


def _mean(scores: list[tuple[str, dict]], metric: str, corpus: str | None = None) -> float:
    return float(np.mean([s[metric] for c, s in scores if corpus is None or c == corpus]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--results", type=Path, default=Path("models/results/cnn2d-spknorm"))
    ap.add_argument("--model-dir", type=Path, default=Path("models"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--c", type=float, default=C, help=f"inverse L2 strength of the regression (default {C})")
    a = ap.parse_args(argv)
    meta = json.loads((a.model_dir / "emotion.json").read_text())
    temperature = float(meta["temperature"])
    corpora = load_corpora(a.data, KNOWN_CORPORA)
    win = corpus_windows(corpora, jobs=a.jobs)
    print(f"prosody: {len(win.x)} windows of {len(corpora)} corpora")
    hk = {h: f"{h[0]}/{'masked' if h[1] else 'all labels'}" for h in HEADS}  # printable head names
    cv: dict = {s: {h: {w: [] for w in WEIGHTS} for h in HEADS} for s in SETTINGS}
    cv_p: dict = {s: {h: {w: [] for w in WEIGHTS} for h in HEADS} for s in SETTINGS}
    cv_y: dict = {s: [] for s in SETTINGS}
    for fold in sorted(a.results.glob("cv_*.npz")):
        res = evaluate_file(win, fold, temperature, reg=a.c)
        for s in SETTINGS:
            cv_y[s].append(res[("y", s)])
            for h in HEADS:
                for w in WEIGHTS:
                    cv[s][h][w] += list(res[s][h][w][0].items())
                    cv_p[s][h][w].append(res[s][h][w][1])
        print(f"  {fold.name} done")
    loco: dict = {s: {h: {w: {} for w in WEIGHTS} for h in HEADS} for s in SETTINGS}
    for c in KNOWN_CORPORA:
        res = evaluate_file(win, a.results / f"loco_{c}.npz", temperature, reg=a.c)
        for s in SETTINGS:
            for h in HEADS:
                for w in WEIGHTS:
                    loco[s][h][w][c] = res[s][h][w][0][c]
        print(f"  loco {c} done")
    # the head by the sum of the three main settings' best CV; the weight of each prior within it: the run's on
    # "run", the training windows' on the mean of "alone" and "session"
    best = {h: sum(max(_mean(cv[s][h][w], "uar8") for w in WEIGHTS) for s in ("run", "alone", "session"))
            for h in HEADS}
    head_choice = max(HEADS, key=lambda h: best[h])
    w_run = max(WEIGHTS, key=lambda w: _mean(cv["run"][head_choice][w], "uar8"))
    w_alone = max(WEIGHTS, key=lambda w: _mean(cv["alone"][head_choice][w], "uar8")
                  + _mean(cv["session"][head_choice][w], "uar8"))
    chosen = {"run": w_run, "run60": w_run, "alone": w_alone, "session": w_alone, "session60": w_alone}
    calibration = {}
    for prior, settings in (("run", ("run",)), ("alone", ("alone", "session"))):
        y = np.concatenate([np.concatenate(cv_y[s]) for s in settings])
        p_cnn = np.concatenate([np.concatenate(cv_p[s][head_choice][1.0]) for s in settings])
        p = np.concatenate([np.concatenate(cv_p[s][head_choice][chosen[prior]]) for s in settings])
        t = fit_temperature(p, y)
        calibration[prior] = {"ece_cnn": ece(p_cnn, y), "ece_fused": ece(p, y), "temperature": t,
                              "ece_fused_scaled": ece(with_temperature(p, t), y)}
    table = {s: {hk[h]: {str(w): {"cv_uar8": _mean(cv[s][h][w], "uar8"),
                                  "cv_per_corpus": {c: _mean(cv[s][h][w], "uar8", c) for c in KNOWN_CORPORA
                                                    if any(k == c for k, _ in cv[s][h][w])},
                                  "loco": {c: {k: loco[s][h][w][c][k] for k in ("uar8", "uar", "arousal_uar")}
                                           for c in KNOWN_CORPORA}}
                         for w in WEIGHTS} for h in HEADS} for s in SETTINGS}
    # the shipped head: every window of every corpus
    by, mask = head_choice
    xs = standardise_per(win.x, win.corpus if by == "corpus" else win.speaker)
    coef, icpt = fit_head(xs, win.label, win.corpus, win.corpus_labels, mask=mask, c=a.c)
    head = head_from(coef, icpt, win.x.mean(axis=0), win.x.std(axis=0), chosen["run"], chosen["alone"],
                     calibration["run"]["temperature"], calibration["alone"]["temperature"])
    head.save(a.model_dir / "emotion.prosody.json",
              {"emotion_sha256": meta["tflite_sha256"], "trained_on": list(KNOWN_CORPORA),
               "windows": int(len(win.x)), "c": a.c, "masked_loss": mask,
               "standardised_by": by, "command": "python -m training.prosody --data ../shared/data"})
    (a.model_dir / "results").mkdir(exist_ok=True)
    summary = {"chosen": chosen, "head": hk[head_choice], "masked_loss": mask, "standardised_by": by,
               "calibration": calibration, "table": table}
    (a.model_dir / "results" / "prosody.json").write_text(json.dumps(summary, indent=1))
    from training.prosody_md import write_markdown

    write_markdown(a.model_dir / "PROSODY.md", chosen, hk[head_choice], calibration, table, len(win.x))
    print(f"prosody: weights chosen on the CV: run {chosen['run']}, alone {chosen['alone']}; wrote "
          f"{a.model_dir / 'emotion.prosody.json'} and {a.model_dir / 'PROSODY.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
