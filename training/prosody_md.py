"""``models/PROSODY.md``: the tables of ``training.prosody`` (the prosody head beside the CNN)."""

from __future__ import annotations

from pathlib import Path

from training.corpora import KNOWN_CORPORA

SETTINGS = {
    "run": "`score` with the run's baseline (default): the CNN's lean and the functionals' statistics from the "
           "run (each held-out corpus one run)",
    "alone": "one file, the live monitor, `--baseline off`: the CNN alone, the functionals standardised by the "
             "training windows' statistics",
    "run60": "`score` with the run's baseline, runs in which neutral (TurEV: calm) is 60 % of the clips (the "
             "run's weight; a skewed run moves both the lean and the statistics)",
}


def write_markdown(path: Path, chosen: dict, mask: bool, calibration: dict, table: dict, windows: int) -> None:
    lines = [
        "# The prosody head beside the CNN (written by `python -m training.prosody --data ../shared/data`)",
        "",
        f"Functionals of {windows} windows (`monitor/dsp/functionals.py`, 40 per window), a class-balanced softmax "
        "regression, fused with the shipped configuration's held-out "
        "probabilities: `log p = w log p_cnn + (1 - w) log p_prosody`. w = 1 is the CNN alone. The weight of "
        "each setting is chosen on the cross-validation (mean 8-way UAR over folds and corpora), then read on "
        "the corpora never heard (the head trained on the other four). Clip level: a clip's windows' fused "
        "probabilities averaged. Two losses are measured: each window's softmax over its corpus's labels "
        "(masked) or over all eight; the one whose settings score better on the CV is shipped: "
        f"{'masked' if mask else 'all eight labels'}.",
        "",
    ]
    for setting, text in SETTINGS.items():
        said = "the run's" if setting == "run60" else "chosen on the CV"
        lines += [f"## {text}", "", f"Weight: w = {chosen[setting]}, {said}.", "",
                  "| w | loss | CV 8-way | " + " | ".join(f"unheard {c}" for c in KNOWN_CORPORA)
                  + " | unheard mean 8-way | own labels | binary arousal |",
                  "|---" * (6 + len(KNOWN_CORPORA)) + "|"]
        for m, per_w in table[setting].items():
            for w, row in per_w.items():
                loco = row["loco"]
                mean = [sum(loco[c][k] for c in KNOWN_CORPORA) / len(KNOWN_CORPORA)
                        for k in ("uar8", "uar", "arousal_uar")]
                mark = " (chosen)" if float(w) == chosen[setting] and m == str(mask) else ""
                lines.append(f"| {w}{mark} | {'masked' if m == 'True' else 'all labels'} | {row['cv_uar8']:.3f} | "
                             + " | ".join(f"{loco[c]['uar8']:.3f}" for c in KNOWN_CORPORA)
                             + f" | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} |")
        lines.append("")
    lines += ["Calibration on the CV's windows (expected calibration error of the confidence shown; the fused "
              "output is divided by a temperature fitted there):", "",
              "| setting | CNN alone | fused | fused, temperature | temperature |", "|---|---|---|---|---|"]
    for setting, c in calibration.items():
        lines.append(f"| {setting} | {c['ece_cnn']:.3f} | {c['ece_fused']:.3f} | {c['ece_fused_scaled']:.3f} | "
                     f"{c['temperature']:.3f} |")
    lines += ["", "CV per corpus (8-way, the shipped loss):", "",
              "| setting | w | " + " | ".join(KNOWN_CORPORA) + " |", "|---" * (2 + len(KNOWN_CORPORA)) + "|"]
    for setting in SETTINGS:
        for w in ("1.0", str(chosen[setting])):
            per = table[setting][str(mask)][w]["cv_per_corpus"]
            lines.append(f"| {setting} | {w} | " + " | ".join(f"{per[c]:.3f}" if c in per else "-"
                                                               for c in KNOWN_CORPORA) + " |")
    path.write_text("\n".join(lines) + "\n")
