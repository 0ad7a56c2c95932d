"""Scores of ``training.multi``'s result files: per-corpus tables, candidates, calibration (``training.multi_md``
writes them into ``models/REPORT.md``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from monitor.inference.baseline import Baseline, BaselineOptions, log_probs
from monitor.labels import LABELS
from training.corpus_features import CorpusWindows
from training.multi_metrics import (
    corpus_scores,
    ece,
    fit_temperature,
    pool,
    speaker_normalised,
    speaker_normalised_running,
    uar,
    with_temperature,
)

KeyInfo = dict[str, tuple[int, str, str]]  # clip key -> (label, corpus, speaker)


def key_info(cw: CorpusWindows) -> KeyInfo:
    return {r.key: (r.label, r.corpus, f"{r.corpus}/{r.speaker}") for r in cw.records}


def _load(path: Path, key: str = "probs"):
    with np.load(path) as z:
        return z["keys"], z[key].astype(np.float64), json.loads(str(z["info"]))


def has_probs(paths: list[Path], key: str) -> bool:
    """Whether every result file holds the ``key`` probabilities (e.g. ``probs_live``)."""
    if not paths or not all(p.exists() for p in paths):
        return False
    for p in paths:
        with np.load(p) as z:
            if key not in z.files:
                return False
    return True


def run_windows(paths: list[Path], info: KeyInfo, key: str = "probs"):
    """Concatenated windows of several result files: keys, probs, labels, corpus names, speakers, clip ids.
    ``key``: which probabilities (``probs``: each window alone; ``probs_speaker`` / ``probs_live``: normalised
    per speaker, whole or as heard)."""
    keys, probs = [], []
    for p in paths:
        k, pr, _ = _load(p, key)
        keys.append(k)
        probs.append(pr)
    keys = np.concatenate(keys)
    probs = np.concatenate(probs)
    labels = np.array([info[k][0] for k in keys])
    corpus = np.array([info[k][1] for k in keys])
    speaker = np.array([info[k][2] for k in keys])
    _, clip = np.unique(keys, return_inverse=True)
    return keys, probs, labels, corpus, speaker, clip


def first_windows(clip: np.ndarray, n: int) -> np.ndarray:
    """The index of one window (the first) of each of the ``n`` clips numbered in ``clip``."""
    first = np.zeros(n, dtype=int)
    first[clip[::-1]] = np.arange(len(clip))[::-1]
    return first


def label_coverage(paths: list[Path], corpora: list[str], label_sets: dict[str, set[int]]) -> np.ndarray:
    """Per window: the share of its run's training corpora that have each label (a leave-one-corpus-out run
    trains on every corpus but the held-out one; a cross-validation run on all of them)."""
    out = []
    for p in paths:
        keys, _, meta = _load(p)
        train = [c for c in corpora if not (meta.get("kind") == "loco" and meta.get("held_out") == c)]
        cov = np.array([sum(i in label_sets[c] for c in train) / len(train) for i in range(len(LABELS))])
        out.append(np.repeat(cov[None, :], len(keys), axis=0))
    return np.concatenate(out)


def window_sources(paths: list[Path]) -> np.ndarray:
    """Per window of ``run_windows(paths)``: the index of the result file it came from."""
    sizes = []
    for p in paths:
        with np.load(p) as z:
            sizes.append(len(z["keys"]))
    return np.repeat(np.arange(len(paths)), sizes)


def skewed_subset(labels: np.ndarray, clip: np.ndarray, groups: np.ndarray, share: float,
                  seed: int = 0) -> np.ndarray:
    """A mask of windows: in every group, all clips of its most neutral label (neutral, else calm) and as many
    of the others, drawn at random, as make that label ``share`` of the group's clips (a run in which one
    emotion dominates, as in natural speech)."""
    rng = np.random.default_rng(seed)
    ids, first_idx = np.unique(clip, return_index=True)
    clip_label, clip_group = labels[first_idx], groups[first_idx]
    keep: set[int] = set()
    for g in np.unique(clip_group):
        in_g = clip_group == g
        present = set(clip_label[in_g].tolist())
        base = LABELS.index("neutral") if LABELS.index("neutral") in present else LABELS.index("calm")
        mine = ids[in_g & (clip_label == base)]
        others = ids[in_g & (clip_label != base)]
        n_other = min(len(others), int(len(mine) * (1 - share) / share))
        keep.update(mine.tolist())
        keep.update(rng.choice(others, n_other, replace=False).tolist())
    return np.isin(clip, np.fromiter(keep, dtype=clip.dtype))


def with_run_baseline(probs: np.ndarray, clip: np.ndarray, runs: np.ndarray,
                      options: BaselineOptions | None = None) -> np.ndarray:
    """``score --baseline run`` over each run (a held-out corpus of one result file): the clips are its files;
    every file's mean window log-probability -> the run's ``Baseline`` -> taken out of every window."""
    options = options or BaselineOptions()
    out = probs.astype(np.float32).copy()
    for r in np.unique(runs):
        m = np.flatnonzero(runs == r)
        ids, inv = np.unique(clip[m], return_inverse=True)
        sums = np.zeros((len(ids), probs.shape[1]))
        np.add.at(sums, inv, log_probs(probs[m]))
        means = sums / np.bincount(inv)[:, None]
        chosen = _survey_rows(len(ids), options.max_files)
        base = Baseline.from_file_means([means[i] for i in chosen], options)
        if base is not None:
            out[m] = base.apply(probs[m])
    return out


def _survey_rows(n: int, max_files: int) -> list[int]:
    """The files a survey reads, by position (the runtime samples by a hash of the path; the held-out runs
    here have at most a few thousand clips, every one surveyed up to ``max_files``)."""
    return list(range(n)) if n <= max_files else list(np.random.default_rng(0).choice(n, max_files, replace=False))


def table(paths: list[Path], info: KeyInfo, corpora: list[str], spk_norm: str = "",
          temperature: float | None = None, prior: float = 0.0, key: str = "probs",
          baseline: bool = False, skew: float = 0.0, arousal_shift: float = 0.0) -> dict[str, dict] | None:
    """Clip-level scores per corpus (and 'pooled') of the held-out windows in ``paths``.

    ``prior`` > 0: each window's log-probabilities get ``prior * log(coverage)``, the share of the run's training
    corpora that have the label (a logit adjustment: a label that few corpora teach is taken as rarer).
    ``baseline``: the run's baseline taken out (``with_run_baseline``; after ``temperature``, as the monitor
    does). ``skew`` > 0: only a subset in which the most neutral label is that share of each run's clips.
    ``arousal_shift``: taken off the arousal values (another centre of the arousal axis)."""
    if not has_probs(paths, key):
        return None
    _, probs, labels, corpus, speaker, clip = run_windows(paths, info, key)
    runs = np.array([f"{s}/{c}" for s, c in zip(window_sources(paths), corpus, strict=True)])
    if skew:
        keep = skewed_subset(labels, clip, runs, skew)
        probs, labels, corpus, speaker, clip, runs = (a[keep] for a in (probs, labels, corpus, speaker, clip, runs))
        clip = np.unique(clip, return_inverse=True)[1]
    if prior:
        sets: dict[str, set[int]] = {}
        for lab, c, _ in info.values():
            sets.setdefault(c, set()).add(lab)
        z = np.log(np.clip(probs, 1e-7, 1.0)) + prior * np.log(np.maximum(label_coverage(paths, corpora, sets), 1e-3))
        z -= z.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    if temperature:
        probs = with_temperature(probs, temperature)
    if baseline:
        probs = with_run_baseline(probs, clip, runs)
    ids, pooled = pool(probs, clip)
    first = first_windows(clip, len(ids))
    y, c, s = labels[first], corpus[first], speaker[first]
    if spk_norm == "all":  # the speaker's every clip (a batch of one speaker's recordings)
        pooled = speaker_normalised(pooled, s)
    elif spk_norm == "half":
        pooled = speaker_normalised(pooled, s, strength=0.5)
    elif spk_norm == "running":  # live: what the speaker said so far, from the 20th clip on
        pooled = speaker_normalised_running(pooled, s)
    out = {}
    for name in corpora:
        m = c == name
        if m.any():
            out[name] = corpus_scores(pooled[m], y[m], sorted({int(v) for v in y[m]}), arousal_shift)
    out_pooled = {k: float(np.mean([out[n][k] for n in out])) for k in ("uar8", "uar", "arousal_uar")}
    out["mean"] = out_pooled
    return out


def arousal_centre_sweep(cv: list[Path], loco: list[Path], info: KeyInfo, corpora: list[str], key: str,
                         temperature: float | None, centres: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25),
                         ) -> dict[float, dict[str, float]]:
    """Binary arousal (mean over the corpora) with the arousal axis centred at each of ``centres`` (the
    circumplex placements minus the centre; ``monitor.affect.AROUSAL_CENTRE`` is the one that ships), for the
    cross-validation (where it is chosen: the mean of each clip judged alone and of the run's baseline) and the
    leave-one-corpus-out runs (read only)."""
    from monitor.affect import AROUSAL_CENTRE

    out: dict[float, dict[str, float]] = {}
    for c in centres:
        row = {}
        for name, paths in (("cv", cv), ("loco", loco)):
            for base in (False, True):
                t = table(paths, info, corpora, key=key, temperature=temperature, baseline=base,
                          arousal_shift=c - AROUSAL_CENTRE)
                if t is not None:
                    row[f"{name}_{'baseline' if base else 'alone'}"] = t["mean"]["arousal_uar"]
        if "cv_alone" in row and "cv_baseline" in row:
            row["cv_choice"] = (row["cv_alone"] + row["cv_baseline"]) / 2
        out[c] = row
    return out


def degraded_table(paths: list[Path], info: KeyInfo, corpora: list[str], temperature: float | None = None,
                   baseline: bool = False) -> dict[str, dict] | None:
    """Clip-level scores of the held-out clips' augmented versions (``run_one``'s ``degraded_probs``): per corpus
    over all kinds, and per kind (``VERSION_KINDS``) as the mean over the corpora; each version of a clip is a
    file of its own. ``baseline``: each kind of version of a held-out corpus is one run (a folder of recordings
    through one kind of room, noise, device or voice), whose baseline is taken out (after ``temperature``)."""
    from training.augment import VERSION_KINDS

    if not has_probs(paths, "degraded_probs"):
        return None
    keys, probs, versions = [], [], []
    for p in paths:
        with np.load(p) as z:
            keys.append(z["degraded_keys"])
            probs.append(z["degraded_probs"].astype(np.float64))
            versions.append(z["degraded_version"].astype(int))
    keys, probs, versions = np.concatenate(keys), np.concatenate(probs), np.concatenate(versions)
    _, clip = np.unique(np.char.add(keys.astype(str), np.char.mod("#%d", versions)), return_inverse=True)
    if temperature:
        probs = with_temperature(probs, temperature)
    if baseline:
        runs = np.char.add(np.array([info[k][1] for k in keys]), np.char.mod("#%d", versions))
        probs = with_run_baseline(probs, clip, runs)
    ids, pooled = pool(probs, clip)
    first = first_windows(clip, len(ids))
    y = np.array([info[k][0] for k in keys[first]])
    c = np.array([info[k][1] for k in keys[first]])
    v = versions[first]
    out: dict[str, dict] = {}
    for name in corpora:
        m = c == name
        if m.any():
            out[name] = corpus_scores(pooled[m], y[m], sorted({int(t) for t in y[m]}))
    for k, kind in enumerate(VERSION_KINDS, 1):
        per = [corpus_scores(pooled[(c == n) & (v == k)], y[(c == n) & (v == k)],
                             sorted({int(t) for t in y[(c == n) & (v == k)]}))
               for n in corpora if ((c == n) & (v == k)).any()]
        if per:
            out[f"kind:{kind}"] = {m: float(np.mean([r[m] for r in per])) for m in ("uar8", "uar", "arousal_uar")}
    out["mean"] = {m: float(np.mean([out[n][m] for n in corpora if n in out])) for m in ("uar8", "uar", "arousal_uar")}
    return out


def loco_paths(out: Path, config: str, corpora: list[str]) -> list[Path]:
    return [out / "results" / config / f"loco_{n}.npz" for n in corpora]


def cv_paths(out: Path, config: str, folds: int = 5) -> list[Path]:
    return [out / "results" / config / f"cv_{k}.npz" for k in range(1, folds + 1)]


def loco_table(out: Path, config: str, corpora: list[str], info: KeyInfo) -> dict | None:
    t = table(loco_paths(out, config, corpora), info, corpora)
    if t is None:
        return None
    return {k: v for k, v in t.items() if k != "mean"}


def default_key(opts) -> str:
    """The held-out probabilities that match what `score` does by default with a model trained this way: each
    clip a file of its own, normalised as it is heard (``probs_file``), or each window alone (``probs``)."""
    return "probs_file" if opts.speaker_norm else "probs"


def config_key(out: Path, config: str) -> str:
    cv, loco = cv_paths(out, config), loco_paths(out, config, [p.stem[5:] for p in (out / "results" / config)
                                                                 .glob("loco_*.npz")])
    return "probs_file" if has_probs(cv, "probs_file") or has_probs(loco, "probs_file") else "probs"


def best_candidate(out: Path, cw: CorpusWindows, configs: list[str]) -> tuple[str, dict]:
    """The configuration whose default behaviour generalises best: the mean of its leave-one-corpus-out mean
    8-way UAR and its cross-validation pooled 8-way UAR (unheard corpora and unheard speakers weigh the same).
    Configurations without all their runs are left out; ``main`` if none has them."""
    info = key_info(cw)
    scores = {}
    for c in configs:
        key = config_key(out, c)
        lo = table(loco_paths(out, c, cw.corpora), info, cw.corpora, key=key)
        cv = table(cv_paths(out, c), info, cw.corpora, key=key)
        if lo and cv:
            scores[c] = {"loco_uar8": round(lo["mean"]["uar8"], 4), "cv_uar8": round(cv["mean"]["uar8"], 4),
                         "ravdess_cv_uar8": round(cv["ravdess16k"]["uar8"], 4) if "ravdess16k" in cv else None,
                         "score": round((lo["mean"]["uar8"] + cv["mean"]["uar8"]) / 2, 4), "probs": key}
    if not scores:
        return "main", {}
    return max(scores, key=lambda c: scores[c]["score"]), scores


def calibration(out: Path, config: str, corpora: list[str], info: KeyInfo, key: str = "probs") -> dict | None:
    """Temperature fitted on the cross-validation's held-out windows; ECE before and after, there and on the
    leave-one-corpus-out windows (which the fit never saw). A configuration whose cross-validation has not run
    gets its temperature from the leave-one-corpus-out windows instead (``fitted_on_cv`` 0)."""
    cvp = cv_paths(out, config)
    lp = loco_paths(out, config, corpora)
    if not has_probs(cvp, key):
        if not has_probs(lp, key):
            return None
        _, probs, labels, *_ = run_windows(lp, info, key)
        t = fit_temperature(probs, labels)
        return {"temperature": round(t, 4), "fitted_on_cv": 0.0, "loco_ece_before": ece(probs, labels),
                "loco_ece_after": ece(with_temperature(probs, t), labels)}
    _, probs, labels, *_ = run_windows(cvp, info, key)
    t = fit_temperature(probs, labels)
    res = {"temperature": round(t, 4), "fitted_on_cv": 1.0, "cv_ece_before": ece(probs, labels),
           "cv_ece_after": ece(with_temperature(probs, t), labels)}
    if has_probs(lp, key):
        _, lprobs, llabels, *_ = run_windows(lp, info, key)
        res["loco_ece_before"] = ece(lprobs, llabels)
        res["loco_ece_after"] = ece(with_temperature(lprobs, t), llabels)
    return res


def _pooled_uar8(logp: np.ndarray, y: np.ndarray, corpus: np.ndarray, sets: dict[str, list[int]]) -> float:
    pred = logp.argmax(axis=1)
    return float(np.mean([uar(y[corpus == c], pred[corpus == c], sets[c]) for c in np.unique(corpus)]))


def fit_label_bias(probs: np.ndarray, y: np.ndarray, corpus: np.ndarray, sets: dict[str, list[int]],
                   grid: np.ndarray | None = None, passes: int = 3) -> np.ndarray:
    """A bias per label added to the clip log-probabilities, chosen by coordinate ascent to maximise the mean over
    corpora of the 8-way UAR (each corpus over its own labels). Neutral stays at 0 (only differences matter)."""
    grid = np.arange(-3.0, 1.01, 0.25) if grid is None else grid
    logp = np.log(np.clip(probs, 1e-7, 1.0))
    b = np.zeros(len(LABELS))
    best = _pooled_uar8(logp, y, corpus, sets)
    for _ in range(passes):
        changed = False
        for lab in range(1, len(LABELS)):
            for v in grid:
                trial = b.copy()
                trial[lab] = v
                score = _pooled_uar8(logp + trial, y, corpus, sets)
                if score > best + 1e-9:
                    best, b, changed = score, trial, True
        if not changed:
            break
    return b


def clip_level(paths: list[Path], info: KeyInfo, key: str = "probs"):
    """Pooled clip probabilities of result files: (probs, labels, corpus names)."""
    _, probs, labels, corpus, _, clip = run_windows(paths, info, key)
    ids, pooled = pool(probs, clip)
    first = first_windows(clip, len(ids))
    return pooled, labels[first], corpus[first]


def label_bias_tables(out: Path, config: str, corpora: list[str], info: KeyInfo, key: str = "probs"):
    """The learnt label bias, fitted on the cross-validation's held-out clips. For the leave-one-corpus-out table
    each held-out corpus is scored with a bias fitted on the cross-validation clips of the OTHER corpora only (it
    never sees the corpus it is judged on). Returns (bias fitted on every corpus, loco scores, cv scores)."""
    cvp, lp = cv_paths(out, config), loco_paths(out, config, corpora)
    if not (has_probs(cvp, key) and has_probs(lp, key)):
        return None, None, None
    sets: dict[str, list[int]] = {}
    for lab, c, _ in info.values():
        sets.setdefault(c, [])
        if lab not in sets[c]:
            sets[c].append(lab)
    sets = {c: sorted(v) for c, v in sets.items()}
    cp, cy, cc = clip_level(cvp, info, key)
    bias_all = fit_label_bias(cp, cy, cc, sets)
    loco: dict[str, dict] = {}
    for name in corpora:
        p = [q for q in lp if q.name == f"loco_{name}.npz"]
        lpp, ly, _ = clip_level(p, info, key)
        m = cc != name
        b = fit_label_bias(cp[m], cy[m], cc[m], sets)
        adj = np.exp(np.log(np.clip(lpp, 1e-7, 1.0)) + b)
        loco[name] = corpus_scores(adj / adj.sum(axis=1, keepdims=True), ly, sets[name])
    loco["mean"] = {k: float(np.mean([loco[n][k] for n in corpora])) for k in ("uar8", "uar", "arousal_uar")}
    adj = np.exp(np.log(np.clip(cp, 1e-7, 1.0)) + bias_all)
    adj /= adj.sum(axis=1, keepdims=True)
    cv = {c: corpus_scores(adj[cc == c], cy[cc == c], sets[c]) for c in np.unique(cc)}
    cv["mean"] = {k: float(np.mean([cv[n][k] for n in np.unique(cc)])) for k in ("uar8", "uar", "arousal_uar")}
    return bias_all, loco, cv
