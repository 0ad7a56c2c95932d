"""``models/MULTI_CORPUS.md`` from the result files of ``training.multi`` (missing runs are named)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from monitor.labels import LABELS
from training.corpora import LANGUAGE, Corpus
from training.corpus_features import CorpusWindows
from training.multi_metrics import (
    corpus_scores,
    ece,
    fit_temperature,
    pool,
    speaker_normalised,
    speaker_normalised_running,
    with_temperature,
)

REPORT_NAME = "MULTI_CORPUS.md"  # the shipped model's own report stays REPORT.md until a model from here ships
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


def table(paths: list[Path], info: KeyInfo, corpora: list[str], spk_norm: str = "",
          temperature: float | None = None, prior: float = 0.0, key: str = "probs") -> dict[str, dict] | None:
    """Clip-level scores per corpus (and 'pooled') of the held-out windows in ``paths``.

    ``prior`` > 0: each window's log-probabilities get ``prior * log(coverage)``, the share of the run's training
    corpora that have the label (a logit adjustment: a label that few corpora teach is taken as rarer)."""
    if not has_probs(paths, key):
        return None
    _, probs, labels, corpus, speaker, clip = run_windows(paths, info, key)
    if prior:
        sets: dict[str, set[int]] = {}
        for lab, c, _ in info.values():
            sets.setdefault(c, set()).add(lab)
        z = np.log(np.clip(probs, 1e-7, 1.0)) + prior * np.log(np.maximum(label_coverage(paths, corpora, sets), 1e-3))
        z -= z.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    if temperature:
        probs = with_temperature(probs, temperature)
    ids, pooled = pool(probs, clip)
    first = np.zeros(len(ids), dtype=int)
    first[clip[::-1]] = np.arange(len(clip))[::-1]  # a window of each clip
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
            out[name] = corpus_scores(pooled[m], y[m], sorted({int(v) for v in y[m]}))
    out_pooled = {k: float(np.mean([out[n][k] for n in out])) for k in ("uar8", "uar", "arousal_uar")}
    out["mean"] = out_pooled
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
    return "probs_file" if has_probs(cv_paths(out, config), "probs_file") else "probs"


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
    leave-one-corpus-out windows (which the fit never saw)."""
    cvp = cv_paths(out, config)
    if not has_probs(cvp, key):
        return None
    _, probs, labels, *_ = run_windows(cvp, info, key)
    t = fit_temperature(probs, labels)
    res = {"temperature": round(t, 4), "cv_ece_before": ece(probs, labels),
           "cv_ece_after": ece(with_temperature(probs, t), labels)}
    lp = loco_paths(out, config, corpora)
    if has_probs(lp, key):
        _, lprobs, llabels, *_ = run_windows(lp, info, key)
        res["loco_ece_before"] = ece(lprobs, llabels)
        res["loco_ece_after"] = ece(with_temperature(lprobs, t), llabels)
    return res


def _f(v) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def _rows(t: dict | None, corpora: list[str], key: str) -> list[str]:
    return [_f(t[n][key]) if t and n in t else "–" for n in corpora]


