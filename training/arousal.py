"""A learned arousal head: a binary (high vs low) logistic regression on the prosody functionals, blended with the
arousal the fused probabilities give.

The monitor's arousal is the probability-weighted mean of circumplex placements (``monitor.affect``); the 8-way
head is not trained for arousal. Here a class-balanced (every corpus x arousal class the same total weight)
logistic regression reads the same 40 functionals the prosody head reads, standardised the same way (per corpus
in training; per voice, ``VoiceStats``'s arithmetic, when judged), and says ``a_head = 2 P(high) - 1``. The
window's arousal becomes::

    arousal = b * a_head + (1 - b) * a_probs

with ``a_probs`` the arousal of the shipped fusion's probabilities (``models/emotion.prosody.json``'s weights and
temperatures). Disgust, and labels neither high nor low, are not trained on nor scored. Clip level: a clip's
windows' arousal averaged, its sign read. The head's standardisation (per corpus or per speaker), its L2
strength and ``b`` are chosen on the speaker-independent CV (the sum over the run / alone / session settings of
``training.prosody.evaluate_file`` of the mean balanced accuracy over folds and corpora), then read on the
corpora never heard (the head trained on the other four). The 8-way judgement does not change.

A variant also reads the CNN's own arousal (its probabilities before the fusion; trained on the CV folds'
held-out outputs). Beside the balanced accuracy, the clip-level AUC (threshold-free) says whether a head ranks
the clips worse or only places the threshold worse.

Adopted only if the chosen head gains at least 0.03 on that CV sum over ``b = 0`` (the shipped arousal); then the
head trained on every window is written to ``<model-dir>/emotion.arousal.json``. The tables go to
``<out>/results/arousal.json`` and ``<out>/AROUSAL.md`` either way. Not adopted on its first run (2026-12-01: the
CV prefers b = 0 for every head), so the monitor has no reader of that file.

    python -m training.arousal --data ../shared/data --out /tmp/arousal   # ~1 min (functionals cached)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.affect import HIGH_AROUSAL, LOW_AROUSAL
from monitor.dsp.functionals import NAMES
from monitor.inference.prosody import fuse
from monitor.labels import LABELS
from training.corpora import KNOWN_CORPORA, load_corpora
from training.multi_metrics import arousal_values, with_temperature
from training.prosody import MlpOptions, Windows, _align, _fit, corpus_windows, head_from, held_out, standardise_per

SETTINGS = ("run", "alone", "session", "run60", "session60")
MAIN = ("run", "alone", "session")
BLENDS = tuple(round(0.1 * i, 1) for i in range(11))
# (standardised by, L2 C, reads the CNN's own arousal too)
VARIANTS = tuple((by, c, cnn) for cnn in (False, True) for by in ("corpus", "speaker") for c in (0.01, 0.1, 1.0))
GAIN = 0.03  # the rule fixed before the run
HIGH_IDX = np.array([lab in HIGH_AROUSAL for lab in LABELS])
LOW_IDX = np.array([lab in LOW_AROUSAL for lab in LABELS])


@dataclass(frozen=True)
class ArousalHead:
    """``a_head = 2 P(high) - 1 = tanh((coef @ clip((f - mean) / std, -6, 6) + coef_cnn a_cnn + intercept) / 2)``;
    the arousal written: ``blend * a_head + (1 - blend) * a_probs``."""

    names: tuple[str, ...]
    mean: tuple[float, ...]  # the training windows' statistics
    std: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    blend: float = 0.0
    emotion_sha256: str = ""
    coef_cnn: float = 0.0  # weight of the CNN's own arousal, if it reads it

    def arousal(self, f: np.ndarray, mean: np.ndarray, std: np.ndarray, a_cnn: np.ndarray | float = 0.0) -> np.ndarray:
        x = np.clip((np.asarray(f, dtype=np.float64) - mean) / (np.asarray(std) + 1e-6), -6.0, 6.0)
        return np.tanh(0.5 * (x @ np.asarray(self.coef) + self.coef_cnn * np.asarray(a_cnn) + self.intercept))

    def save(self, path: Path, extra: dict | None = None) -> None:
        d = {"kind": "arousal-logistic-v1", "features": list(self.names), "mean": list(self.mean),
             "std": list(self.std), "coef": list(self.coef), "coef_cnn": self.coef_cnn, "intercept": self.intercept,
             "blend": self.blend, "emotion_sha256": self.emotion_sha256, **(extra or {})}
        Path(path).write_text(json.dumps(d, indent=1) + "\n")


def fit_arousal(xs: np.ndarray, high: np.ndarray, corpus: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Class-balanced (corpus x arousal class) logistic regression, L2 on the coefficients -> (coef, intercept)."""
    from scipy.optimize import minimize

    n, d = xs.shape
    sw = np.zeros(n)
    for g in np.unique(corpus):
        for h in (False, True):
            m = (corpus == g) & (high == h)
            if m.any():
                sw[m] = 1.0 / m.sum()
    sw /= sw.mean()
    t = high.astype(np.float64)
    xb = np.hstack([xs, np.ones((n, 1))])

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = xb @ theta
        nll = np.logaddexp(0.0, z) - t * z
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        g = c * xb.T @ (sw * (p - t))
        g[:d] += theta[:d]
        return float(0.5 * theta[:d] @ theta[:d] + c * np.sum(sw * nll)), g

    res = minimize(objective, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 3000})
    return res.x[:d], float(res.x[d])


