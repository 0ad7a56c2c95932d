"""Train, evaluate (whole actors held out) and export the emotion model; also runs the baseline.

    python -m training.train --data ../shared/data/ravdess16k --out models/

Steps: manifest -> windows + features (cached, see ``training.dataset``) -> k-fold cross-validation with whole
actors held out (folds balanced by gender; early stopping on two validation actors taken from the training
actors) -> per-fold and overall UAR / accuracy / macro-F1 / confusion matrices, for our model (float and the
exported int8 through ``EmotionClassifier``) and the predecessor's baseline on the same folds -> the final
model trained on all selected actors for the number of epochs cross-validation chose -> int8 .tflite +
metadata, int8/float agreement, level robustness -> ``REPORT_RAVDESS.md``, ``confusion.csv/.png``, ``cv_results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from monitor.dsp.features import FeatureParams
from monitor.labels import LABELS
from training.dataset import DEFAULT_CACHE, DatasetOptions, WindowSet, build_windows
from training.manifest import DatasetLayoutError, Manifest, load_manifest
from training.metrics import Scores, pool_by_clip, score, scores_from_confusion

MODEL_VERSION = "1.0.0"
FEATURES = FeatureParams(hop_length=320)  # 20 ms hop: (149, 64) per 3 s window; half the cost of 10 ms


@dataclass
class FoldResult:
    fold: int
    test_actors: list[int]
    val_actors: list[int]
    best_epoch: int
    epochs_run: int
    seconds: float
    clip: Scores  # float model, clip level (window probabilities averaged per clip)
    window: Scores  # float model, window level
    int8_clip: Scores | None = None
    agreement: float | None = None  # int8 vs float top label, held-out windows
    level_rate: float | None = None
    baseline: Scores | None = None
    member_epochs: list[int] = field(default_factory=list)  # kept epoch of each ensemble member
    member_uars: list[float] = field(default_factory=list)  # clip-level UAR of each member on its own

    def to_dict(self) -> dict:
        d = {"fold": self.fold, "test_actors": self.test_actors, "val_actors": self.val_actors,
             "best_epoch": self.best_epoch, "epochs_run": self.epochs_run, "seconds": round(self.seconds, 1),
             "clip": self.clip.to_dict(), "window": self.window.to_dict(),
             "member_epochs": self.member_epochs, "member_uars": [round(u, 4) for u in self.member_uars]}
        if self.int8_clip is not None:
            d["int8_clip"] = self.int8_clip.to_dict()
        if self.agreement is not None:
            d["int8_float_agreement"] = round(self.agreement, 4)
        if self.level_rate is not None:
            d["level_robustness"] = round(self.level_rate, 4)
        if self.baseline is not None:
            d["baseline"] = self.baseline.to_dict()
        return d


@dataclass
class RunConfig:
    data: Path
    out: Path
    cache: Path
    actors: list[int]
    folds: int
    epochs: int
    final_epochs: int | None
    copies: int
    jobs: int
    seed: int
    baseline: bool
    fold_int8: bool
    threads: int
    members: int = 1
    command: str = ""
    extra: dict = field(default_factory=dict)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_folds(actors: list[int], k: int) -> list[list[int]]:
    """k folds of whole actors, men (odd) and women (even) spread evenly: 1-20, k=5 -> [1, 6, 11, 16], ...

    Actors are interleaved man, woman, man, ... and dealt round-robin, so every fold gets as even a share of
    both as the actor list allows."""
    males = sorted(a for a in actors if a % 2)
    females = sorted(a for a in actors if a % 2 == 0)
    order: list[int] = []
    for i in range(max(len(males), len(females))):
        order += males[i : i + 1] + females[i : i + 1]
    return [sorted(order[i::k]) for i in range(k)]


def validation_actors(train_actors: list[int], fold: int) -> list[int]:
    """One man and one woman from the training actors (none if fewer than four training actors)."""
    if len(train_actors) < 4:
        return []
    males = [a for a in train_actors if a % 2]
    females = [a for a in train_actors if a % 2 == 0]
    out = []
    for group in (males, females):
        if len(group) >= 2:
            out.append(group[(fold * 3 + 1) % len(group)])
    return sorted(out)


MEMBER_SEED_STEP = 1000  # member k trains with seed + k * MEMBER_SEED_STEP (member 0: the single-model seed)


def ensemble(models: list):
    """One Keras model averaging the members' probabilities (exported as one .tflite); a lone model as is."""
    if len(models) == 1:
        return models[0]
    import keras

    inp = keras.Input(shape=models[0].input_shape[1:], name="features")
    for k, m in enumerate(models):
        m.name = f"member{k + 1}"
    out = keras.layers.Average(name="probabilities")([m(inp) for m in models])
    return keras.Model(inp, out, name="emotion_cnn_ensemble")


