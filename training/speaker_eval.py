"""Speaker turns, evaluated on synthetic conversations from the shared corpora: one command.

    PYTHONPATH=. python -m training.speaker_eval [--data /work/shared/data] [--per-kind 8] [--only long]

Builds conversations (training/conversations.py) from a tuning half and a held-out half of the voices, runs
each through the monitor's own segmenter (default [vad]/[windows] settings), the numpy speaker encoder and the
online clustering of monitor.speakers (the batch form: merged labels resolved at the end of the file), and
measures:

- utterance attribution accuracy: a turn's label is the one its windows cover most of it with; right when it
  is the label the best one-to-one mapping (Hungarian, over turn counts) gives its true voice; a turn with no
  window or no label is wrong;
- speakers found per conversation (right count or not);
- diarization error rate over 10 ms frames (missed speech + false alarm + confusion, over the reference
  speech; reference speech = each turn's span above its clip's peak - 40 dB; no collar), best frame mapping.

Voices are compared in the LDA space of models/speaker_lda.npz (fitted on the tuning voices only by
training/fit_speaker_lda.py) or as raw embeddings (grid key ``lda``). The clustering settings are chosen on the
tuning conversations (grid below; the embeddings do not depend on them, so they are computed once) and
reported on the held-out ones, for the chosen settings and for the shipped defaults (SpeakerOptions()). Files
(``voice-monitor score``) add a second pass over all of a file's windows (monitor/speakers/recluster.py): its
threshold and the smallest group it keeps are chosen on a larger set of tuning conversations (``--files-per-kind``
of each kind, from the same tuning voices) that are CROSS-FITTED: each is projected by an LDA fitted on the
tuning voices without its own (training/fit_speaker_lda.py's clips), so the tuning voices are as unheard by the
speaker space as the held-out ones are (with the shipped LDA, which has heard them, one voice's windows lie
closer together than a new voice's do, and thresholds chosen there split the held-out voices). The choice is the
best mean objective over a threshold and its two neighbours (``RECLUSTER_GRID`` x ``RECLUSTER_MIN_GRID``, the
other settings shipped), which a lucky single threshold does not win. The held-out figures are given both live
(online labels) and as files.

Live (``voice-monitor live``, monitor/speakers/live.py) the labels come from the online clustering for the first
windows, then from a complete-linkage pass over the session so far at each long window (``live_*`` settings):
those settings are chosen on the same cross-fitted tuning conversations (``LIVE_GRID``; the best mean objective
over a setting and its neighbours in threshold, warm-up and settling, at each group size), and the held-out
figures are given with it and without it (the online clustering alone, as before). Live sessions run for
minutes, so the live choice also counts long conversations (``LONG_TURNS``, ``--long-per-kind`` of each kind,
cross-fitted tuning ones), and long held-out ones are reported live and as files.

Files with many windows: complete linkage over all of them splits voices (a group's widest pair grows with its
size), so above ``recluster_max_windows`` long windows a file is labelled as live would, then its speakers
whose centres lie within ``merge_threshold`` are joined (monitor/speakers/turns.py, ``file_labels``). That
bound is chosen (``RECLUSTER_MAX_GRID``, the best sum of the objectives over the short, the middle-length
(``MID_TURNS``, ``--mid-per-kind``) and the long cross-fitted tuning conversations, averaged with the
neighbours in the grid) and the middle and long held-out conversations are reported with it and without it.
Either way a file's speakers are then refined by k-means over its long windows started from them
(``recluster_refine_iterations``); the tuning objective of each set with and without it is printed and written
(``files_refine_tuning_objective``), and the held-out tables are given without it too.
``--only long`` builds the middle and long conversations alone and prints their tables (a few minutes; writes
nothing).
Writes models/speakers_eval.json and models/speakers_eval.md (the tables); models/SPEAKERS.md is the report.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from monitor.config import Config
from monitor.dsp.segmenter import SegmenterOptions, segment_audio
from monitor.speakers.cluster import SpeakerOptions, SpeakerTracker
from monitor.speakers.encoder import SpeakerEncoder
from monitor.speakers.live import RECENT_WINDOWS, LiveTracker
from monitor.speakers.turns import file_labels as whole_file_labels
from training.conversations import RATE, Conversation, conversations, load_voices, split
from training.fit_speaker_lda import embed_clips, fit

ROOT = Path(__file__).resolve().parents[1]
GRID = {
    "lda": [False, True],
    "spread": [0.0, 0.3],
    "threshold": [0.2, 0.3, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    "merge_threshold": [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    "min_embed_s": [0.8, 1.3],
    "settle_windows": [0, 4, 8],
}
# files (batch): the second pass over the whole file (monitor/speakers/recluster.py), the other settings shipped
RECLUSTER_GRID = [round(0.6 + 0.05 * k, 2) for k in range(13)]  # 0.60 ... 1.20
RECLUSTER_MIN_GRID = [2, 3, 4]  # recluster_min_windows
# live: the second pass over the session so far (monitor/speakers/live.py), the online settings shipped
LIVE_GRID = {
    "live_warm_windows": [2, 4, 6],
    "live_recluster_threshold": [0.9, 0.95, 1.0, 1.05],
    "live_min_windows": [3],
    "live_settle_windows": [4, 6],
}
LONG_TURNS = (80, 80)  # long conversations: live sessions run for minutes, the clustering must not drift
MID_TURNS = (20, 50)  # between the short and the long ones: where the files' two ways of labelling meet
# files: above this many long windows, the live pass over the file + merges (0: never, the last in the order)
RECLUSTER_MAX_GRID = [10, 12, 14, 16, 18, 20, 22, 25, 30, 40, 50, 0]


@dataclass
class Embedded:
    conv: Conversation
    windows: list[tuple[int, int, np.ndarray | None, float]]  # start, end (samples), raw embedding, seconds
    projected: list[np.ndarray | None]  # the same in the LDA speaker space (SpeakerEncoder.project)


@dataclass
class Result:
    name: str
    kind: str
    true_speakers: int
    found: int
    turns: int
    right: int
    der: float
    missed: float
    false_alarm: float
    confusion: float


def embed_all(convs: list[Conversation], encoder: SpeakerEncoder, seg: SegmenterOptions) -> list[Embedded]:
    out = []
    for c in convs:
        wins = segment_audio(c.audio, seg)
        windows = [(w.start_sample, w.end_sample, encoder.embed(w.audio), len(w.audio) / RATE) for w in wins]
        out.append(Embedded(c, windows, [encoder.project(w[2]) for w in windows]))
    return out


def cross_fit(embedded: list[Embedded], clips: np.ndarray, names: np.ndarray, dims: int) -> list[Embedded]:
    """The same windows, each conversation projected by an LDA fitted on the clips of the voices NOT in it."""
    out = []
    for e in embedded:
        keep = ~np.isin(names, sorted(e.conv.voices))
        mean, projection = fit(clips[keep], names[keep], dims)
        projected = []
        for w in e.windows:
            if w[2] is None:
                projected.append(None)
                continue
            z = (w[2] - mean) @ projection
            projected.append((z / max(float(np.linalg.norm(z)), 1e-12)).astype(np.float32))
        out.append(Embedded(e.conv, e.windows, projected))
    return out


def choose_second_pass(embedded: list[Embedded], shipped: SpeakerOptions) -> tuple[SpeakerOptions, dict]:
    """recluster_threshold x recluster_min_windows with the best objective averaged over the threshold and its
    neighbours in ``RECLUSTER_GRID``; returns the options and every setting's objective."""
    scores: dict[tuple[int, float], float] = {}
    for min_windows in RECLUSTER_MIN_GRID:
        for threshold in RECLUSTER_GRID:
            opts = replace(shipped, recluster_threshold=threshold, recluster_min_windows=min_windows)
            scores[(min_windows, threshold)] = objective(summarize([evaluate(e, opts, True) for e in embedded]))
    smoothed = {}
    for (min_windows, threshold), _ in scores.items():
        i = RECLUSTER_GRID.index(threshold)
        near = RECLUSTER_GRID[max(0, i - 1) : i + 2]
        smoothed[(min_windows, threshold)] = float(np.mean([scores[(min_windows, t)] for t in near]))
    min_windows, threshold = max(smoothed, key=lambda k: (smoothed[k], -k[0]))
    grid = {f"{m} {t}": [round(scores[(m, t)], 4), round(smoothed[(m, t)], 4)] for m, t in scores}
    return replace(shipped, recluster_threshold=threshold, recluster_min_windows=min_windows), grid