def scored(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose label is high or low arousal, and which are high."""
    return HIGH_IDX[label] | LOW_IDX[label], HIGH_IDX[label]


def train_head(win: Windows, rows: np.ndarray, by: str, c: float, cnn: bool = False,
               a_cnn: np.ndarray | None = None) -> ArousalHead:
    """The head on windows ``rows``; with ``cnn``, the CNN's held-out arousal of every window (``a_cnn``, NaN
    where none) is one more input (windows without it left out)."""
    use, high = scored(win.label[rows])
    if cnn:
        use &= np.isfinite(a_cnn[rows])
    rows, high = rows[use], high[use]
    groups = win.corpus[rows] if by == "corpus" else win.speaker[rows]
    xs = np.clip(standardise_per(win.x[rows], groups), -6.0, 6.0)
    if cnn:
        xs = np.hstack([xs, a_cnn[rows][:, None]])
    coef, icpt = fit_arousal(xs, high, win.corpus[rows], c)
    return ArousalHead(tuple(NAMES), tuple(map(float, win.x[rows].mean(axis=0))),
                       tuple(map(float, win.x[rows].std(axis=0))), tuple(map(float, coef[:len(NAMES)])), icpt,
                       0.0, "", float(coef[len(NAMES)]) if cnn else 0.0)


def held_out_cnn_arousal(win: Windows, results: Path, temperature: float) -> np.ndarray:
    """Each window's arousal by the CNN that did not hear its speaker (the CV folds' ``probs_file``, the shipped
    temperature), NaN for a window no fold holds."""
    out = np.full(len(win.x), np.nan)
    for fold in sorted(results.glob("cv_*.npz")):
        with np.load(fold) as z:
            rows = _align(win, z["keys"])
            out[rows] = arousal_values(with_temperature(z["probs_file"].astype(np.float64), temperature))
    return out


def clip_means(a: np.ndarray, clip: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A clip's windows' mean arousal, and the clip's label."""
    ids, inv = np.unique(clip, return_inverse=True)
    lab = np.zeros(len(ids), dtype=int)
    lab[inv] = label
    return np.bincount(inv, weights=a) / np.bincount(inv), lab


def auc(a: np.ndarray, clip: np.ndarray, label: np.ndarray) -> float:
    """Clip-level area under the ROC curve of high vs low arousal (threshold-free: how well the clips are ranked)."""
    from scipy.stats import rankdata

    mean, lab = clip_means(a, clip, label)
    hi, lo = HIGH_IDX[lab], LOW_IDX[lab]
    if not hi.any() or not lo.any():
        return float("nan")
    r = rankdata(mean[hi | lo])[hi[hi | lo]]
    return float((r.sum() - hi.sum() * (hi.sum() + 1) / 2) / (hi.sum() * lo.sum()))