def clip_scores(probs: np.ndarray, test: WindowSet) -> Scores:
    _, pooled, labels = pool_by_clip(probs, test.clip, test.y)
    return score(labels, pooled.argmax(axis=1), len(LABELS))


def evaluate_float(model, test: WindowSet) -> tuple[Scores, Scores, np.ndarray]:
    from training.fit import predict

    p = predict(model, test.x)
    window = score(test.y, p.argmax(axis=1), len(LABELS))
    _, pooled, labels = pool_by_clip(p, test.clip, test.y)
    clip = score(labels, pooled.argmax(axis=1), len(LABELS))
    return clip, window, p


def export(model, representative: np.ndarray, path: Path, extra: dict, seed: int) -> dict:
    from training.export import to_int8_tflite, write_model

    return write_model(to_int8_tflite(model, representative, seed=seed), path, FEATURES, extra)


def int8_check(path: Path, test: WindowSet, float_probs: np.ndarray, manifest: Manifest | None):
    """Held-out int8 scores through EmotionClassifier, agreement with the float model, level robustness."""
    from monitor.inference.classifier import EmotionClassifier
    from training.evaluate import int8_probabilities, level_robustness

    clf = EmotionClassifier(path, num_threads=1)
    q = int8_probabilities(clf, test.x)
    agreement = float(np.mean(q.argmax(axis=1) == float_probs.argmax(axis=1)))
    _, pooled, labels = pool_by_clip(q, test.clip, test.y)
    clip = score(labels, pooled.argmax(axis=1), len(LABELS))
    level = level_robustness(clf, list(manifest.clips)) if manifest is not None else None
    return clip, agreement, level