def choose_live_pass(
    embedded: list[Embedded], long: list[Embedded], shipped: SpeakerOptions
) -> tuple[SpeakerOptions, dict]:
    """The ``LIVE_GRID`` setting with the best objective (on ``embedded`` plus on the ``long`` conversations)
    averaged over itself and its neighbours in threshold, warm-up and settling (same group size); returns the
    options and every setting's objective."""
    keys = list(LIVE_GRID)
    scores: dict[tuple, float] = {}
    for values in itertools.product(*LIVE_GRID.values()):
        opts = replace(shipped, **dict(zip(keys, values, strict=True)))
        scores[values] = objective(summarize([evaluate(e, opts) for e in embedded])) + objective(
            summarize([evaluate(e, opts) for e in long])
        )
    smoothed = {}
    for values in scores:
        index = [LIVE_GRID[k].index(v) for k, v in zip(keys, values, strict=True)]
        near = []
        for step in itertools.product(*[[0] if k == "live_min_windows" else [-1, 0, 1] for k in keys]):
            j = [i + d for i, d in zip(index, step, strict=True)]
            if all(0 <= jj < len(LIVE_GRID[k]) for jj, k in zip(j, keys, strict=True)):
                near.append(scores[tuple(LIVE_GRID[k][jj] for jj, k in zip(j, keys, strict=True))])
        smoothed[values] = float(np.mean(near))
    best = max(smoothed, key=lambda v: smoothed[v])
    grid = {" ".join(map(str, v)): [round(scores[v], 4), round(smoothed[v], 4)] for v in scores}
    return replace(shipped, **dict(zip(keys, best, strict=True))), grid