def oracle_balanced(a: np.ndarray, clip: np.ndarray, label: np.ndarray) -> float:
    """The balanced accuracy at the best threshold for these clips (an oracle: what placing the centre per corpus
    could give at most; not a method)."""
    mean, lab = clip_means(a, clip, label)
    hi, lo = HIGH_IDX[lab], LOW_IDX[lab]
    if not hi.any() or not lo.any():
        return float("nan")
    cuts = np.concatenate([[-np.inf], np.sort(mean[hi | lo])])
    return float(max(0.5 * (np.mean(mean[hi] > t) + np.mean(mean[lo] <= t)) for t in cuts))


def balanced(a: np.ndarray, clip: np.ndarray, label: np.ndarray) -> float:
    """Clip-level balanced accuracy of the sign of the clips' mean window arousal (high > 0, low <= 0)."""
    ids, inv = np.unique(clip, return_inverse=True)
    mean = np.bincount(inv, weights=a) / np.bincount(inv)
    lab = np.zeros(len(ids), dtype=int)
    lab[inv] = label
    hi, lo = HIGH_IDX[lab], LOW_IDX[lab]
    rec = ([float(np.mean(mean[hi] > 0))] if hi.any() else []) + ([float(np.mean(mean[lo] <= 0))] if lo.any() else [])
    return float(np.mean(rec)) if rec else float("nan")


def evaluate_file(win: Windows, path: Path, temperature: float, shipped: dict, a_cnn: np.ndarray) -> dict:
    """Binary arousal of one result file's held-out windows in every setting of ``training.prosody.evaluate_file``
    (the same standardisation, the same CNN inputs): ``{setting: {"probs": {corpus: score}, "probs_no_t": ...,
    variant: {b: {corpus: score}}}}``."""
    h = held_out(win, path, temperature)
    train, clip, runs, y_win, x, subsets, inputs = h.train, h.clip, h.runs, h.y, h.x, h.subsets, h.inputs
    pop_mean, pop_std = h.pop_mean, h.pop_std
    tr = np.flatnonzero(train)
    # the shipped head's recipe (a softmax regression, or a hidden layer before it) on this file's training windows
    groups = win.corpus[tr] if shipped["by"] == "corpus" else win.speaker[tr]
    prosody = head_from(*_fit(standardise_per(win.x[tr], groups), win.label[tr], win.corpus[tr], win.corpus_labels,
                              (shipped["by"], shipped["masked"], shipped["hidden"]), shipped["c"],
                              MlpOptions(shipped["activation"], shipped["seeds"], shipped["hidden_c"])),
                        pop_mean, pop_std)
    heads = {v: train_head(win, tr, *v, a_cnn=a_cnn) for v in VARIANTS}
    out: dict = {}
    for setting, idx in subsets.items():
        cnn, mean, std = inputs[setting]
        lp = prosody.log_probs(x[idx], mean, std)
        prior = "run" if setting.startswith("run") else "alone"
        w, t = shipped[f"weight_{prior}"], shipped[f"temperature_{prior}"]
        a_probs = arousal_values(fuse(cnn, lp, w, t).astype(np.float64))
        a_no_t = arousal_values(fuse(cnn, lp, w).astype(np.float64))
        c, r_, yi = clip[idx], runs[idx], y_win[idx]
        res: dict = {"probs": {}, "probs_no_t": {}, "auc_probs": {}, "oracle_probs": {}}
        for r in np.unique(r_):
            m = r_ == r
            res["probs"][str(r)] = balanced(a_probs[m], c[m], yi[m])
            res["auc_probs"][str(r)] = auc(a_probs[m], c[m], yi[m])
            res["oracle_probs"][str(r)] = oracle_balanced(a_probs[m], c[m], yi[m])
            res["probs_no_t"][str(r)] = balanced(a_no_t[m], c[m], yi[m])
        for v, head in heads.items():
            a_head = head.arousal(x[idx], mean, std, arousal_values(np.asarray(cnn, dtype=np.float64)))
            res[v] = {b: {str(r): balanced((b * a_head + (1 - b) * a_probs)[r_ == r], c[r_ == r], yi[r_ == r])
                          for r in np.unique(r_)} for b in BLENDS}
            res[("auc", v)] = {str(r): auc(a_head[r_ == r], c[r_ == r], yi[r_ == r]) for r in np.unique(r_)}
        out[setting] = res
    return out


