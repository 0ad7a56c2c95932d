"""``models/REPORT.md``: the shipped model's evaluation, from the result files of ``training.multi``.

Every figure is computed from ``models/results/<config>/<run>.npz`` (held-out window probabilities); a run that
has not been made shows as "–". Nothing here trains.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from monitor.labels import LABELS
from training.corpora import LANGUAGE, Corpus
from training.corpus_features import CorpusWindows
from training.multi_fit import FitOptions
from training.multi_report import (
    arousal_centre_sweep,
    best_candidate,
    calibration,
    config_key,
    cv_paths,
    degraded_table,
    has_probs,
    key_info,
    loco_paths,
    table,
)

REPORT_NAME = "REPORT.md"
PRIORS = (0.5, 1.0, 1.5, 2.0, 3.0)
CONDITIONS = {  # result key -> what it stands for
    "probs_file": "each clip a file of its own, normalised as it is heard, judged alone (`score --baseline off`)",
    "probs": "each window alone (normalisation off)",
    "probs_live": "a session of one speaker, normalised as it is heard (live, one voice)",
    "probs_speaker": "all of a speaker's clips known at once (a long session of one voice)",
}


def _f(v) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def _block(names: list[str], rows: list[tuple[str, dict | None, str]], mean: str = "mean") -> list[str]:
    out = ["| | " + " | ".join(names) + f" | {mean} |", "|" + " --- |" * (len(names) + 2)]
    for label, t, key in rows:
        if t is None:
            continue
        vals = [_f(t[n][key]) if n in t else "–" for n in names]
        out.append(f"| {label} | " + " | ".join(vals) + f" | {_f(t['mean'][key])} |")
    return out


def _condition_rows(paths: list[Path], info, names: list[str], keys: list[str],
                    temperature: float | None = None) -> list[tuple[str, dict | None, str]]:
    """The scores of each condition, with the shipped temperature applied as the monitor applies it (the 8-way
    figures do not change with it; the arousal value, a probability-weighted mean, does)."""
    rows = []
    for key in keys:
        t = table(paths, info, names, key=key, temperature=temperature) if has_probs(paths, key) else None
        what = CONDITIONS[key]
        rows += [(f"UAR, {what}", t, "uar8"), (f"UAR over own labels, {what}", t, "uar"),
                 (f"arousal, {what}", t, "arousal_uar")]
    return rows


def _baseline_rows(paths: list[Path], info, names: list[str], key: str,
                   temperature: float | None) -> list[tuple[str, dict | None, str]]:
    """``score``'s default: each clip a file, the held-out clips of a corpus one run, whose baseline is taken out
    (``monitor.inference.baseline``, after the temperature as in the monitor); and a run in which one emotion
    dominates, with the baseline off and on."""
    if not has_probs(paths, key):
        return []
    t = temperature or None
    on = table(paths, info, names, key=key, temperature=t, baseline=True)
    what = "each clip a file, a corpus's held-out clips one run, the run's baseline taken out (what `score` does by " \
           "default)"
    rows = [(f"UAR, {what}", on, "uar8"), (f"UAR over own labels, {what}", on, "uar"),
            (f"arousal, {what}", on, "arousal_uar")]
    for share in (0.6,):
        off = table(paths, info, names, key=key, temperature=t, skew=share)
        on = table(paths, info, names, key=key, temperature=t, skew=share, baseline=True)
        what = f"a run in which neutral (TurEV: calm) is {share:.0%} of the clips"
        rows += [(f"UAR, {what}, judged alone", off, "uar8"), (f"UAR, {what}, baseline taken out", on, "uar8"),
                 (f"arousal, {what}, judged alone", off, "arousal_uar"),
                 (f"arousal, {what}, baseline taken out", on, "arousal_uar")]
    return rows


def _arousal_centre(cv: list[Path], loco: list[Path], info, names: list[str], key: str,
                    temperature: float | None) -> list[str]:
    from monitor.affect import AROUSAL_CENTRE

    sweep = arousal_centre_sweep(cv, loco, info, [n for n in names], key, temperature)
    if not any("cv_choice" in r for r in sweep.values()):
        return []
    best = max((c for c in sweep if "cv_choice" in sweep[c]), key=lambda c: sweep[c]["cv_choice"])
    L = ["## Arousal: where the axis is centred\n",
         "A window's arousal is the probability-weighted mean of its labels' arousal coordinates, and binary arousal "
         "is its sign. The circumplex placements (neutral -0.4, calm -0.7, happy 0.6, sad -0.6, angry 0.8, fearful "
         "0.7, disgust 0.1, surprised 0.7) average +0.15, so a window spread over the labels reads as high arousal. "
         "The monitor takes a centre off every placement (`monitor.affect.AROUSAL_CENTRE`). Binary arousal (mean "
         "over the corpora, each clip a file) for each centre; the centre is chosen on the cross-validation (the "
         "mean of its two columns), the leave-one-corpus-out columns are read after:\n",
         "| centre | cross-validation, judged alone | cross-validation, run's baseline | leave-one-corpus-out, "
         "judged alone | leave-one-corpus-out, run's baseline |", "| --- | --- | --- | --- | --- |"]
    for c, r in sweep.items():
        mark = " (ships)" if abs(c - AROUSAL_CENTRE) < 1e-9 else ""
        L.append(f"| {c:.2f}{mark} | {_f(r.get('cv_alone'))} | {_f(r.get('cv_baseline'))} | "
                 f"{_f(r.get('loco_alone'))} | {_f(r.get('loco_baseline'))} |")
    L.append(f"\nBest on the cross-validation: {best:.2f}. Every arousal figure elsewhere in this report uses the "
             f"centre that ships ({AROUSAL_CENTRE:.2f}).\n")
    return L


def _ablation2d(out: Path, info, names: list[str], temperature: float | None = None) -> list[str]:
    """The augmentation question for the 2-D CNN: held-out corpora as recorded, and through rooms, noise/babble,
    telephone/codec/microphone and other voices (the held-out clips' own augmented versions); the short-schedule
    pair of ``ablation2d`` and the full-schedule pair of candidates."""
    from training.augment import VERSION_KINDS
    from training.multi import ablation2d_configs, candidates

    full = candidates(FitOptions())
    configs = [(f"{n} (short)", n, o) for n, o in ablation2d_configs().items()]
    configs += [(f"{n} (full)", n, full[n]) for n in ("cnn2d-spknorm", "cnn2d-spknorm-aug")]
    rows = []
    for label, name, opts in configs:
        paths = loco_paths(out, name, names)
        key = "probs_file" if opts.speaker_norm else "probs"
        for base in (False, True):
            clean = table(paths, info, names, key=key, temperature=temperature, baseline=base) \
                if has_probs(paths, key) else None
            if clean is not None:
                deg = degraded_table(paths, info, names, temperature=temperature, baseline=base)
                rows.append((f"{label}, {'run baseline' if base else 'alone'}", clean, deg))
    if not rows:
        return []
    kinds = [f"kind:{k}" for k in VERSION_KINDS]
    L = ["\n## Ablation with the 2-D CNN: unheard corpora, as recorded and through rooms and devices\n",
         "Leave-one-corpus-out, 2-D CNN trained for speaker normalisation, each clip a file (`score`'s default); "
         "*short*: one network, 12 epochs of 4000 clips (`--steps ablation2d`: `2d-recordings` trains on the "
         "recordings, `2d-all` on every version too); *full*: the full schedule of the candidates above. "
         "*As recorded*: the held-out corpus's recordings. *Degraded*: the same held-out clips in their four "
         "augmented versions, each scored as a file of its own: another voice (speed 0.9-1.1 and, half the time, "
         "pitch +-2 semitones), a room (synthetic response, RT60 0.2-0.9 s), white/pink/brown noise or babble of "
         "3-5 of the corpus's other speakers (0-20 dB SNR), or a telephone band / lossy codec / microphone tilt of "
         "+-3 dB per octave (`training/augment.py`). The ablation with the time-convolution network above asked "
         "the first question only; the recordings of these corpora are all clean studio speech, so only the second "
         "says anything about rooms and microphones. The augmented networks trained on versions made by the same "
         "generators (of other clips, with other random rooms and noises), so the second question measures "
         "robustness to these kinds of change, not to kinds never met. The runs of `cnn2d-spknorm` predate the "
         "degraded evaluation (–). *Alone*: each file judged alone (`--baseline off`); *run baseline*: `score`'s "
         "default, the run's baseline taken out, each held-out corpus's recordings one run and each kind of "
         "version of them one run (a folder of recordings through one kind of room, noise, device or voice). The "
         "shipped temperature is applied throughout, as in the monitor.\n",
         "| configuration | 8-way UAR as recorded | own labels as recorded | arousal as recorded | 8-way UAR degraded "
         "| own labels degraded | arousal degraded | " + " | ".join(k.split(":")[1] for k in kinds) + " |",
         "|" + " --- |" * (7 + len(kinds))]
    for label, clean, deg in rows:
        d = deg or {}
        m = d.get("mean", {})
        L.append(f"| {label} | {_f(clean['mean']['uar8'])} | {_f(clean['mean']['uar'])} | "
                 f"{_f(clean['mean']['arousal_uar'])} | {_f(m.get('uar8'))} | {_f(m.get('uar'))} | "
                 f"{_f(m.get('arousal_uar'))} | " + " | ".join(_f(d.get(k, {}).get("uar8")) for k in kinds) + " |")
    return [*L, ""]


def prosody_note(out: Path) -> list[str]:
    """A paragraph on the prosody head fused with this model by default (``training.prosody``), and the voice
    head fused instead with speaker turns (``training.prosody --voice``), if measured."""

    def means(name: str) -> tuple[dict, str] | None:
        path = out / "results" / f"{name}.json"
        if not path.exists():
            return None
        d = json.loads(path.read_text())
        return (d, d["head"]) if d.get("head") else None

    def parts(d: dict, head: str) -> str:
        def mean(setting: str, w: float, metric: str) -> float:
            loco = d["table"][setting][head][str(w)]["loco"]
            return sum(v[metric] for v in loco.values()) / len(loco)

        def change(setting: str, metric: str) -> str:
            return f"{mean(setting, 1.0, metric):.3f} -> {mean(setting, d['chosen'][setting], metric):.3f}"

        return "; ".join(
            f"{what}: {change(setting, 'uar8')} 8-way, arousal {change(setting, 'arousal_uar')}"
            for setting, what in (("run", "as `score` runs (the run's baseline and statistics)"),
                                  ("alone", "each clip alone (one file)"),
                                  ("session", "a speaker's clips as a live session")))

    prosody = means("prosody")
    if prosody is None:
        return []
    text = ("The tables below are the CNN's. The monitor fuses it with a prosody head (functionals of "
            "each window and a small network, `models/emotion.prosody.json`), whose own tables are in "
            "[`PROSODY.md`](PROSODY.md) (`python -m training.prosody`). Mean over the five corpora never heard, "
            + parts(*prosody) + ".")
    voice = means("voice")
    if voice is not None:
        text += (" With speaker turns on (the default of `live` and `score`) it fuses the voice head instead, which "
                 "also reads the speaker encoder's states for each window (`models/emotion.voice.json`, "
                 "[`VOICE.md`](VOICE.md), "
                 "`python -m training.prosody --voice K`): " + parts(*voice) + "."
                 + (" Its `score` runs also group their files by voice and judge each against its own group "
                    "(`monitor/inference/run_voices.py`, `[speakers] run_voices`)." if voice[0].get("run_voices")
                    else ""))
    return [text + "\n"]


def write_report(out: Path, cw: CorpusWindows, corpora: list[Corpus], command: str) -> Path:
    from training.multi import ablation_configs, candidates, chosen_config

    info = key_info(cw)
    names = [c.name for c in corpora]
    chosen_path = out / "results" / "chosen.json"
    chosen = json.loads(chosen_path.read_text()) if chosen_path.exists() else None
    _, base_opts, _ = chosen_config(out, cw)
    cands = list(candidates(base_opts))
    config, scores = best_candidate(out, cw, cands)
    best = config
    meta_path = out / "emotion.json"
    shipped = (json.loads(meta_path.read_text()).get("metrics", {}).get("final_model", {}).get("config")
               if meta_path.exists() else None)
    if shipped in cands:  # the report is about the model that ships, whatever scores best
        config = shipped
    elif chosen and chosen.get("forced") and chosen.get("config") in cands:  # shipped with --config
        config = chosen["config"]
    key = config_key(out, config)
    keys = [k for k in CONDITIONS if k == "probs" or key != "probs"]
    loco_p, cv_p = loco_paths(out, config, names), cv_paths(out, config)
    cal = calibration(out, config, names, info, key=key)
    temperature = cal["temperature"] if cal else None
    cmd = command.replace("--steps report", "").strip()

    L: list[str] = ["# Emotion model: evaluation report\n"]
    L.append(f"Everything here is reproduced by `{cmd}` (about 2 hours on 2 cores; each run is a file under "
             "`models/results/<configuration>/`, and the command skips runs already there, so an interrupted run "
             "resumes; `--steps report` rewrites this file alone). The model shipped before this one, trained on "
             "RAVDESS alone, has its own report in [`REPORT_RAVDESS.md`](REPORT_RAVDESS.md).\n")
    L.append("Clip level: the probabilities of a clip's windows are averaged. **UAR** is the mean recall over the "
             "labels the corpus has, from the model's own 8-way prediction (a prediction of a label the corpus lacks "
             "counts as wrong); **UAR over own labels** takes the most probable of the corpus's labels; **arousal** "
             "is the balanced accuracy of high (angry, happy, fearful, surprised) against low (neutral, calm, sad) "
             "from the sign of the `arousal` value the monitor writes.\n")
    L += prosody_note(out)
    L.append("## Data\n")
    L.append("| corpus | language | speakers | clips | labels |\n| --- | --- | --- | --- | --- |")
    for c in corpora:
        L.append(f"| {c.name} | {LANGUAGE.get(c.name, '')} | {len(c.speakers)} | {len(c.records)} | "
                 f"{', '.join(LABELS[i] for i in c.labels)} |")
    L.append(f"\n{len(cw.x)} windows in 5 versions (the recording, and other voices, rooms, noise/babble, "
             f"telephone/codec/microphone: `training/augment.py`); {cw.fallbacks} clip versions had no speech "
             "window and were used whole.\n")

    L.append("## Configurations compared\n")
    L.append("Full schedule (24 epochs of 6000 clips drawn balanced over corpora, labels and speakers; one network "
             "each). `main` is the ablation's choice (below) as it is; `spknorm` is the same network trained for "
             "speaker normalisation (`monitor/inference/normalise.py`: each example shifted by a random fraction of "
             "its speaker's band profile minus the population's); `cnn2d-spknorm` is that with the 2-D CNN of the "
             "RAVDESS-only model. Each is judged by what it does by default; the one with the best mean of the "
             "leave-one-corpus-out mean UAR and the cross-validation pooled UAR is shipped.\n")
    L.append("| configuration | leave-one-corpus-out mean UAR | cross-validation pooled UAR | RAVDESS cross-validation "
             "UAR | score |\n| --- | --- | --- | --- | --- |")
    for c in cands:
        s = scores.get(c)
        lo = table(loco_paths(out, c, names), info, names, key=config_key(out, c)) if s is None else None
        if s is None and lo is not None:
            mark = " (shipped)" if c == config else ""
            L.append(f"| {c}{mark} | {_f(lo['mean']['uar8'])} | (not run) | (not run) | |")
        elif s is None:
            L.append(f"| {c} | (not run) | | | |")
        else:
            mark = " (shipped)" if c == config else ""
            L.append(f"| {c}{mark} | {_f(s['loco_uar8'])} | {_f(s['cv_uar8'])} | {_f(s['ravdess_cv_uar8'])} | "
                     f"{_f(s['score'])} |")

    L.append("\n## Voices it never heard: leave one corpus out (the headline)\n")
    L.append(f"Configuration `{config}`. Each corpus is scored by a network trained on the other four only.\n")
    before = table([out / "results" / "shipped-before" / "all.npz"], info, names)
    main_lo = table(loco_paths(out, "main", names), info, names) if config != "main" else None
    cv_prior = {t: table(cv_p, info, names, prior=t, key=key) for t in PRIORS}
    best_prior = max(PRIORS, key=lambda t: cv_prior[t]["mean"]["uar8"] if cv_prior[t] else -1.0)
    loco_prior = table(loco_p, info, names, prior=best_prior, key=key) if cv_prior[best_prior] else None
    rows = _baseline_rows(loco_p, info, names, key, temperature) + _condition_rows(loco_p, info, names, keys,
                                                                                  temperature)
    deg = degraded_table(loco_p, info, names)
    if deg is not None:
        what = "the same clips through another voice, a room, noise or babble, or a telephone/codec/microphone (each "\
               "version a file of its own, normalised as heard)"
        rows += [(f"UAR, {what}", deg, "uar8"), (f"arousal, {what}", deg, "arousal_uar")]
    rows += [(f"UAR with the label-coverage prior ({best_prior:g}, chosen on the cross-validation)", loco_prior,
              "uar8")]
    if main_lo:
        rows += [("`main` (trained without normalisation), each window alone: UAR", main_lo, "uar8"),
                 ("`main`: arousal", main_lo, "arousal_uar")]
    rows += [("shipped before (RAVDESS only): UAR", before, "uar8"), ("shipped before: arousal", before, "arousal_uar")]
    L += _block(names, rows)
    L.append("| chance | " + " | ".join(f"{1 / len(c.labels):.3f}" for c in corpora) + " | |")
    L.append("\nThe model shipped before was trained on RAVDESS actors 01-20, so its RAVDESS figure is not a held-out "
             "one; on the other four corpora it is.\n")

    L.append("## Speaker-independent cross-validation over all corpora\n")
    L.append("5 folds; fold k holds out the k-th fold of whole speakers of every corpus (genders spread evenly; "
             "RAVDESS: the same 4 actors per fold as the RAVDESS-only report, 2 men and 2 women). esd0020 has one "
             "speaker and stays on the training side (it is held out whole above). Pooled = mean over the corpora.\n")
    cv_main = table(cv_paths(out, "main"), info, names) if config != "main" else None
    cv_names = [n for n in names if n != "esd0020"]
    if not has_probs(cv_p, key) and best != config:
        L.append(f"The cross-validation of `{config}` has not run (it did not fit the session's time); these are "
                 f"the figures of `{best}`, the configuration it was derived from.\n")
        cv_p = cv_paths(out, best)
    rows = _baseline_rows(cv_p, info, cv_names, key, temperature) + _condition_rows(cv_p, info, cv_names,
                                                                                   keys, temperature)
    rows += [(f"UAR with the label-coverage prior ({best_prior:g})", cv_prior[best_prior], "uar8")]
    if cv_main:
        rows += [("`main`, each window alone: UAR", cv_main, "uar8")]
    L += _block(cv_names, rows, mean="pooled")
    L.append("\nThe RAVDESS-only model reached 0.615 on the same RAVDESS folds (`REPORT_RAVDESS.md`, three networks "
             "averaged).\n")

    L.append("## Ablation: augmentation and window normalisation, for unheard corpora\n")
    L.append("Leave-one-corpus-out UAR with a short schedule (one network, 12 epochs of 4000 clips), for the "
             "configurations below. A kind of augmentation is kept only if removing it lowers the mean.\n")
    L.append("| configuration | " + " | ".join(names) + " | mean UAR | mean arousal |\n|" + " --- |" * (len(names) + 3))
    for name in ablation_configs():
        t = table(loco_paths(out, name, names), info, names)
        if t is None:
            L.append(f"| {name} | " + " | ".join("–" for _ in names) + " | (not run) | |")
            continue
        L.append(f"| {name} | " + " | ".join(_f(t[n]["uar8"]) for n in names) +
                 f" | {_f(t['mean']['uar8'])} | {_f(t['mean']['arousal_uar'])} |")
    if chosen:
        dropped = ", ".join(chosen.get("dropped_kinds", [])) or "none"
        L.append(f"\nChosen: versions {', '.join(chosen.get('versions', []))}; window normalisation "
                 f"{'on' if chosen.get('window_norm') else 'off'}; dropped: {dropped}. One seed each: differences "
                 "of 0.01-0.03 are within run-to-run noise.\n")

    L += _ablation2d(out, info, names, temperature)

    L += _arousal_centre(cv_p, loco_p, info, names, key, temperature)
    L.append("## Calibration\n")
    if cal and cal.get("fitted_on_cv", 1.0):
        L.append(f"Temperature {cal['temperature']:.3f}, fitted on the cross-validation's held-out windows "
                 f"(`{key}`, negative log-likelihood); the shipped model carries it as `temperature` in its "
                 "`emotion.json`, and the monitor applies it to every window. Expected calibration error of the top "
                 "label's confidence (15 bins, window level):\n")
        L.append("| | before | after |\n| --- | --- | --- |")
        L.append(f"| cross-validation (where it was fitted) | {cal['cv_ece_before']:.3f} | {cal['cv_ece_after']:.3f} |")
        if "loco_ece_before" in cal:
            L.append(f"| leave-one-corpus-out (never seen by the fit) | {cal['loco_ece_before']:.3f} | "
                     f"{cal['loco_ece_after']:.3f} |")
    elif cal:
        L.append(f"Temperature {cal['temperature']:.3f}, fitted on the leave-one-corpus-out held-out windows "
                 f"(`{key}`, negative log-likelihood; the cross-validation of `{config}` has not run): the confidence "
                 "is calibrated for recordings unlike any the network trained on. The shipped "
                 "model carries it as `temperature` in its `emotion.json`, and the monitor applies it to every window. "
                 "Expected calibration error of the top label's confidence (15 bins, window level):\n")
        L.append("| | before | after |\n| --- | --- | --- |")
        L.append(f"| leave-one-corpus-out (where it was fitted) | {cal['loco_ece_before']:.3f} | "
                 f"{cal['loco_ece_after']:.3f} |")
    else:
        L.append("(cross-validation not run yet)")

    findings = out / "results" / "FINDINGS.md"
    if findings.exists():  # written by hand from the tables above: what they mean and what was left undone
        L.append("\n" + findings.read_text().strip() + "\n")

    meta_path = out / "emotion.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        fm = meta.get("metrics", {}).get("final_model")
        if fm and "clips" in fm:
            L.append("\n## The shipped model\n")
            norm = "with its normalisation entry" if "normalisation" in meta else "without normalisation"
            L.append(f"`models/emotion.tflite`: {fm['size_bytes'] / 1024:.0f} KB, full-integer int8, configuration "
                     f"`{fm.get('config', config)}`, {fm.get('members', 1)} network(s) averaged inside the file, "
                     f"trained on all {fm['clips']} clips of {len(names)} corpora for {fm['epochs']} epochs "
                     f"({fm['seconds']:.0f} s on this machine), {norm}; int8/float agreement "
                     f"{fm['int8_float_agreement']:.3f} over {fm['agreement_windows']} windows.\n")
    path = out / REPORT_NAME
    path.write_text("\n".join(L) + "\n")
    return path