def choose_max_windows(sets: list[list[Embedded]], shipped: SpeakerOptions) -> tuple[SpeakerOptions, dict]:
    """``recluster_max_windows`` with the best sum of the objectives over ``sets`` (files), averaged with its
    neighbours in ``RECLUSTER_MAX_GRID``; returns the options and every value's [objective, smoothed]."""
    scores = {
        n: sum(objective(summarize([evaluate(e, replace(shipped, recluster_max_windows=n), True) for e in es]))
               for es in sets)
        for n in RECLUSTER_MAX_GRID
    }
    smoothed = {}
    for i, n in enumerate(RECLUSTER_MAX_GRID):
        near = RECLUSTER_MAX_GRID[max(0, i - 1) : i + 2]
        smoothed[n] = float(np.mean([scores[m] for m in near]))
    best = max(RECLUSTER_MAX_GRID, key=lambda n: smoothed[n])
    grid = {str(n): [round(scores[n], 4), round(smoothed[n], 4)] for n in RECLUSTER_MAX_GRID}
    return replace(shipped, recluster_max_windows=best), grid


def _best_map(counts: np.ndarray) -> dict[int, int]:
    rows, cols = linear_sum_assignment(-counts)
    return {int(c): int(r) for r, c in zip(rows, cols, strict=True) if counts[r, c] > 0}


def online_labels(e: Embedded, options: SpeakerOptions) -> list[str]:
    """The batch form of the online clustering: each window's label, merged labels resolved at the end."""
    tracker = SpeakerTracker(options)
    vectors = e.projected if options.lda else [w[2] for w in e.windows]
    labels = [tracker.assign(v, w[3]) for v, w in zip(vectors, e.windows, strict=True)]
    return [tracker.resolve(lab) if lab else "" for lab in labels]


def live_labels(e: Embedded, options: SpeakerOptions) -> list[str]:
    """What a live session gives each window (``voice-monitor live``): the label given when the window arrived,
    resolved at the end of the session; with ``live_recluster_threshold`` 0 the online clustering alone."""
    if options.live_recluster_threshold <= 0:
        return online_labels(e, options)
    tracker = LiveTracker(options)
    vectors = e.projected if options.lda else [w[2] for w in e.windows]
    labels = [tracker.assign(v, w[3]) for v, w in zip(vectors, e.windows, strict=True)]
    return [tracker.resolve(lab) if lab else "" for lab in labels]


def file_labels(e: Embedded, options: SpeakerOptions) -> list[str]:
    """What ``voice-monitor score`` writes: the online pass, then the second pass over the whole file (up to
    ``recluster_max_windows`` long windows; above, the live pass over the file and merges)."""
    labels = online_labels(e, options)
    if options.recluster_threshold <= 0:
        return labels
    vectors = e.projected if options.lda else [w[2] for w in e.windows]
    final = whole_file_labels(vectors, [w[3] for w in e.windows], options)
    return labels if final is None else final


def evaluate(e: Embedded, options: SpeakerOptions, whole_file: bool = False) -> Result:
    """Live (``live_labels``) or, with ``whole_file``, as a scored file."""
    return score(e, file_labels(e, options) if whole_file else live_labels(e, options))


def turn_rights(e: Embedded, labels: list[str]) -> list[bool]:
    """Per turn: is it attributed right (the label covering most of it, under the best mapping)?"""
    voices = sorted(e.conv.voices)
    found = sorted({lab for lab in labels if lab})
    vi = {v: i for i, v in enumerate(voices)}
    fi = {f: i for i, f in enumerate(found)}
    turn_label: list[int] = []
    for t in e.conv.turns:
        cover = np.zeros(len(found))
        for (s, en, _, _), lab in zip(e.windows, labels, strict=True):
            ov = min(en, t.end) - max(s, t.start)
            if ov > 0 and lab:
                cover[fi[lab]] += ov
        turn_label.append(int(np.argmax(cover)) if cover.size and cover.max() > 0 else -1)
    counts = np.zeros((len(voices), max(1, len(found))))
    for t, f in zip(e.conv.turns, turn_label, strict=True):
        if f >= 0:
            counts[vi[t.voice], f] += 1
    mapping = _best_map(counts)
    return [f >= 0 and mapping.get(f) == vi[t.voice] for t, f in zip(e.conv.turns, turn_label, strict=True)]