def vname(v: tuple) -> str:
    return f"{v[0]}/C={v[1]}" + ("/+CNN" if v[2] else "")


def _cv_mean(folds: list[dict], setting: str, what, b: float | None = None) -> float:
    vals = []
    for f in folds:
        d = f[setting][what]
        vals += list((d[b] if b is not None else d).values())
    return float(np.mean(vals))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--results", type=Path, default=Path("models/results/cnn2d-spknorm"))
    ap.add_argument("--model-dir", type=Path, default=Path("models"))
    ap.add_argument("--out", type=Path, default=None, help="where the tables go (default: --model-dir)")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    t0 = time.time()
    out_dir = a.out or a.model_dir
    meta = json.loads((a.model_dir / "emotion.json").read_text())
    pm = json.loads((a.model_dir / "emotion.prosody.json").read_text())
    shipped = {"by": pm["standardised_by"], "masked": bool(pm["masked_loss"]), "c": float(pm["c"]),
               "hidden": int(pm.get("hidden", 0)), "activation": str(pm.get("activation", "tanh")),
               "seeds": int(pm.get("seeds", 1)), "hidden_c": float(pm.get("hidden_c", pm["c"])),
               "weight_run": float(pm["weight_run"]), "weight_alone": float(pm["weight_alone"]),
               "temperature_run": float(pm["temperature_run"]), "temperature_alone": float(pm["temperature_alone"])}
    temperature = float(meta["temperature"])
    win = corpus_windows(load_corpora(a.data, KNOWN_CORPORA), jobs=a.jobs)
    print(f"arousal: {len(win.x)} windows")
    a_cnn = held_out_cnn_arousal(win, a.results, temperature)
    folds = []
    for fold in sorted(a.results.glob("cv_*.npz")):
        folds.append(evaluate_file(win, fold, temperature, shipped, a_cnn))
        print(f"  {fold.name} done ({time.time() - t0:.0f} s)")
    base = {s: _cv_mean(folds, s, "probs") for s in SETTINGS}
    base_no_t = {s: _cv_mean(folds, s, "probs_no_t") for s in SETTINGS}
    cv = {v: {b: {s: _cv_mean(folds, s, v, b) for s in SETTINGS} for b in BLENDS} for v in VARIANTS}
    total = {(v, b): sum(cv[v][b][s] for s in MAIN) for v in VARIANTS for b in BLENDS}
    v_best, b_best = max(total, key=lambda k: total[k])
    base_total = sum(base[s] for s in MAIN)
    gain = total[(v_best, b_best)] - base_total
    adopted = gain >= GAIN
    print(f"arousal: chosen on the CV: {vname(v_best)}, b={b_best}; CV sum {total[(v_best, b_best)]:.3f}"
          f" vs shipped {base_total:.3f} (gain {gain:+.3f}) -> {'adopted' if adopted else 'not adopted'}")
    cv_per_corpus = {s: {lab: {c: float(np.mean([f[s][what][c] if b is None else f[s][what][b][c]
                                                 for f in folds if c in f[s]["probs"]]))
                               for c in KNOWN_CORPORA if any(c in f[s]["probs"] for f in folds)}
                         for lab, what, b in (("shipped", "probs", None), ("head", v_best, b_best))}
                     for s in SETTINGS}
    # read only after the choice
    loco: dict = {s: {"shipped": {}, "shipped_no_t": {}, "head": {}, "head_alone": {}, "auc_shipped": {},
                      "auc_head": {}} for s in SETTINGS}
    loco_all: dict = {vname(v): {str(b): {s: {} for s in SETTINGS} for b in BLENDS} for v in VARIANTS}
    loco_auc: dict = {s: {name: {} for name in ("shipped", *map(vname, VARIANTS))} for s in SETTINGS}
    loco_oracle: dict = {s: {} for s in SETTINGS}
    for c in KNOWN_CORPORA:
        res = evaluate_file(win, a.results / f"loco_{c}.npz", temperature, shipped, a_cnn)
        for s in SETTINGS:
            loco[s]["shipped"][c] = res[s]["probs"][c]
            loco[s]["shipped_no_t"][c] = res[s]["probs_no_t"][c]
            loco[s]["head"][c] = res[s][v_best][b_best][c]
            loco[s]["head_alone"][c] = res[s][v_best][1.0][c]
            loco[s]["auc_shipped"][c] = res[s]["auc_probs"][c]
            loco[s]["auc_head"][c] = res[s][("auc", v_best)][c]
            loco_auc[s]["shipped"][c] = res[s]["auc_probs"][c]
            loco_oracle[s][c] = res[s]["oracle_probs"][c]
            for v in VARIANTS:
                loco_auc[s][vname(v)][c] = res[s][("auc", v)][c]
                for b in BLENDS:
                    loco_all[vname(v)][str(b)][s][c] = res[s][v][b][c]
        print(f"  loco {c} done ({time.time() - t0:.0f} s)")
    summary = {"chosen": {"standardised_by": v_best[0], "c": v_best[1], "reads_cnn": v_best[2], "blend": b_best},
               "adopted": adopted, "gain_cv_sum": gain, "rule": f"CV sum over {MAIN} gains >= {GAIN}",
               "cv": {"shipped": base, "shipped_no_temperature": base_no_t,
                      "variants": {vname(v): {str(b): cv[v][b] for b in BLENDS} for v in VARIANTS}},
               "cv_per_corpus": cv_per_corpus, "loco": loco,
               "cv_all": {vname(v): {str(b): {s: {c: float(np.mean([f[s][v][b][c] for f in folds if c in f[s][v][b]]))
                                                  for c in KNOWN_CORPORA if any(c in f[s][v][b] for f in folds)}
                                              for s in SETTINGS} for b in BLENDS} for v in VARIANTS},
               "loco_all_read_after_the_choice": loco_all, "loco_auc": loco_auc,
               "loco_oracle_threshold_shipped": loco_oracle,
               "cv_auc": {s: {"shipped": {c: float(np.mean([f[s]["auc_probs"][c] for f in folds
                                                             if c in f[s]["auc_probs"]]))
                                          for c in KNOWN_CORPORA if any(c in f[s]["auc_probs"] for f in folds)},
                              **{vname(v): {c: float(np.mean([f[s][("auc", v)][c] for f in folds
                                                              if c in f[s][("auc", v)]]))
                                            for c in KNOWN_CORPORA if any(c in f[s][("auc", v)] for f in folds)}
                                 for v in VARIANTS}} for s in SETTINGS}, "seconds": time.time() - t0}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results").mkdir(exist_ok=True)
    (out_dir / "results" / "arousal.json").write_text(json.dumps(summary, indent=1))
    for s in SETTINGS:
        sh, hd = loco[s]["shipped"], loco[s]["head"]
        print(f"  {s}: CV shipped {base[s]:.3f} (no T {base_no_t[s]:.3f}) head {cv[v_best][b_best][s]:.3f}; LOCO "
              f"shipped {np.mean(list(sh.values())):.3f} (no T {np.mean(list(loco[s]['shipped_no_t'].values())):.3f})"
              f" head {np.mean(list(hd.values())):.3f} head alone {np.mean(list(loco[s]['head_alone'].values())):.3f}")
    if adopted:
        head = train_head(win, np.arange(len(win.x)), *v_best, a_cnn=a_cnn)
        head = ArousalHead(head.names, head.mean, head.std, head.coef, head.intercept, b_best,
                           meta["tflite_sha256"], head.coef_cnn)
        head.save(a.model_dir / "emotion.arousal.json",
                  {"trained_on": list(KNOWN_CORPORA), "windows": int(len(win.x)), "c": v_best[1],
                   "standardised_by": v_best[0], "command": "python -m training.arousal --data ../shared/data"})
    from training.arousal_md import write_markdown

    write_markdown(out_dir / "AROUSAL.md", summary)
    print(f"arousal: {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