def write_report(out: Path, cw: CorpusWindows, corpora: list[Corpus], command: str) -> None:
    from training.multi import ablation_configs

    info = key_info(cw)
    names = [c.name for c in corpora]
    chosen = json.loads((out / "results" / "chosen.json").read_text()) if (out / "results" / "chosen.json").exists() \
        else None
    config = chosen["config"] if chosen else "main"
    L: list[str] = []
    L.append("# Emotion model on many corpora: evaluation report\n")
    L.append("Everything here is reproduced by `" + command.replace("--steps report", "").strip() +
             "` (each run is a file under `models/results/`; the command skips runs already there, so an interrupted "
             "run resumes). Clip level: the probabilities of a clip's windows are averaged. **UAR** is the mean "
             "recall over the labels the corpus has, from the model's own 8-way prediction (a prediction of a label "
             "the corpus lacks counts as wrong); **UAR (own labels)** takes the most probable of the corpus's labels; "
             "**arousal** is the balanced accuracy of high (angry, happy, fearful, surprised) against low (neutral, "
             "calm, sad) from the sign of the `arousal` value the monitor writes.\n")
    L.append("## Data\n")
    L.append("| corpus | language | speakers | clips | labels |\n| --- | --- | --- | --- | --- |")
    for c in corpora:
        L.append(f"| {c.name} | {LANGUAGE.get(c.name, '')} | {len(c.speakers)} | {len(c.records)} | "
                 f"{', '.join(LABELS[i] for i in c.labels)} |")
    L.append(f"\n{len(cw.x)} windows in 5 versions (the recording, and other voices, rooms, noise/babble, "
             f"telephone/codec/microphone: `training/augment.py`); {cw.fallbacks} clip versions had no speech "
             "window and were used whole.\n")

    loco = table(loco_paths(out, config, names), info, names)
    loco_norm = table(loco_paths(out, config, names), info, names, spk_norm="all")
    loco_half = table(loco_paths(out, config, names), info, names, spk_norm="half")
    loco_run = table(loco_paths(out, config, names), info, names, spk_norm="running")
    before = table([out / "results" / "shipped-before" / "all.npz"], info, names)
    priors = [0.5, 1.0, 1.5, 2.0, 3.0]
    cv_prior = {t: table(cv_paths(out, config), info, names, prior=t) for t in priors}
    best_prior = max(priors, key=lambda t: cv_prior[t]["mean"]["uar8"] if cv_prior[t] else -1.0)
    loco_prior = table(loco_paths(out, config, names), info, names, prior=best_prior) if cv_prior[best_prior] else None
    L.append("## Voices it never heard: leave one corpus out (the headline)\n")
    L.append("Each corpus is scored by a network trained on the other four only (full schedule, one network).\n")
    head = "| | " + " | ".join(names) + " | mean |\n|" + " --- |" * (len(names) + 2)
    L.append(head)
    for label, t, key in [("UAR", loco, "uar8"), ("UAR (own labels)", loco, "uar"), ("arousal", loco, "arousal_uar"),
                          ("UAR, outputs normalised per speaker", loco_norm, "uar8"),
                          ("arousal, normalised per speaker", loco_norm, "arousal_uar"),
                          ("UAR, normalised per speaker at half strength", loco_half, "uar8"),
                          ("UAR, normalised per speaker as it is heard (live)", loco_run, "uar8"),
                          ("arousal, normalised as it is heard (live)", loco_run, "arousal_uar"),
                          (f"UAR with the label-coverage prior ({best_prior:g}, chosen on the CV)", loco_prior, "uar8"),
                          ("shipped before (RAVDESS only): UAR", before, "uar8"),
                          ("shipped before: arousal", before, "arousal_uar")]:
        mean = _f(t["mean"][key]) if t else "–"
        L.append(f"| {label} | " + " | ".join(_rows(t, names, key)) + f" | {mean} |")
    L.append("| chance | " + " | ".join(f"{1 / len(c.labels):.3f}" for c in corpora) + " | |")
    L.append("\nThe model shipped before was trained on RAVDESS actors 01-20, so its RAVDESS figure is not a held-out "
             "one; on the other four corpora it is.\n")

    cv = table(cv_paths(out, config), info, names)
    cv_norm = table(cv_paths(out, config), info, names, spk_norm="all")
    cv_run = table(cv_paths(out, config), info, names, spk_norm="running")
    L.append("## Speaker-independent cross-validation over all corpora\n")
    L.append("5 folds; fold k holds out the k-th fold of whole speakers of every corpus (genders spread evenly; "
             "RAVDESS: the same 4 actors per fold as before, 2 men and 2 women). esd0020 has one speaker and stays "
             "on the training side (it is held out whole above). Pooled = mean over the corpora.\n")
    cv_names = [n for n in names if cv and n in cv]
    L.append("| | " + " | ".join(cv_names) + " | pooled |\n|" + " --- |" * (len(cv_names) + 2))
    for label, t, key in [("UAR", cv, "uar8"), ("UAR (own labels)", cv, "uar"), ("arousal", cv, "arousal_uar"),
                          ("UAR, outputs normalised per speaker", cv_norm, "uar8"),
                          ("UAR, normalised as it is heard (live)", cv_run, "uar8"),
                          (f"UAR with the label-coverage prior ({best_prior:g})", cv_prior[best_prior], "uar8")]:
        if t is None:
            continue
        L.append(f"| {label} | " + " | ".join(_f(t[n][key]) for n in cv_names) + f" | {_f(t['mean'][key])} |")
    if cv is None:
        L.append("(not run yet)")

    L.append("\n## Ablation: what each augmentation and the window normalisation do for unheard corpora\n")
    L.append("Leave-one-corpus-out UAR with a short schedule (one network, 12 epochs of 4000 clips; the headline "
             "uses 24 of 6000), for the configurations below. A kind of augmentation is kept only if removing it "
             "lowers the mean.\n")
    L.append("| configuration | " + " | ".join(names) + " | mean UAR | mean arousal |\n|" + " --- |" * (len(names) + 3))
    for name in ablation_configs():
        t = table(loco_paths(out, name, names), info, names)
        if t is None:
            L.append(f"| {name} | " + " | ".join("–" for _ in names) + " | (not run) | |")
            continue
        L.append(f"| {name} | " + " | ".join(_rows(t, names, "uar8")) +
                 f" | {_f(t['mean']['uar8'])} | {_f(t['mean']['arousal_uar'])} |")
    if chosen:
        dropped = ", ".join(chosen["dropped_kinds"]) or "none"
        L.append(f"\nChosen: versions {', '.join(chosen['versions'])}; window normalisation "
                 f"{'on' if chosen['window_norm'] else 'off'}; dropped: {dropped}.\n")

    cal = calibration(out, config, names, info)
    L.append("## Calibration\n")
    if cal:
        L.append(f"Temperature {cal['temperature']:.3f}, fitted on the cross-validation's held-out windows (negative "
                 "log-likelihood); a model exported by the `final` step carries it as `temperature` in its "
                 "`emotion.json`, and the monitor applies it to every window. "
                 "Expected calibration error of the top label's confidence (15 bins, window level):\n")
        L.append("| | before | after |\n| --- | --- | --- |")
        L.append(f"| cross-validation (where it was fitted) | {cal['cv_ece_before']:.3f} | {cal['cv_ece_after']:.3f} |")
        if "loco_ece_before" in cal:
            L.append(f"| leave-one-corpus-out (never seen by the fit) | {cal['loco_ece_before']:.3f} | "
                     f"{cal['loco_ece_after']:.3f} |")
    else:
        L.append("(cross-validation not run yet)")

    if loco and cv and before:
        rav = cv.get("ravdess16k", {}).get("uar8", float("nan"))
        others = [n for n in names if n != "ravdess16k"]
        new_o = float(np.mean([loco[n]["uar8"] for n in others]))
        old_o = float(np.mean([before[n]["uar8"] for n in others]))
        own_o = float(np.mean([loco[n]["uar"] for n in others]))
        old_own = float(np.mean([before[n]["uar"] for n in others]))
        L.append("\n## Findings, and why this model is not the shipped one\n")
        L.append(
            f"- On the four corpora other than RAVDESS, the model trained without them reaches a mean 8-way UAR of "
            f"{new_o:.3f} against {old_o:.3f} for the RAVDESS-only model shipped before, and {own_o:.3f} against "
            f"{old_own:.3f} over each corpus's own labels. Its RAVDESS UAR with whole actors held out is {rav:.3f}, "
            "below the shipped model's 0.615 and the 0.64 the issue asks for. It is therefore not shipped: "
            "`models/emotion.tflite` stays the RAVDESS-only model of `REPORT.md`, and the `final` step (which would "
            "replace it) has not been run.\n"
            "- Most 8-way errors on an unheard corpus are labels that corpus does not have: calm (only RAVDESS and "
            "TurEV) and disgust (only RAVDESS). The masked loss never pushes them down on the other corpora, so on "
            "new voices they win often (nemo: 8-way UAR far below its own-label UAR). A prior on how many training "
            "corpora have each label (a logit adjustment whose strength is chosen on the cross-validation, rows "
            f"above) lifts the mean leave-one-corpus-out 8-way UAR from {loco['mean']['uar8']:.3f} to "
            f"{loco_prior['mean']['uar8'] if loco_prior else float('nan'):.3f}, but the strength the "
            "cross-validation picks is the largest tried and it costs RAVDESS its calm and disgust: it needs a "
            "better form (per label, learnt) before it ships.\n"
            "- Normalising the outputs per speaker is the largest gain measured here (the rows 'normalised per "
            "speaker' above), both with all of a speaker's clips and as they are heard live from the 20th clip; "
            "binary arousal gains most. The acted corpora give every speaker every emotion in equal measure, which "
            "flatters this: a real speaker who is sad for a whole session would be pulled towards neutral.\n"
            "- With the short schedule, no augmentation kind and no window normalisation raised the mean "
            "leave-one-corpus-out UAR (one seed each: differences of 0.01-0.03 are within run-to-run noise).\n"
            "- The features were cached with the segmenter before the first-sample warm-up (commit 2332ca7); that "
            "change only alters windows of clips that start above their noise floor.\n")

    final_path = out / "emotion.json"
    if final_path.exists():
        meta = json.loads(final_path.read_text())
        fm = meta.get("metrics", {}).get("final_model")
        if fm and "clips" in fm:  # a model from training.multi (the RAVDESS-only one has its own REPORT.md)
            L.append("\n## The shipped model\n")
            L.append(f"`models/emotion.tflite`: {fm['size_bytes'] / 1024:.0f} KB, full-integer int8, trained on all "
                     f"{fm['clips']} clips of {len(names)} corpora for {fm['epochs']} epochs ({fm['seconds']:.0f} s "
                     f"on this machine); int8/float agreement {fm['int8_float_agreement']:.3f} over "
                     f"{fm['agreement_windows']} windows.\n")
    (out / REPORT_NAME).write_text("\n".join(L) + "\n")
