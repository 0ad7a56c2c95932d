"""Train and evaluate the emotion model on every corpus; each step resumable, one result file per run.

    python -m training.multi --data ../shared/data --out models/            # everything missing, then the report
    python -m training.multi --data ../shared/data --out models/ --steps ablation
    python -m training.multi --data ../shared/data --out models/ --steps loco,cv,final,report

Steps (each run writes ``<out>/results/<config>/<run>.npz`` with the held-out window probabilities and is
skipped when that file exists, so an interrupted command continues where it stopped):

- ``ablation``: leave-one-corpus-out with a short schedule (``SHORT``: one network, fixed epochs) for every
  configuration of ``ABLATION`` (augmentation kinds on and off, window normalisation on and off);
- ``loco``: leave-one-corpus-out with the full schedule for the chosen configuration (the headline table);
- ``cv``: speaker-independent cross-validation, 5 folds of whole speakers within every corpus (the one-speaker
  esd0020 stays on the training side: it is only ever held out whole, in ``loco``); the temperature is fitted
  on its held-out windows;
- ``compare``: the model shipped before (``--compare-model``) on the same held-out recordings;
- ``final``: the shipped model, all corpora, int8 export with metadata (temperature, arousal/valence mapping);
- ``report``: ``<out>/REPORT.md`` from whatever results exist (``training.multi_md``).

The chosen configuration is ``all`` minus every augmentation kind whose removal raised the mean
leave-one-corpus-out UAR in the ablation, with window normalisation kept only if it helped.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from training.augment import VERSION_KINDS
from training.corpora import KNOWN_CORPORA, Corpus, load_corpora, speaker_folds
from training.corpus_features import CorpusWindows, build_corpus_windows, default_jobs
from training.dataset import save_npz_atomic
from training.manifest import DatasetLayoutError
from training.multi_fit import (
    FitOptions,
    NetOptions,
    fit,
    norm_params,
    normalised_inputs,
    predict_probs,
    speaker_profiles,
    window_profiles,
)

FOLDS = 5
FULL = FitOptions()
NORM_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # speaker normalisation strengths drawn in training
SHORT = FitOptions(epochs=12, clips_per_epoch=4000)
ALL_VERSIONS = tuple(range(len(VERSION_KINDS) + 1))


def ablation_configs() -> dict[str, FitOptions]:
    cfgs = {"recordings": replace(SHORT, versions=(0,)), "all": SHORT,
            "all-no-window-norm": replace(SHORT, net=NetOptions(window_norm=False))}
    for v, kind in enumerate(VERSION_KINDS, 1):
        cfgs[f"all-no-{kind}"] = replace(SHORT, versions=tuple(x for x in ALL_VERSIONS if x != v))
    return cfgs


def ablation2d_configs() -> dict[str, FitOptions]:
    """The augmentation question again for the 2-D CNN trained for speaker normalisation (the ablation above was
    run with the time-convolution network): the recordings alone against every version, short schedule."""
    base = replace(SHORT, speaker_norm=NORM_WEIGHTS, net=NetOptions(arch="cnn2d"))
    return {"2d-recordings": replace(base, versions=(0,)), "2d-all": replace(base, versions=ALL_VERSIONS)}


def candidates(opts: FitOptions) -> dict[str, FitOptions]:
    """The configurations the full leave-one-corpus-out and cross-validation runs compare: the ablation's choice
    as it is (``main``), trained for speaker normalisation (``spknorm``), and that with the 2-D CNN of the
    RAVDESS-only model instead of the time-convolution network (``cnn2d-spknorm``), and that trained on every
    augmented version too (``cnn2d-spknorm-aug``: ``ablation2d`` asked whether that helps the 2-D CNN)."""
    norm = replace(opts, speaker_norm=NORM_WEIGHTS)
    cnn2d = replace(norm, net=replace(norm.net, arch="cnn2d"))
    return {"main": opts, "spknorm": norm, "cnn2d-spknorm": cnn2d,
            "cnn2d-spknorm-aug": replace(cnn2d, versions=ALL_VERSIONS)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def save_run(path: Path, cw: CorpusWindows, rows: np.ndarray, probs: np.ndarray, info: dict,
             extra: dict[str, np.ndarray] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    more = {k: v.astype(np.float16) if v.dtype.kind == "f" else v for k, v in (extra or {}).items()}
    save_npz_atomic(path, {"keys": np.array([cw.records[c].key for c in cw.clip[rows]]),
                           "probs": probs.astype(np.float16), "info": json.dumps(info), **more}, compressed=True)


def test_rows(cw: CorpusWindows, clips: np.ndarray) -> np.ndarray:
    """Version-0 windows of ``clips``."""
    return np.flatnonzero(np.isin(cw.clip, clips) & (cw.version == 0))


def degraded_rows(cw: CorpusWindows, clips: np.ndarray) -> np.ndarray:
    """Windows of the augmented versions (other voice, room, noise/babble, telephone/codec/microphone) of
    ``clips``: the held-out recordings as heard through conditions no clean corpus has."""
    return np.flatnonzero(np.isin(cw.clip, clips) & (cw.version > 0))


def run_one(cw: CorpusWindows, train: np.ndarray, test: np.ndarray, opts: FitOptions, path: Path, tag: str,
            info: dict) -> None:
    if path.exists():
        log(f"{tag}: done before ({path})")
        return
    import keras

    t0 = time.perf_counter()
    log(f"{tag}: training on {len(train)} clips, testing on {len(test)} clips")
    model = fit(cw, train, opts, log=log, tag=f"{tag} ")
    rows = test_rows(cw, test)
    probs = predict_probs(model, cw.x[rows])
    extra = {}
    if opts.speaker_norm:  # the same windows normalised per speaker: whole, and as heard live
        params = norm_params(cw, train, speaker_profiles(cw, window_profiles(cw.x)), opts)
        extra["probs_speaker"] = predict_probs(model, normalised_inputs(cw, rows, params, live=False))
        extra["probs_live"] = predict_probs(model, normalised_inputs(cw, rows, params, live=True))
        extra["probs_file"] = predict_probs(model, normalised_inputs(cw, rows, params, live=True, by="clip"))
    deg = degraded_rows(cw, test)
    if len(deg):  # the same clips through rooms, noise and devices, each version a file (score's default)
        x = normalised_inputs(cw, deg, params, live=True, by="version") if opts.speaker_norm else cw.x[deg]
        extra |= {"degraded_probs": predict_probs(model, x), "degraded_version": cw.version[deg].astype(np.int8),
                  "degraded_keys": np.array([cw.records[c].key for c in cw.clip[deg]])}
    info = {**info, "seconds": round(time.perf_counter() - t0, 1), "train_clips": int(len(train)),
            "options": json.loads(json.dumps(asdict(opts)))}
    save_run(path, cw, rows, probs, info, extra)
    log(f"{tag}: saved {path} ({info['seconds']:.0f}s)")
    keras.backend.clear_session()


def loco_runs(cw: CorpusWindows, opts: FitOptions, out: Path, config: str) -> None:
    for ci, name in enumerate(cw.corpora):
        clips = np.arange(len(cw.records))
        train, test = clips[cw.corpus != ci], clips[cw.corpus == ci]
        run_one(cw, train, test, opts, out / "results" / config / f"loco_{name}.npz", f"{config} loco {name}",
                {"kind": "loco", "held_out": name})


def cv_folds(corpora: list[Corpus]) -> list[set[str]]:
    """Fold k holds out the k-th speaker fold of every corpus that has speaker folds ("corpus/speaker")."""
    folds: list[set[str]] = [set() for _ in range(FOLDS)]
    for c in corpora:
        for k, f in enumerate(speaker_folds(c, FOLDS)):
            folds[k] |= {f"{c.name}/{s}" for s in f}
    return folds


def cv_runs(cw: CorpusWindows, corpora: list[Corpus], opts: FitOptions, out: Path, config: str) -> None:
    spk_names = np.array(cw.speakers)
    for k, held in enumerate(cv_folds(corpora), 1):
        test_mask = np.isin(spk_names[cw.speaker], sorted(held))
        clips = np.arange(len(cw.records))
        run_one(cw, clips[~test_mask], clips[test_mask], opts, out / "results" / config / f"cv_{k}.npz",
                f"{config} cv fold {k}/{FOLDS}", {"kind": "cv", "fold": k, "held_out": sorted(held)})


def compare_run(cw: CorpusWindows, model_path: Path, out: Path) -> None:
    """The previously shipped model through the runtime classifier on every recording (version 0)."""
    path = out / "results" / "shipped-before" / "all.npz"
    if path.exists():
        log(f"compare: done before ({path})")
        return
    from monitor.inference.classifier import EmotionClassifier

    clf = EmotionClassifier(model_path, num_threads=1)
    rows = np.flatnonzero(cw.version == 0)
    probs = np.stack([clf.probabilities(cw.x[r].astype(np.float32)) for r in rows])
    save_run(path, cw, rows, probs, {"kind": "compare", "model": str(model_path),
                                     "sha256": json.loads(model_path.with_suffix(".json").read_text())
                                     .get("tflite_sha256", "")})
    log(f"compare: saved {path}")


def chosen_config(out: Path, cw: CorpusWindows) -> tuple[str, FitOptions, dict]:
    """Pick the augmentation kinds and normalisation from the ablation's mean leave-one-corpus-out UAR."""
    from training.multi_report import key_info, loco_table

    info = key_info(cw)
    corpora = cw.corpora

    cfgs = ablation_configs()
    means = {}
    for name in cfgs:
        t = loco_table(out, name, corpora, info)
        if t is not None:
            means[name] = float(np.mean([r["uar8"] for r in t.values()]))
    if "all" not in means:
        raise SystemExit("error: the ablation has not run yet (python -m training.multi --steps ablation)")
    versions = list(ALL_VERSIONS)
    dropped = []
    for v, kind in enumerate(VERSION_KINDS, 1):
        m = means.get(f"all-no-{kind}")
        if m is not None and m > means["all"]:
            versions.remove(v)
            dropped.append(kind)
    norm = not (means.get("all-no-window-norm", -1) > means["all"])
    opts = replace(FULL, versions=tuple(versions), net=NetOptions(window_norm=norm))
    name = "main"
    return name, opts, {"ablation_means": means, "dropped_kinds": dropped, "window_norm": norm,
                        "versions": [["recording", *VERSION_KINDS][v] for v in versions]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.multi", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder holding the corpora")
    ap.add_argument("--corpora", default=",".join(KNOWN_CORPORA), help="comma-separated corpus folders")
    ap.add_argument("--out", type=Path, default=Path("models"), help="model, report and results folder")
    ap.add_argument("--cache", type=Path, default=None, help="feature cache (default ~/.cache/voice-monitor)")
    ap.add_argument("--steps", default="ablation,loco,cv,compare,final,report")
    ap.add_argument("--jobs", type=int, default=default_jobs(), help="processes for feature extraction")
    ap.add_argument("--threads", type=int, default=2, help="TensorFlow threads")
    ap.add_argument("--members", type=int, default=3, help="networks averaged in the final model (seeds differ)")
    ap.add_argument("--config", default=None, choices=sorted(candidates(FULL)),
                    help="run loco/cv for this candidate configuration only, and build the final model from it "
                    "(default: every candidate; the final model from the best with both loco and cv)")
    ap.add_argument("--compare-model", type=Path, default=None,
                    help="the model shipped before, scored on the same recordings (step compare)")
    args = ap.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(steps) - {"ablation", "ablation2d", "loco", "cv", "compare", "final", "report"}
    if unknown:
        ap.error(f"unknown steps {sorted(unknown)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = "python -m training.multi " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        corpora = load_corpora(args.data, [c for c in args.corpora.split(",") if c])
    except DatasetLayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for c in corpora:
        log(c.summary())
    from training.train import FEATURES

    cw = build_corpus_windows(corpora, FEATURES, cache_dir=args.cache, jobs=args.jobs, log=log)
    if any(s in steps for s in ("ablation", "ablation2d", "loco", "cv", "final")):
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already ran in this process: keep its threads
            pass
    if "ablation" in steps:
        for name, opts in ablation_configs().items():
            loco_runs(cw, opts, args.out, name)
    if "ablation2d" in steps:
        for name, opts in ablation2d_configs().items():
            loco_runs(cw, opts, args.out, name)
    if any(s in steps for s in ("loco", "cv", "final")):
        from training.multi_report import best_candidate

        config, opts, why = chosen_config(args.out, cw)
        cands = candidates(opts)
        if args.config:
            cands = {args.config: cands[args.config]}
        for name, o in cands.items():
            if "loco" in steps:
                loco_runs(cw, o, args.out, name)
            if "cv" in steps:
                cv_runs(cw, corpora, o, args.out, name)
        config, scores = best_candidate(args.out, cw, list(cands))
        if args.config:
            config = args.config
            why = {**why, "forced": f"--config {args.config}"}
        opts = cands[config]
        log(f"chosen: {config} {scores} {why}")
        (args.out / "results").mkdir(parents=True, exist_ok=True)
        (args.out / "results" / "chosen.json").write_text(json.dumps(
            {"config": config, "options": json.loads(json.dumps(asdict(opts))), "candidates": scores, **why},
            indent=1) + "\n")
        if "final" in steps:
            from training.multi_final import train_final

            train_final(cw, corpora, opts, args.out, command, config=config, members=args.members, log=log)
    if "compare" in steps:
        if args.compare_model is None:
            log("compare: skipped (no --compare-model)")
        else:
            compare_run(cw, args.compare_model, args.out)
    if "report" in steps:
        from training.multi_md import write_report

        log(f"report: {write_report(args.out, cw, corpora, command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
