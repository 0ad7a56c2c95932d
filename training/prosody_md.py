"""``models/PROSODY.md``: the tables of ``training.prosody`` (the prosody head beside the CNN)."""

from __future__ import annotations

from pathlib import Path

from training.corpora import KNOWN_CORPORA

SETTINGS = {
    "run": "`score` (default): each clip a file of a run, the CNN with the run's baseline, the file's voice over the "
           "run's statistics",
    "alone": "one file judged alone (`--baseline off`, a web upload): the file's voice over the training windows' "
             "statistics",
    "session": "live: each speaker's clips one session heard in a random order (the CNN normalised as heard), the "
               "voice over the training windows' statistics",
    "run60": "`score` runs in which neutral (TurEV: calm) is 60 % of the clips (the run's weight)",
    "session60": "live sessions in which neutral (TurEV: calm) is 60 % of the speaker's clips",
}


def _row(w: str, head: str, row: dict, mark: str) -> str:
    loco = row["loco"]
    mean = [sum(loco[c][k] for c in KNOWN_CORPORA) / len(KNOWN_CORPORA) for k in ("uar8", "uar", "arousal_uar")]
    cells = " | ".join(f"{loco[c]['uar8']:.3f}" for c in KNOWN_CORPORA)
    return (f"| {w}{mark} | {head} | {row['cv_uar8']:.3f} | {cells} | {mean[0]:.3f} | {mean[1]:.3f} | "
            f"{mean[2]:.3f} |")


def write_markdown(path: Path, chosen: dict, head: str, calibration: dict, table: dict, windows: int,
                   voice_dims: int = 0, command: str = "", run_voices: bool = False) -> None:
    """``voice_dims``: the tables are the voice head's (``training.prosody --voice``, ``command``); ``run_voices``:
    its `score` runs grouped their clips by voice."""
    voice = [
        f"# The voice head beside the CNN (written by `{command}`)",
        "",
        "The monitor fuses this head instead of the prosody head ([`PROSODY.md`](PROSODY.md)) when speaker turns "
        "are on (the default of `live` and `score`), since the speaker encoder has heard each window then. Its "
        f"inputs: the 40 functionals and the first {voice_dims} principal components of the speaker encoder's "
        "states for the window (`monitor/speakers/encoder.py` `read`: each unit's mean and spread over time in the "
        "GE2E encoder's second and third LSTM layers, 1024 numbers; the components fitted on each evaluation's "
        "training windows), standardised per voice like the functionals (a voice's usual states taken out, what "
        "is left is how the voice moves); in a `score` run the survey's statistics are the prior of the "
        "functionals, the training windows' of the states, and "
        + ("the run's voices (`monitor/inference/run_voices.py`, `[speakers] run_voices`, on by default): the "
           "surveyed clips grouped by voice in the speaker space, each clip's prior the statistics of every input "
           "of its nearest group (weight `n / (n + 4)` for a group of n clips, the run's for the rest); the `score` "
           "rows below measure that. " if run_voices else "the run's voices are off (`--run-voices off`). ")
        + "How K and the head were "
        "chosen, and what that choice saw: the voice head's paragraph in [`REPORT.md`](REPORT.md)'s findings. "
        "Everything else as for the prosody head:",
        "",
    ] if voice_dims else []
    lines = voice + [
        "# The prosody head beside the CNN (written by `python -m training.prosody --data ../shared/data`)"
        if not voice_dims else "## How it is measured",
        "",
        f"Functionals of {windows} windows (`monitor/dsp/functionals.py`, 40 per window), a class-balanced softmax "
        "regression, fused with the shipped configuration's held-out probabilities: `log p = w log p_cnn + (1 - w) "
        "log p_prosody`. w = 1 is the CNN alone. Each window's functionals are standardised as the monitor does "
        "(`VoiceStats`): by its voice's own statistics as far as they have been heard (`n / (n + 4)` windows), "
        "the prior's for the rest. Four heads are measured: trained on functionals standardised per corpus or "
        "per speaker, with a loss over all eight labels or over each corpus's own; beside them heads with one "
        "hidden layer (`--hidden`, tanh units, standardised per corpus, loss over all labels), shipped only if the "
        "CV sum (run + alone + session at their weights) beats the regression's by 0.015. The head (the one "
        "standardised per corpus with its loss over all labels unless another beats its CV sum by 0.015 too), and "
        "the weight of each prior, are chosen on the cross-validation (mean 8-way UAR over folds and corpora), then "
        "read on the "
        f"corpora never heard (the head trained on the other four). Shipped head: **{head}**. Clip level: a "
        "clip's windows' fused probabilities averaged.",
        "",
    ]
    for setting, text in SETTINGS.items():
        per_head = table[setting]
        lines += [f"## {text}", "", f"Weight: w = {chosen[setting]}.", "",
                  "| w | head | CV 8-way | " + " | ".join(f"unheard {c}" for c in KNOWN_CORPORA)
                  + " | unheard mean 8-way | own labels | binary arousal |",
                  "|---" * (6 + len(KNOWN_CORPORA)) + "|"]
        for w, row in per_head[head].items():
            lines.append(_row(w, head, row, " (chosen)" if float(w) == chosen[setting] else ""))
        for other, per_w in per_head.items():
            if other != head:
                w, row = max(per_w.items(), key=lambda kv: kv[1]["cv_uar8"])
                lines.append(_row(w, other, row, " (its best on the CV)"))
        lines.append("")
    lines += ["Calibration on the CV's windows (expected calibration error of the confidence shown; the fused "
              "output is divided by a temperature fitted there, one per prior):", "",
              "| prior | CNN alone | fused | fused, temperature | temperature |", "|---|---|---|---|---|"]
    for prior, c in calibration.items():
        lines.append(f"| {prior} | {c['ece_cnn']:.3f} | {c['ece_fused']:.3f} | {c['ece_fused_scaled']:.3f} | "
                     f"{c['temperature']:.3f} |")
    lines += ["", "CV per corpus (8-way, the shipped head):", "",
              "| setting | w | " + " | ".join(KNOWN_CORPORA) + " |", "|---" * (2 + len(KNOWN_CORPORA)) + "|"]
    for setting in SETTINGS:
        for w in ("1.0", str(chosen[setting])):
            per = table[setting][head][w]["cv_per_corpus"]
            lines.append(f"| {setting} | {w} | " + " | ".join(f"{per[c]:.3f}" if c in per else "-"
                                                               for c in KNOWN_CORPORA) + " |")
    path.write_text("\n".join(lines) + "\n")
