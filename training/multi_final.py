"""The shipped model: trained on every clip of every corpus, exported to full-integer int8 with its metadata.

The metadata adds to what ``training.export.write_model`` writes: the temperature fitted on the
cross-validation's held-out windows (the monitor applies it to every window, so the confidence it shows is
calibrated), the arousal/valence coordinates of the labels (the monitor's `arousal` and `valence` columns), the
corpora and their licences, and the figures of the report.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from monitor.affect import DEFAULT_COORDINATES
from monitor.labels import LABELS
from training.corpora import Corpus
from training.corpus_features import CorpusWindows
from training.dataset import DEFAULT_CACHE
from training.multi_fit import (
    FitOptions,
    fit,
    norm_params,
    speaker_profiles,
    window_profiles,
    with_softmax,
)

MODEL_VERSION = "2.0.0"
LICENCES = {
    "ravdess16k": "RAVDESS (Livingstone & Russo 2018, PLoS ONE 13(5): e0196391), CC BY-NC-SA 4.0",
    "nemo": "nEMO (Christop, LREC-COLING 2024), CC BY-NC-SA 4.0",
    "ased": "ASED v1 (Retta et al., ACM TALLIP 2022), no licence stated; research use, cite the paper",
    "esd0020": "ESD speaker 0020 (Zhou et al., ICASSP 2021), research use",
    "turev": "TurEV-DB, CC BY-NC-ND 4.0",
}
# Arousal and valence of each label, in [-1, 1] (a circumplex placement, the arousal axis centred; positive arousal =
# high arousal): the monitor's documented defaults (monitor.affect), written into the model's metadata.
AFFECT = {axis: {lab: DEFAULT_COORDINATES[lab][i] for lab in LABELS} for i, axis in enumerate(("arousal", "valence"))}


def averaged(models):
    """One Keras model: the mean of the members' softmax probabilities (an ensemble inside one .tflite)."""
    import keras

    if len(models) == 1:
        return with_softmax(models[0])
    inp = keras.Input(shape=models[0].input.shape[1:], name="features")
    probs = [keras.layers.Softmax(name=f"probabilities_{i + 1}")(m(inp)) for i, m in enumerate(models)]
    return keras.Model(inp, keras.layers.Average(name="probabilities")(probs), name="emotion_ensemble")


def member_dir(config: str) -> Path:
    return DEFAULT_CACHE / "final-members" / config


def final_members(cw: CorpusWindows, clips: np.ndarray, opts: FitOptions, members: int, folder: Path,
                  log=print) -> tuple[list, float]:
    """The final model's networks (seeds ``opts.seed + i``), each saved when trained (``folder``, outside the
    repository), so an interrupted final step keeps the members it finished. Returns them and the training
    seconds (the saved ones' own times included)."""
    from training.multi_fit import build_net

    folder.mkdir(parents=True, exist_ok=True)
    nets, seconds = [], 0.0
    for i in range(members):
        o = replace(opts, seed=opts.seed + i)
        weights, took = folder / f"member_{i + 1}_seed{o.seed}.weights.h5", folder / f"member_{i + 1}_seed{o.seed}.json"
        if weights.exists() and took.exists():
            net = build_net(cw.x.shape[1:3], o.net, seed=o.seed)
            net.load_weights(weights)
            log(f"final {i + 1}/{members}: trained before ({weights})")
        else:
            t0 = time.perf_counter()
            net = fit(cw, clips, o, log=log, tag=f"final {i + 1}/{members} ")
            net.save_weights(weights)
            took.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
        seconds += json.loads(took.read_text())["seconds"]
        net.name = f"member_{i + 1}"
        nets.append(net)
    return nets, seconds


def train_final(cw: CorpusWindows, corpora: list[Corpus], opts: FitOptions, out: Path, command: str,
                config: str = "main", members: int = 1, log=print) -> dict:
    from monitor.inference.classifier import EmotionClassifier
    from training.export import to_int8_tflite, write_model
    from training.multi_report import calibration, default_key, key_info
    from training.train import FEATURES

    names = [c.name for c in corpora]
    cal = calibration(out, config, names, key_info(cw), key=default_key(opts))
    clips = np.arange(len(cw.records))
    nets, seconds = final_members(cw, clips, opts, members, member_dir(config), log)
    probs_model = averaged(nets)
    orig = np.flatnonzero(cw.version == 0)
    rng = np.random.default_rng(opts.seed)
    path = out / "emotion.tflite"
    extra = {
        "version": MODEL_VERSION,
        "licence": "CC BY-NC-SA 4.0 (inherited from RAVDESS and nEMO); the other corpora are for research use "
        "only (see training.corpora sources); non-commercial use only",
        "corpora": {n: LICENCES.get(n, "") for n in names},
        "affect": AFFECT,
        "training": {"clips": len(cw.records), "windows": int(len(cw.x)), "command": command,
                     "options": json.loads(json.dumps(opts, default=lambda o: o.__dict__))},
    }
    if cal:
        extra["temperature"] = cal["temperature"]
    if opts.speaker_norm:  # the population's band profile: what the monitor normalises towards
        extra["normalisation"] = norm_params(cw, clips, speaker_profiles(cw, window_profiles(cw.x)),
                                             opts).to_metadata()
    meta = write_model(to_int8_tflite(probs_model, cw.x[orig], seed=opts.seed), path, FEATURES, extra)
    sample = orig[rng.permutation(len(orig))[:1500]]
    clf = EmotionClassifier(path, num_threads=1)
    q = np.stack([clf.probabilities(cw.x[r].astype(np.float32)) for r in sample])
    f = np.asarray(probs_model.predict(cw.x[sample].astype(np.float32)[..., None], verbose=0), dtype=np.float64)
    agreement = float(np.mean(q.argmax(axis=1) == f.argmax(axis=1)))
    meta["metrics"] = {"final_model": {"size_bytes": path.stat().st_size, "clips": len(cw.records),
                                       "epochs": opts.epochs, "seconds": round(seconds, 1),
                                       "config": config, "members": members,
                                       "int8_float_agreement": round(agreement, 4),
                                       "agreement_windows": len(sample)}}
    if cal:
        meta["metrics"]["calibration"] = {k: round(v, 4) for k, v in cal.items()}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"final: {path} {path.stat().st_size / 1024:.0f} KB, int8/float agreement {agreement:.3f} "
        f"({len(LABELS)} labels), trained in {seconds:.0f}s")
    return meta