def run(cfg: RunConfig) -> dict:
    import tensorflow as tf

    from training.fit import TrainOptions, fit_model, predict

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already ran in this process (e.g. a test before): keep its threads
        pass
    t_start = time.perf_counter()
    manifest = load_manifest(cfg.data)
    missing = sorted(set(cfg.actors) - set(manifest.actors))
    if missing:
        raise DatasetLayoutError(f"{cfg.data}: actors {missing} not found (found {manifest.actors})")
    manifest = manifest.select(cfg.actors)
    log(f"data: {manifest.summary()}")
    dopts = DatasetOptions(features=FEATURES, copies=cfg.copies, seed=cfg.seed)
    ws = build_windows(manifest, dopts, cfg.cache, jobs=cfg.jobs, log=log)
    topts = TrainOptions(epochs=cfg.epochs, lr_horizon=cfg.epochs, seed=cfg.seed)
    base_data = None
    if cfg.baseline and cfg.folds >= 2:
        from training.baseline import BaselineOptions, baseline_features

        bopts = BaselineOptions(seed=cfg.seed)
        base_data = baseline_features(manifest, bopts, cfg.cache, log=log)

    folds = make_folds(manifest.actors, cfg.folds) if cfg.folds >= 2 else []
    results: list[FoldResult] = []
    n = len(LABELS)
    cm_ours = np.zeros((n, n), dtype=np.int64)
    cm_int8 = np.zeros((n, n), dtype=np.int64)
    cm_base = np.zeros((n, n), dtype=np.int64)
    cm_window = np.zeros((n, n), dtype=np.int64)
    for i, test_actors in enumerate(folds):
        train_actors = [a for a in manifest.actors if a not in test_actors]
        val_actors = validation_actors(train_actors, i)
        fit_actors = [a for a in train_actors if a not in val_actors]
        tag = f"fold {i + 1}/{len(folds)} "
        log(f"{tag}test actors {test_actors}, validation actors {val_actors}, training actors {fit_actors}")
        train = ws.where(fit_actors)
        val = ws.where(val_actors, originals_only=True) if val_actors else None
        test = ws.where(test_actors, originals_only=True)
        fits = []
        member_uars = []
        for k in range(cfg.members):
            mtag = f"{tag}member {k + 1}/{cfg.members} " if cfg.members > 1 else tag
            fits.append(fit_model(train, val, replace(topts, seed=cfg.seed + k * MEMBER_SEED_STEP), log=log,
                                  tag=mtag))
            member_uars.append(clip_scores(predict(fits[-1].model, test.x), test).uar)
            if cfg.members > 1:
                log(f"{mtag}UAR {member_uars[-1]:.3f} (clip level, this member alone)")
        model = ensemble([f.model for f in fits])
        clip, window, probs = evaluate_float(model, test)
        epochs = [f.best_epoch for f in fits]
        fr = FoldResult(i + 1, test_actors, val_actors, int(round(float(np.median(epochs)))),
                        max(f.epochs_run for f in fits), sum(f.seconds for f in fits), clip, window,
                        member_epochs=epochs, member_uars=member_uars)
        cm_ours += clip.confusion
        cm_window += window.confusion
        if cfg.fold_int8:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "fold.tflite"
                export(model, train.x, path, {"fold": i + 1}, cfg.seed)
                q_clip, agreement, level = int8_check(path, test, probs, manifest.select(test_actors))
            fr.int8_clip, fr.agreement, fr.level_rate = q_clip, agreement, level.rate if level else None
            cm_int8 += q_clip.confusion
        if base_data is not None:
            from training.baseline import run_baseline_fold

            yt, yp = run_baseline_fold(base_data, train_actors, test_actors, bopts)
            fr.baseline = score(yt, yp, n)
            cm_base += fr.baseline.confusion
        msg = f"{tag}UAR {clip.uar:.3f} acc {clip.accuracy:.3f} macro-F1 {clip.macro_f1:.3f} (clip level)"
        if fr.int8_clip is not None:
            msg += f"; int8 UAR {fr.int8_clip.uar:.3f}, agreement {fr.agreement:.3f}, level {fr.level_rate:.3f}"
        if fr.baseline is not None:
            msg += f"; baseline UAR {fr.baseline.uar:.3f}"
        log(msg)
        results.append(fr)
        del fits, model
        tf.keras.backend.clear_session()

    if cfg.final_epochs:
        final_epochs = cfg.final_epochs
    elif results:
        final_epochs = max(1, int(round(float(np.median([e for r in results for e in r.member_epochs])))))
    else:
        final_epochs = cfg.epochs
    log(f"final model: all {len(manifest.actors)} actors, {final_epochs} epochs, {cfg.members} member(s)")
    final_fits = [fit_model(ws, None, replace(topts, seed=cfg.seed + k * MEMBER_SEED_STEP), epochs=final_epochs,
                            log=log, tag=f"final member {k + 1}/{cfg.members} " if cfg.members > 1 else "final ")
                  for k in range(cfg.members)]
    final_model = ensemble([f.model for f in final_fits])
    cv = {}
    if results:
        cv = {
            "folds": [r.to_dict() for r in results],
            "overall_clip": scores_from_confusion(cm_ours).to_dict(),
            "overall_window": scores_from_confusion(cm_window).to_dict(),
            "confusion_clip": cm_ours.tolist(),
        }
        if cfg.fold_int8:
            cv["overall_int8_clip"] = scores_from_confusion(cm_int8).to_dict()
            cv["confusion_int8_clip"] = cm_int8.tolist()
            cv["int8_float_agreement_heldout"] = round(float(np.mean([r.agreement for r in results])), 4)
            cv["level_robustness_heldout"] = round(float(np.mean([r.level_rate for r in results])), 4)
        if base_data is not None:
            cv["baseline_overall"] = scores_from_confusion(cm_base).to_dict()
            cv["baseline_confusion"] = cm_base.tolist()
            cv["baseline_recipe"] = asdict(bopts)
    training_info = {
        "data": f"RAVDESS speech (Livingstone & Russo 2018, CC BY-NC-SA 4.0), {manifest.layout} layout, "
        f"{len(manifest.clips)} clips of actors {manifest.actors}",
        "actors": manifest.actors,
        "windows": int(len(ws.y)),
        "augmented_copies_per_clip": cfg.copies,
        "augmentation": asdict(dopts.augment),
        "train_options": {k: v for k, v in asdict(topts).items() if k not in ("epochs",)},
        "epochs": final_epochs,
        "ensemble_members": cfg.members,
        "member_seeds": [cfg.seed + k * MEMBER_SEED_STEP for k in range(cfg.members)],
        "seed": cfg.seed,
        "command": cfg.command,
    }
    model_path = cfg.out / "emotion.tflite"
    extra = {
        "version": MODEL_VERSION,
        "licence": "CC BY-NC-SA 4.0: trained on RAVDESS (Livingstone SR, Russo FA (2018), PLoS ONE 13(5): "
        "e0196391)",
        "training": training_info,
        "metrics": {k: v for k, v in cv.items() if not k.startswith(("folds", "confusion", "baseline_conf"))},
    }
    meta = export(final_model, ws.x[ws.copy == 0], model_path, extra, cfg.seed)
    log(f"exported {model_path} ({model_path.stat().st_size / 1024:.0f} KB)")
    orig = ws.where(manifest.actors, originals_only=True)
    fprobs = predict(final_model, orig.x)
    _, agreement, level = int8_check(model_path, orig, fprobs, manifest)
    final = {"epochs": final_epochs, "members": cfg.members, "seconds": round(sum(f.seconds for f in final_fits), 1),
             "int8_float_agreement": round(agreement, 4),
             "level_robustness": level.to_dict(), "size_bytes": model_path.stat().st_size}
    log(f"final model: int8/float agreement {agreement:.4f} over {len(orig.y)} windows; level robustness "
        f"{level.rate:.4f} over {level.n} clips")
    meta["metrics"]["final_model"] = {k: v for k, v in final.items() if k != "level_robustness"}
    meta["metrics"]["final_model"]["level_robustness"] = round(level.rate, 4)
    model_path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")

    summary = {
        "command": cfg.command,
        "python": platform.python_version(),
        "features": FEATURES.to_dict(),
        "training": training_info,
        "cv": cv,
        "final": final,
        "fallback_clip_copies": ws.fallbacks,
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }
    (cfg.out / "cv_results.json").write_text(json.dumps(summary, indent=1) + "\n")
    if results:
        from training.report import write_report

        write_report(cfg.out, summary, results, cm_ours, cm_base if base_data is not None else None,
                     cm_int8 if cfg.fold_int8 else None)
    log(f"done in {summary['total_seconds']:.0f}s: {cfg.out}")
    return summary


