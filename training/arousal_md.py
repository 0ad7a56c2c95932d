"""The arousal head's tables (``training.arousal``'s summary) as markdown."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.corpora import KNOWN_CORPORA

NAMES = {"run": "`score` run", "alone": "a file alone", "session": "live session",
         "run60": "`score` run, 60 % neutral", "session60": "live session, 60 % neutral"}
MAIN = ("run", "alone", "session")


def _m(d: dict) -> float:
    return float(np.mean(list(d.values())))


def write_markdown(path: Path, s: dict) -> None:
    ch = s["chosen"]
    var = s["cv"]["variants"]
    chosen = f"{ch['standardised_by']}/C={ch['c']}" + ("/+CNN" if ch["reads_cnn"] else "")
    b = str(ch["blend"])
    # the best head of each family by itself (b = 1), by the CV sum: for the record, not a choice
    alone = {fam: max((v for v in var if v.endswith("/+CNN") == fam),
                      key=lambda v: sum(var[v]["1.0"][x] for x in MAIN)) for fam in (False, True)}
    f_head, c_head = alone[False], alone[True]
    lines = [
        "# The arousal head (written by `python -m training.arousal --data ../shared/data`)",
        "",
        "Binary arousal (high: angry, happy, fearful, surprised; low: neutral, calm, sad; disgust not scored), "
        "clip level (the sign of a clip's windows' mean arousal), balanced accuracy. *Shipped*: the arousal of the "
        "shipped fusion's probabilities (CNN + prosody head, their weights and temperatures, as the monitor writes "
        "it). *Head*: a class-balanced (corpus x arousal class) logistic regression on the 40 functionals "
        "standardised per voice as the prosody head's, `2 P(high) - 1`; *+CNN*: it also reads the CNN's own "
        "arousal. Written: `b * head + (1 - b) * shipped`. Head (standardised per corpus or speaker in training, "
        f"L2 C) and b chosen on the CV (sum over run / alone / session): **{chosen}, b = {b}**, CV gain "
        f"{s['gain_cv_sum']:+.3f} (rule: {s['rule']}): **{'adopted' if s['adopted'] else 'not adopted'}**.",
        "",
        "## Cross-validation (speaker-independent; mean over folds and corpora)",
        "",
        f"| setting | shipped | chosen (b = {b}) | {f_head} alone | {c_head} alone | AUC shipped | AUC {f_head} | "
        f"AUC {c_head} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for st in NAMES:
        auc = s["cv_auc"][st]
        lines.append(f"| {NAMES[st]} | {s['cv']['shipped'][st]:.3f} | {var[chosen][b][st]:.3f} | "
                     f"{var[f_head]['1.0'][st]:.3f} | {var[c_head]['1.0'][st]:.3f} | {_m(auc['shipped']):.3f} | "
                     f"{_m(auc[f_head]):.3f} | {_m(auc[c_head]):.3f} |")
    lines += ["", "CV, the sum over run / alone / session of every head at every b (b = 0: the shipped arousal):", "",
              "| head | " + " | ".join(f"b={x}" for x in var[chosen]) + " |", "|---|" + "---|" * len(var[chosen])]
    for name, by_b in var.items():
        lines.append(f"| {name} | " + " | ".join(f"{sum(v[x] for x in MAIN):.3f}" for v in by_b.values()) + " |")
    lines += ["", "CV per corpus (shipped / chosen / " + f"{f_head} alone):", "",
              "| setting | " + " | ".join(KNOWN_CORPORA) + " |", "|---|" + "---|" * len(KNOWN_CORPORA)]
    for st in NAMES:
        pc, al = s["cv_per_corpus"][st], s["cv_all"][f_head]["1.0"][st]
        lines.append(f"| {NAMES[st]} | " + " | ".join(
            f"{pc['shipped'][c]:.3f} / {pc['head'][c]:.3f} / {al[c]:.3f}" if c in pc["shipped"] else "-"
            for c in KNOWN_CORPORA) + " |")
    lines += ["", "## Corpora never heard (leave-one-corpus-out; read after the choice)", "",
              "| setting | | mean | " + " | ".join(KNOWN_CORPORA) + " |", "|---|---|---|" + "---|" * len(KNOWN_CORPORA)]
    la = s["loco_all_read_after_the_choice"]
    for st in NAMES:
        rows = (("shipped", s["loco"][st]["shipped"]), (f"chosen ({chosen}, b = {b})", la[chosen][b][st]),
                (f"{f_head} alone", la[f_head]["1.0"][st]), (f"{c_head} alone", la[c_head]["1.0"][st]),
                ("shipped, best threshold per corpus (oracle)", s["loco_oracle_threshold_shipped"][st]),
                ("AUC shipped", s["loco_auc"][st]["shipped"]), (f"AUC {f_head}", s["loco_auc"][st][f_head]),
                (f"AUC {c_head}", s["loco_auc"][st][c_head]))
        for label, d in rows:
            lines.append(f"| {NAMES[st]} | {label} | {_m(d):.3f} | " + " | ".join(f"{d[c]:.3f}" for c in KNOWN_CORPORA)
                         + " |")
    Path(path).write_text("\n".join(lines) + "\n")