def score(e: Embedded, labels: list[str]) -> Result:
    """The measures of one conversation labelled ``labels`` (one per window)."""
    voices = sorted(e.conv.voices)
    found = sorted({lab for lab in labels if lab})
    vi = {v: i for i, v in enumerate(voices)}
    fi = {f: i for i, f in enumerate(found)}
    right = sum(turn_rights(e, labels))
    # frames (10 ms)
    n = len(e.conv.audio) // 160 + 1
    ref = np.full(n, -1)
    for t in e.conv.turns:
        ref[t.speech_start // 160 : t.speech_end // 160] = vi[t.voice]
    hyp = np.full(n, -1)
    for (s, en, _, _), lab in zip(e.windows, labels, strict=True):
        if lab:
            hyp[s // 160 : en // 160] = fi[lab]
    fcounts = np.zeros((len(voices), max(1, len(found))))
    both = (ref >= 0) & (hyp >= 0)
    np.add.at(fcounts, (ref[both], hyp[both]), 1)
    fmap = _best_map(fcounts)
    speech = max(1, int((ref >= 0).sum()))
    missed = int(((ref >= 0) & (hyp < 0)).sum())
    fa = int(((ref < 0) & (hyp >= 0)).sum())
    mapped = np.array([fmap.get(h, -2) for h in range(max(1, len(found)))])  # -2: a label mapped to no voice
    conf = int((mapped[hyp[both]] != ref[both]).sum())
    return Result(
        e.conv.name, e.conv.kind, len(voices), len(found), len(e.conv.turns), right,
        (missed + fa + conf) / speech, missed / speech, fa / speech, conf / speech,
    )


def oracle_accuracy(embedded: list[Embedded]) -> float:
    """Windows given to the nearest TRUE speaker mean (means known from the answers): what the embeddings allow
    when the clustering makes no mistake. Separates the encoder's limit from the clustering's."""
    right = total = 0
    for e in embedded:
        owner = [
            max(e.conv.turns, key=lambda t, s=s, en=en: min(en, t.end) - max(s, t.start)).voice
            for s, en, _, _ in e.windows
        ]
        embs = [(w[2], v) for w, v in zip(e.windows, owner, strict=True) if w[2] is not None]
        means = {v: np.mean([x for x, o in embs if o == v], axis=0) for v in {o for _, o in embs}}
        right += sum(max(means, key=lambda v, x=x: float(means[v] @ x)) == o for x, o in embs)
        total += len(embs)
    return right / max(1, total)


def error_sources(embedded: list[Embedded], options: SpeakerOptions, whole_file: bool) -> dict[str, float]:
    """Shares of the two-speaker turns that are wrong because no window overlaps them, because a window spans
    another turn (wrong even when every window carries its true majority voice), or by the clustering."""
    n = no_window = spans = clustering = 0
    for e in embedded:
        if len(e.conv.voices) != 2:
            continue
        labels = file_labels(e, options) if whole_file else live_labels(e, options)
        truth = [
            max(e.conv.turns, key=lambda t, s=s, en=en: min(en, t.speech_end) - max(s, t.speech_start)).voice
            if any(min(en, t.speech_end) > max(s, t.speech_start) for t in e.conv.turns) else ""
            for s, en, _, _ in e.windows
        ]
        got, best = turn_rights(e, labels), turn_rights(e, truth)
        for t, ok, ideal in zip(e.conv.turns, got, best, strict=True):
            n += 1
            if ok:
                continue
            if not any(min(en, t.end) > max(s, t.start) for s, en, _, _ in e.windows):
                no_window += 1
            elif not ideal:
                spans += 1
            else:
                clustering += 1
    n = max(1, n)
    return {"turns": n, "no_window": round(no_window / n, 4), "spans_another_turn": round(spans / n, 4),
            "clustering": round(clustering / n, 4)}


def summarize(results: list[Result]) -> dict[str, dict[str, float]]:
    kinds: dict[str, list[Result]] = {}
    for r in results:
        kinds.setdefault(r.kind, []).append(r)
        kinds.setdefault("two speakers", []).append(r) if r.true_speakers == 2 else None
        kinds.setdefault("all", []).append(r)
    return {
        k: {
            "conversations": len(rs),
            "utterance_accuracy": sum(r.right for r in rs) / max(1, sum(r.turns for r in rs)),
            "right_count": sum(r.found == r.true_speakers for r in rs) / len(rs),
            "der": float(np.mean([r.der for r in rs])),
            "missed": float(np.mean([r.missed for r in rs])),
            "false_alarm": float(np.mean([r.false_alarm for r in rs])),
            "confusion": float(np.mean([r.confusion for r in rs])),
        }
        for k, rs in kinds.items()
    }


def objective(summary: dict[str, dict[str, float]]) -> float:
    """What the tuning maximises: two-speaker utterance accuracy + right speaker counts (all sizes)."""
    return summary["two speakers"]["utterance_accuracy"] + summary["all"]["right_count"]


def table(summary: dict[str, dict[str, float]]) -> str:
    lines = [
        "| conversations | n | utterances right | right speaker count | DER | missed | false alarm | confusion |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, s in summary.items():
        lines.append(
            f"| {k} | {s['conversations']} | {s['utterance_accuracy']:.1%} | {s['right_count']:.0%} | {s['der']:.1%} | "
            f"{s['missed']:.1%} | {s['false_alarm']:.1%} | {s['confusion']:.1%} |"
        )
    return "\n".join(lines)


def by_length(
    args: argparse.Namespace, tune_voices: list, held_voices: list, encoder: SpeakerEncoder, seg: SegmenterOptions,
    lda: tuple[np.ndarray, np.ndarray, int],
) -> dict[str, list[Embedded]]:
    """The middle-length and the long conversations: tuning ones (cross-fitted by ``lda``: clips, their voices'
    names, dimensions) and held-out ones."""
    def tuned(es: list[Embedded]) -> list[Embedded]:
        return cross_fit(es, *lda)

    return {
        "mid_tune": tuned(embed_all(
            conversations(tune_voices, args.mid_per_kind, args.seed + 4, "tune-mid", MID_TURNS), encoder, seg)),
        "mid_held": embed_all(
            conversations(held_voices, max(1, args.mid_per_kind // 2), args.seed + 5, "held-mid", MID_TURNS),
            encoder, seg),
        "long_tune": tuned(embed_all(
            conversations(tune_voices, args.long_per_kind, args.seed, "tune-long", LONG_TURNS), encoder, seg)),
        "long_held": embed_all(
            conversations(held_voices, max(1, args.long_per_kind - 1), args.seed + 1, "held-long", LONG_TURNS),
            encoder, seg),
    }


def length_tables(
    tune: list[Embedded], held: list[Embedded], shipped: SpeakerOptions
) -> dict[str, dict[str, dict[str, float]]]:
    """Live (shipped, and the online clustering alone) and files (shipped, and the whole-file clustering at any
    length: recluster_max_windows 0) on tuning and held-out conversations."""
    live = replace(shipped, recluster_threshold=0.0)
    online = replace(live, live_recluster_threshold=0.0)
    whole = replace(shipped, recluster_max_windows=0)
    unrefined = replace(shipped, recluster_refine_iterations=0)
    out = {}
    for name, es in (("tuning (cross-fitted)", tune), ("held-out", held)):
        out[f"{name}, live"] = summarize([evaluate(e, live) for e in es])
        out[f"{name}, live before (online clustering alone)"] = summarize([evaluate(e, online) for e in es])
        out[f"{name}, files"] = summarize([evaluate(e, shipped, True) for e in es])
        out[f"{name}, files before (whole-file clustering at any length)"] = summarize(
            [evaluate(e, whole, True) for e in es])
        out[f"{name}, files before the refinement (recluster_refine_iterations 0)"] = summarize(
            [evaluate(e, unrefined, True) for e in es])
    return out


TABLES = """# Speaker turns: evaluation tables (written by `python -m training.speaker_eval`)

Settings chosen on the tuning half: {chosen}. Shipped defaults (config.toml [speakers]): {shipped}.

## Held-out voices ({n_held} conversations), shipped defaults, live

`voice-monitor live`: the online clustering names the first {warm} long windows, then each long window is named by a
second pass over the session's last {recent} long windows (complete linkage at {lthr}, groups of {lmin}+ once older than
{lsettle} windows; a group no label is left for takes the label of a voice heard before within `threshold`).

{held}

Before (the online clustering alone, live_recluster_threshold 0):
{held_online}

Live settings chosen on the {n_files_tune} cross-fitted tuning conversations: {lchosen}; those conversations at that
setting:
{live_tune}

and with the online clustering alone:
{live_tune_before}

Long conversations ({long_turns} turns; {n_long_tune} tuning, cross-fitted, and {n_long_held} held-out; the live choice
maximises the objective on the short plus the long tuning conversations). Files: above {rmax} long windows
(`recluster_max_windows`) a file is labelled as live would, then speakers whose centres lie within `merge_threshold`
are joined; "files before" clusters all of a file's windows at once at any length:
{long}

Middle-length conversations ({mid_turns} turns; {n_mid_tune} tuning, cross-fitted, and {n_mid_held} held-out):
{mid}

`recluster_max_windows` chosen on the cross-fitted tuning conversations (short, middle-length and long: the sum
of the three objectives; in brackets the mean with the neighbours in the grid, which decides; 0 = never): {rmaxchosen}
(shipped {rmax}). {max_grid}.

## Held-out voices, shipped defaults, files (`voice-monitor score`: second pass at {rthr}, groups of {rmin}+ windows)

Above {rmax} long windows, the live pass over the file and merges (`recluster_max_windows`).
{held_files}

Before (the whole-file clustering at any length, recluster_max_windows 0):
{held_files_whole}

Before (recluster_min_windows 2, the rest the same):
{held_files_previous}

Before the refinement (recluster_refine_iterations 0: the labels of the whole-file clustering, or of the live pass
and merges, kept as they are; shipped: k-means over the long windows started from them, at most
{refine_iterations} rounds). Tuning objective (cross-fitted; two-speaker utterance accuracy + share of right
counts) without / with it: {refine_objectives}.
{held_files_unrefined}

Chosen for files on {n_files_tune} cross-fitted tuning conversations (each projected by an LDA fitted without its
voices): recluster_threshold {rchosen}, recluster_min_windows {rminchosen}; those conversations at that setting:
{tune_files}

Where the two-speaker turns that are wrong go wrong (no window: no window overlaps the turn; spans another turn:
wrong even when every window carries its true majority voice; clustering: the rest):
{sources}

## Tuning voices ({n_tune} conversations), chosen settings
{tune}

Held-out windows given to the nearest true-speaker mean (clustering that makes no mistake): {oracle:.1%}.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="speaker-turn evaluation on synthetic conversations")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--per-kind", type=int, default=8, help="conversations of each kind per half")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--files-per-kind", type=int, default=40,
                    help="cross-fitted tuning conversations of each kind for the files' second pass")
    ap.add_argument("--lda-clips", type=int, default=40, help="clips per tuning voice for the cross-fitted LDAs")
    ap.add_argument("--long-per-kind", type=int, default=4,
                    help="long (80-turn) conversations of each kind: tuning (cross-fitted); held-out one fewer")
    ap.add_argument("--mid-per-kind", type=int, default=6,
                    help="middle-length (20-50 turns) conversations of each kind: tuning (cross-fitted); held-out half")
    ap.add_argument("--only", choices=["all", "long"], default="all",
                    help="long: the middle-length and long conversations alone, tables printed, nothing written")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write models/SPEAKERS.md")
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not (data / "ravdess16k").is_dir():
        print(f"{data}/ravdess16k not found: pass --data (the shared corpora folder)")
        return 2
    t0 = time.perf_counter()
    tune_voices, held_voices = split(load_voices(data))
    encoder = SpeakerEncoder(lda=True)  # fitted on the tuning voices only (training/fit_speaker_lda.py)
    seg = Config().segmenter_options()  # the monitor's own windows (short voiced words included)
    if args.only == "long":
        clips, names = embed_clips(tune_voices, args.lda_clips, 0)
        dims = int(encoder.lda[1].shape[1]) if encoder.lda is not None else 48
        sets = by_length(args, tune_voices, held_voices, encoder, seg, (clips, names, dims))
        print(f"{', '.join(f'{len(v)} {k}' for k, v in sets.items())} ({time.perf_counter() - t0:.0f} s)")
        for length in ("mid", "long"):
            for k, v in length_tables(sets[f"{length}_tune"], sets[f"{length}_held"], SpeakerOptions()).items():
                print(f"{length} conversations, {k}:\n" + table(v))
        return 0
    tune = embed_all(conversations(tune_voices, args.per_kind, args.seed, "tune"), encoder, seg)
    held = embed_all(conversations(held_voices, args.per_kind, args.seed + 1, "held"), encoder, seg)
    print(f"{len(tune)} tuning and {len(held)} held-out conversations embedded in {time.perf_counter() - t0:.0f} s")
    best, best_score = SpeakerOptions(), -1.0
    for values in itertools.product(*GRID.values()):
        setting = dict(zip(GRID, values, strict=True))
        if setting["merge_threshold"] >= setting["threshold"]:
            continue
        opts = replace(SpeakerOptions(), live_recluster_threshold=0.0, **setting)  # the online clustering
        score = objective(summarize([evaluate(e, opts) for e in tune]))
        if score > best_score:
            best, best_score = opts, score
    tuned = summarize([evaluate(e, best) for e in tune])
    shipped = SpeakerOptions()
    live = replace(shipped, recluster_threshold=0.0)
    online = replace(live, live_recluster_threshold=0.0)  # live before the session's second pass
    # files: the second pass chosen on cross-fitted tuning conversations (see the module's docstring)
    clips, names = embed_clips(tune_voices, args.lda_clips, 0)  # the clips training/fit_speaker_lda.py fits on
    dims = int(encoder.lda[1].shape[1]) if encoder.lda is not None else 48
    files_tune = cross_fit(
        embed_all(conversations(tune_voices, args.files_per_kind, args.seed, "tune-files"), encoder, seg),
        clips, names, dims,
    )
    print(f"{len(files_tune)} cross-fitted tuning conversations for files ({time.perf_counter() - t0:.0f} s)")
    file_best, file_grid = choose_second_pass(files_tune, shipped)
    sets = by_length(args, tune_voices, held_voices, encoder, seg, (clips, names, dims))
    long_tune, long_held, mid_tune, mid_held = sets["long_tune"], sets["long_held"], sets["mid_tune"], sets["mid_held"]
    print(f"{', '.join(f'{len(v)} {k}' for k, v in sets.items())} ({time.perf_counter() - t0:.0f} s)")
    max_best, max_grid = choose_max_windows([files_tune, mid_tune, long_tune], shipped)
    print(f"files: recluster_max_windows chosen {max_best.recluster_max_windows} (shipped "
          f"{shipped.recluster_max_windows}); [objective, with neighbours]: {max_grid}")
    live_best, live_grid = choose_live_pass(files_tune, long_tune, live)
    live_tuned = summarize([evaluate(e, live_best) for e in files_tune])
    live_tuned_before = summarize([evaluate(e, online) for e in files_tune])
    long_tables = length_tables(long_tune, long_held, shipped)
    mid_tables = length_tables(mid_tune, mid_held, shipped)
    for k, v in long_tables.items():
        print(f"long conversations, {k}:\n" + table(v))
    for k, v in mid_tables.items():
        print(f"middle-length conversations, {k}:\n" + table(v))
    print(f"live: chosen on the cross-fitted tuning conversations {({k: getattr(live_best, k) for k in LIVE_GRID})} "
          f"({time.perf_counter() - t0:.0f} s)")
    file_tuned = summarize([evaluate(e, file_best, whole_file=True) for e in files_tune])
    previous = replace(shipped, recluster_min_windows=2)  # the second pass before recluster_min_windows (3)
    held_files_previous = summarize([evaluate(e, previous, whole_file=True) for e in held])
    held_files_whole = summarize([evaluate(e, replace(shipped, recluster_max_windows=0), True) for e in held])
    unrefined = replace(shipped, recluster_refine_iterations=0)
    held_files_unrefined = summarize([evaluate(e, unrefined, True) for e in held])
    refine_objectives = {
        name: [round(objective(summarize([evaluate(e, o, True) for e in es])), 4) for o in (unrefined, shipped)]
        for name, es in (("short", files_tune), ("middle", mid_tune), ("long", long_tune))
    }
    print(f"files: tuning objective without / with the refinement: {refine_objectives}")
    sources = {
        "tuning (cross-fitted), files": error_sources(files_tune, shipped, True),
        "held-out, files": error_sources(held, shipped, True),
        "held-out, live": error_sources(held, live, False),
        "held-out, live before (online clustering alone)": error_sources(held, online, False),
    }
    file_results = [evaluate(e, shipped, whole_file=True) for e in held]
    held_files = summarize(file_results)
    held_results = [evaluate(e, best) for e in held]
    held_summary = summarize(held_results)
    shipped_results = [evaluate(e, live) for e in held]
    held_shipped = summarize(shipped_results)
    online_results = [evaluate(e, online) for e in held]
    held_online = summarize(online_results)
    oracle = oracle_accuracy(held)
    chosen = {k: getattr(best, k) for k in GRID}
    print("chosen on the tuning half:", chosen)
    print("tuning half:\n" + table(tuned))
    print("held-out half, chosen settings:\n" + table(held_summary))
    print(f"held-out half, shipped defaults {({k: getattr(shipped, k) for k in GRID})}, live:\n" + table(held_shipped))
    print("held-out half, live before (online clustering alone):\n" + table(held_online))
    print("cross-fitted tuning conversations, live, chosen setting:\n" + table(live_tuned))
    print("cross-fitted tuning conversations, live before (online clustering alone):\n" + table(live_tuned_before))
    print(f"files: chosen on the cross-fitted tuning conversations recluster_threshold {file_best.recluster_threshold}"
          f", recluster_min_windows {file_best.recluster_min_windows} (shipped {shipped.recluster_threshold}, "
          f"{shipped.recluster_min_windows}); there:\n" + table(file_tuned))
    print("held-out half, shipped defaults, files (second pass):\n" + table(held_files))
    print("held-out half, files, recluster_min_windows 2 (before):\n" + table(held_files_previous))
    print("held-out half, files, whole-file clustering at any length (before):\n" + table(held_files_whole))
    print("held-out half, files, before the refinement:\n" + table(held_files_unrefined))
    for k, v in sources.items():
        print(f"two-speaker turns wrong, {k}: {v}")
    print(f"held-out windows given to the nearest true speaker mean (oracle clustering): {oracle:.1%}")
    if not args.no_write:
        report = {
            "chosen": chosen,
            "shipped": {k: getattr(shipped, k) for k in GRID},
            "tuning": tuned,
            "held_out": held_summary,
            "held_out_shipped": held_shipped,  # live: the online clustering, then the session's second pass
            "held_out_live_online_only": held_online,  # live before: the online clustering alone
            "live_chosen": {k: getattr(live_best, k) for k in LIVE_GRID},
            "live_shipped": {k: getattr(shipped, k) for k in LIVE_GRID},
            "live_tuning": live_tuned,  # the cross-fitted tuning conversations at the chosen live setting
            "live_tuning_online_only": live_tuned_before,
            "live_tuning_grid": live_grid,  # "warm threshold min settle": [objective, mean with the neighbours]
            "long_conversations": long_tables,  # 80 turns: shipped live, online alone, files, files before
            "mid_conversations": mid_tables,  # 20-50 turns: the same
            "files_chosen_recluster_max_windows": max_best.recluster_max_windows,
            "files_shipped_recluster_max_windows": shipped.recluster_max_windows,
            "files_max_windows_grid": max_grid,  # value: [summed objective, mean with the neighbours]
            "held_out_files_whole_file_any_length": held_files_whole,  # recluster_max_windows 0
            "held_out_files_unrefined": held_files_unrefined,  # recluster_refine_iterations 0
            "files_refine_tuning_objective": refine_objectives,  # set: [without, with the refinement]
            "files_shipped_recluster_refine_iterations": shipped.recluster_refine_iterations,
            "conversations_live_online_only": [asdict(r) for r in online_results],
            "files_chosen_recluster_threshold": file_best.recluster_threshold,
            "files_chosen_recluster_min_windows": file_best.recluster_min_windows,
            "files_shipped_recluster_threshold": shipped.recluster_threshold,
            "files_shipped_recluster_min_windows": shipped.recluster_min_windows,
            "files_tuning": file_tuned,  # the cross-fitted tuning conversations at the chosen setting
            "files_tuning_grid": file_grid,  # "min_windows threshold": [objective, mean with the neighbours]
            "held_out_files_recluster_min_windows_2": held_files_previous,
            "two_speaker_error_sources": sources,
            "held_out_files_shipped": held_files,  # voice-monitor score: the second pass over the whole file
            "conversations_files_shipped": [asdict(r) for r in file_results],
            "held_out_oracle_window_accuracy": oracle,
            "conversations": [asdict(r) for r in held_results],  # held-out, chosen settings
            "conversations_shipped": [asdict(r) for r in shipped_results],  # held-out, shipped defaults
            "command": "PYTHONPATH=. python -m training.speaker_eval",
            "seed": args.seed,
            "per_kind": args.per_kind,
            "files_per_kind": args.files_per_kind,
            "mid_per_kind": args.mid_per_kind,
            "long_per_kind": args.long_per_kind,
        }
        (ROOT / "models" / "speakers_eval.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        tables = TABLES.format(
            chosen=chosen, shipped={k: getattr(shipped, k) for k in GRID}, held=table(held_shipped),
            tune=table(tuned), oracle=oracle, n_tune=len(tune), n_held=len(held), rthr=shipped.recluster_threshold,
            held_files=table(held_files), rchosen=file_best.recluster_threshold, tune_files=table(file_tuned),
            rmin=shipped.recluster_min_windows, rminchosen=file_best.recluster_min_windows,
            n_files_tune=len(files_tune), held_files_previous=table(held_files_previous),
            sources="\n".join(f"- {k}: {v}" for k, v in sources.items()),
            warm=shipped.live_warm_windows, lthr=shipped.live_recluster_threshold, lmin=shipped.live_min_windows,
            lsettle=shipped.live_settle_windows, held_online=table(held_online), live_tune=table(live_tuned),
            live_tune_before=table(live_tuned_before), lchosen={k: getattr(live_best, k) for k in LIVE_GRID},
            long_turns=LONG_TURNS[0], recent=RECENT_WINDOWS, n_long_tune=len(long_tune), n_long_held=len(long_held),
            long="\n\n".join(f"{k}:\n{table(v)}" for k, v in long_tables.items()),
            mid="\n\n".join(f"{k}:\n{table(v)}" for k, v in mid_tables.items()),
            mid_turns=f"{MID_TURNS[0]}-{MID_TURNS[1]}", n_mid_tune=len(mid_tune), n_mid_held=len(mid_held),
            rmax=shipped.recluster_max_windows, rmaxchosen=max_best.recluster_max_windows,
            max_grid=", ".join(f"{k}: {v[0]:.3f} ({v[1]:.3f})" for k, v in max_grid.items()),
            held_files_whole=table(held_files_whole), held_files_unrefined=table(held_files_unrefined),
            refine_iterations=shipped.recluster_refine_iterations,
            refine_objectives=", ".join(f"{k} {a:.3f} / {b:.3f}" for k, (a, b) in refine_objectives.items()),
        )
        (ROOT / "models" / "speakers_eval.md").write_text(tables, encoding="utf-8")
        print("wrote models/speakers_eval.json and models/speakers_eval.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