def parse_actors(text: str) -> list[int]:
    if text == "all":
        return list(range(1, 25))
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    return sorted(set(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=Path,
                    help="RAVDESS folder: ravdess16k (Actor_XX/*.flac) or the original download")
    ap.add_argument("--out", type=Path, default=Path("models"), help="where emotion.tflite/.json and the report go")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"feature cache (default {DEFAULT_CACHE})")
    ap.add_argument("--actors", default="1-20", help="actors to use, e.g. 1-20 (default), 1,2,3 or all")
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds of whole actors (0: none)")
    ap.add_argument("--epochs", type=int, default=60, help="maximum epochs per fold (early stopping)")
    ap.add_argument("--final-epochs", type=int, default=None,
                    help="epochs of the final model (default: median best epoch of the folds)")
    ap.add_argument("--copies", type=int, default=3, help="augmented copies per clip")
    ap.add_argument("--jobs", type=int, default=1, help="processes for feature extraction")
    ap.add_argument("--threads", type=int, default=2, help="TensorFlow threads")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--members", type=int, default=3,
                    help="ensemble members per model (different seeds; exported as one .tflite averaging them)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the predecessor's baseline")
    ap.add_argument("--no-fold-int8", action="store_true", help="skip int8 export/evaluation of each fold model")
    args = ap.parse_args(argv)
    actors = parse_actors(args.actors)
    cfg = RunConfig(
        data=args.data, out=args.out, cache=args.cache, actors=actors, folds=args.folds, epochs=args.epochs,
        final_epochs=args.final_epochs, copies=args.copies, jobs=args.jobs, seed=args.seed,
        baseline=not args.no_baseline, fold_int8=not args.no_fold_int8, threads=args.threads,
        members=args.members,
        command="python -m training.train " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
    )
    if cfg.members < 1:
        ap.error("--members must be at least 1")
    if cfg.folds == 1 or cfg.folds > len(actors):
        ap.error(f"--folds must be 0 or between 2 and the number of actors ({len(actors)})")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        run(cfg)
    except DatasetLayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
