"""Training on many corpora: manifest readers, speaker folds, label masking, balanced sampling, metrics."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from monitor.labels import LABELS

REPO = Path(__file__).resolve().parents[1]
CLIPS = sorted((REPO / "tests" / "data").glob("*.flac"))
SHARED = Path(os.environ.get("VOICE_MONITOR_CORPORA", REPO.parent / "shared" / "data"))


def write_corpus(root: Path, rows: list[dict], columns: list[str]) -> Path:
    """A corpus folder in the shared layout (manifest.csv + audio) made from the repository's real clips."""
    root.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        dst = root / row["path"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CLIPS[i % len(CLIPS)], dst)
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for row in rows:
            w.writerow({k: row.get(k, "") for k in columns})
    return root


def small_corpora(tmp_path: Path):
    from training.corpora import load_corpus

    a = write_corpus(tmp_path / "alpha", [
        {"path": f"A/{s}_{e}.flac", "speaker": s, "gender": g, "emotion": e}
        for s, g in (("s1", "male"), ("s2", "female"), ("s3", "male"), ("s4", "female"))
        for e in ("angry", "sad", "happy", "neutral")], ["path", "speaker", "gender", "emotion", "text"])
    b = write_corpus(tmp_path / "beta", [
        {"path": f"{e}/{i}.flac", "speaker": "only", "emotion": e}
        for e in ("calm", "angry", "angry", "sad") for i in range(2)], ["path", "speaker", "emotion"])
    return [load_corpus(a), load_corpus(b)]


def test_manifest_reader_reads_every_layout(tmp_path: Path) -> None:
    from training.corpora import load_corpus

    alpha, beta = small_corpora(tmp_path)
    assert alpha.name == "alpha" and len(alpha.records) == 16 and len(alpha.speakers) == 4
    assert alpha.labels == sorted(LABELS.index(e) for e in ("angry", "sad", "happy", "neutral"))
    assert beta.labels == sorted(LABELS.index(e) for e in ("calm", "angry", "sad"))
    assert all(r.path.exists() for r in alpha.records + beta.records)
    assert {r.gender for r in beta.records} == {""}
    # RAVDESS without a manifest: labels and actors from the file names
    rav = tmp_path / "rav"
    for c in CLIPS:
        actor = rav / f"Actor_{c.stem[-2:]}"
        actor.mkdir(parents=True, exist_ok=True)
        shutil.copy(c, actor / c.name)
    r = load_corpus(rav)
    assert r.name == "ravdess16k" and len(r.records) == 8 and len(r.labels) == 8
    assert {x.speaker for x in r.records} == {f"{i:02d}" for i in range(1, 9)}


def test_manifest_errors_are_one_line(tmp_path: Path) -> None:
    from training.corpora import load_corpora, load_corpus
    from training.manifest import DatasetLayoutError

    bad = write_corpus(tmp_path / "bad", [{"path": "x.flac", "speaker": "1", "emotion": "bored"}],
                       ["path", "speaker", "emotion"])
    with pytest.raises(DatasetLayoutError, match="bored") as e:
        load_corpus(bad)
    assert "\n" not in str(e.value)
    nospk = write_corpus(tmp_path / "nospk", [{"path": "x.flac", "emotion": "sad"}], ["path", "emotion"])
    with pytest.raises(DatasetLayoutError, match="speaker"):
        load_corpus(nospk)
    with pytest.raises(DatasetLayoutError, match="not found"):
        load_corpora(tmp_path, ["nothing"])


def test_speaker_folds_keep_speakers_whole(tmp_path: Path) -> None:
    from training.corpora import speaker_folds

    alpha, beta = small_corpora(tmp_path)
    folds = speaker_folds(alpha, 2)
    assert sorted(s for f in folds for s in f) == alpha.speakers
    assert all({"male", "female"} == {r.gender for r in alpha.records if r.speaker in f} for f in folds)
    assert speaker_folds(beta, 5) == []  # one speaker: held out whole, never split


def test_cross_validation_holds_out_whole_speakers_of_every_corpus(tmp_path: Path) -> None:
    from training.multi import cv_folds

    corpora = small_corpora(tmp_path)
    folds = cv_folds(corpora)
    held = [s for f in folds for s in f]
    assert len(held) == len(set(held)) == 4  # alpha's 4 speakers once each; beta never
    assert not any(s.startswith("beta/") for s in held)


def test_masked_loss_says_nothing_about_absent_labels() -> None:
    tf = pytest.importorskip("tensorflow", reason="TensorFlow (training only) is not installed: scripts/setup.sh --dev")
    from training.multi_fit import N, masked_loss

    calm, angry, sad = LABELS.index("calm"), LABELS.index("angry"), LABELS.index("sad")
    target = np.zeros((1, N), dtype=np.float32)
    target[0, angry] = 1.0
    mask = np.zeros((1, N), dtype=np.float32)
    mask[0, [angry, sad]] = 1.0  # a corpus with only angry and sad
    logits = tf.Variable(np.random.default_rng(0).normal(size=(1, N)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = masked_loss(tf.constant(np.concatenate([target, mask], axis=1)), logits)
    grad = tape.gradient(loss, logits).numpy()[0]
    assert grad[calm] == 0.0 and np.all(grad[mask[0] == 0] == 0.0)  # absent labels are not pushed down
    assert grad[angry] < 0 < grad[sad]
    # the loss is the two-way cross-entropy over the corpus's labels
    z = logits.numpy()[0, [angry, sad]]
    assert float(loss.numpy()[0]) == pytest.approx(-(z[0] - np.log(np.exp(z).sum())), rel=1e-5)


def test_sampling_balances_corpora_labels_and_speakers(tmp_path: Path) -> None:
    from training.corpus_features import CorpusWindows
    from training.multi_fit import clip_weights

    corpora = small_corpora(tmp_path)
    records = [r for c in corpora for r in c.records]
    speakers = sorted({f"{r.corpus}/{r.speaker}" for r in records})
    cw = CorpusWindows(np.zeros((len(records), 2, 2)), np.arange(len(records)), np.zeros(len(records), dtype=np.int8),
                       records, np.array([r.label for r in records]),
                       np.array([0 if r.corpus == "alpha" else 1 for r in records]),
                       np.array([speakers.index(f"{r.corpus}/{r.speaker}") for r in records]),
                       ["alpha", "beta"], speakers)
    w = clip_weights(cw, np.arange(len(records)))
    assert w.sum() == pytest.approx(1.0)
    assert w[cw.corpus == 0].sum() == pytest.approx(0.5)  # 16 clips weigh as much as 8
    beta = cw.corpus == 1
    for lab in np.unique(cw.label[beta]):
        assert w[beta & (cw.label == lab)].sum() == pytest.approx(0.5 / 3)  # angry has 4 clips, the others 2


def test_metrics_restrict_uar_to_the_corpus_labels() -> None:
    from training.multi_metrics import corpus_scores, ece, fit_temperature, speaker_normalised, with_temperature

    happy, sad, calm = LABELS.index("happy"), LABELS.index("sad"), LABELS.index("calm")
    p = np.full((4, 8), 0.01)
    p[0, happy] = p[1, happy] = 0.9  # two happy clips right
    p[2, calm] = 0.6
    p[2, sad] = 0.3  # a sad clip called calm (a label the corpus lacks), sad second
    p[3, sad] = 0.9
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([happy, happy, sad, sad])
    s = corpus_scores(p, y, [happy, sad])
    assert s["uar8"] == pytest.approx(0.75) and s["uar"] == pytest.approx(1.0)
    assert s["arousal_uar"] == pytest.approx(1.0)
    # output normalisation per speaker keeps probabilities and removes a speaker's constant bias
    q = speaker_normalised(p, np.array([0, 0, 1, 1]))
    assert np.allclose(q.sum(axis=1), 1.0)
    # temperature scaling: an over-confident model gets T > 1 and a lower ECE
    rng = np.random.default_rng(0)
    yy = rng.integers(0, 8, 2000)
    logits = rng.normal(size=(2000, 8))
    logits[np.arange(2000), yy] += 1.0
    pp = np.exp(4 * logits)
    pp /= pp.sum(axis=1, keepdims=True)
    t = fit_temperature(pp, yy)
    assert t > 2 and ece(with_temperature(pp, t), yy) < ece(pp, yy) / 2


def test_shared_corpora_manifests_read() -> None:
    """The five corpora of ../shared/data (or VOICE_MONITOR_CORPORA) read whole, with the expected label sets."""
    from training.corpora import KNOWN_CORPORA, load_corpora

    if not all((SHARED / n / "manifest.csv").exists() for n in KNOWN_CORPORA):
        pytest.skip(f"the shared corpora are not at {SHARED}: set VOICE_MONITOR_CORPORA to the folder holding "
                    f"{', '.join(KNOWN_CORPORA)}")
    corpora = {c.name: c for c in load_corpora(SHARED)}
    sizes = {n: len(c.records) for n, c in corpora.items()}
    assert sizes == {"ravdess16k": 1200, "nemo": 4481, "ased": 2474, "esd0020": 1652, "turev": 1735}
    assert [LABELS[i] for i in corpora["turev"].labels] == ["calm", "happy", "sad", "angry"]
    assert len(corpora["esd0020"].speakers) == 1 and len(corpora["ased"].speakers) == 65
    assert all(LABELS.index("disgust") not in c.labels for n, c in corpora.items() if n != "ravdess16k")


def test_label_coverage_counts_the_training_corpora_of_each_run(tmp_path: Path) -> None:
    import json

    from training.multi_report import label_coverage

    calm = LABELS.index("calm")
    sets = {"a": {calm, 0}, "b": {0}, "c": {0}}
    for name, meta in (("loco_a", {"kind": "loco", "held_out": "a"}), ("cv_1", {"kind": "cv", "fold": 1})):
        np.savez_compressed(tmp_path / f"{name}.npz", keys=np.array(["x", "y"]), probs=np.zeros((2, 8)),
                            info=json.dumps(meta))
    cov = label_coverage([tmp_path / "loco_a.npz", tmp_path / "cv_1.npz"], ["a", "b", "c"], sets)
    assert cov.shape == (4, 8)
    assert cov[0, calm] == 0.0 and cov[0, 0] == 1.0  # without a, no training corpus has calm
    assert cov[2, calm] == pytest.approx(1 / 3)  # cross-validation trains on all three


def _real_windows(tmp_path: Path):
    """CorpusWindows of the repository's clips in the small corpora, real features of real windows."""
    from monitor.audio.convert import read_audio
    from monitor.dsp.features import log_mel
    from monitor.dsp.segmenter import segment_audio
    from training.corpus_features import CorpusWindows
    from training.train import FEATURES

    corpora = small_corpora(tmp_path)
    records = [r for c in corpora for r in c.records]
    speakers = sorted({f"{r.corpus}/{r.speaker}" for r in records})
    x, clip = [], []
    for j, r in enumerate(records):
        for w in segment_audio(read_audio(r.path)[0]):
            x.append(log_mel(w.audio, FEATURES))
            clip.append(j)
    return CorpusWindows(np.stack(x).astype(np.float16), np.array(clip), np.zeros(len(x), dtype=np.int8), records,
                         np.array([r.label for r in records]),
                         np.array([0 if r.corpus == "alpha" else 1 for r in records]),
                         np.array([speakers.index(f"{r.corpus}/{r.speaker}") for r in records]),
                         ["alpha", "beta"], speakers)


def test_training_normalises_held_out_windows_as_the_monitor_does(tmp_path: Path) -> None:
    """The evaluation's 'each clip a file' inputs are exactly what monitor.analysis feeds the model in `score`."""
    from monitor.inference.normalise import NormParams, SessionNormaliser
    from training.multi_fit import FitOptions, norm_params, normalised_inputs, speaker_profiles, window_profiles

    cw = _real_windows(tmp_path)
    prof = window_profiles(cw.x)
    spk = speaker_profiles(cw, prof)
    clips = np.arange(len(cw.records))
    params = norm_params(cw, clips, spk, FitOptions(norm_prior_windows=4.0))
    # The population: the mean over corpora of the mean over their speakers.
    alpha = spk[[i for i, s in enumerate(cw.speakers) if s.startswith("alpha/")]].mean(axis=0)
    beta = spk[[i for i, s in enumerate(cw.speakers) if s.startswith("beta/")]].mean(axis=0)
    np.testing.assert_allclose(params.global_mean, (alpha + beta) / 2, atol=1e-5)
    rows = np.arange(len(cw.x))
    trained = normalised_inputs(cw, rows, params, live=True, by="clip")
    for c in np.unique(cw.clip):
        norm = SessionNormaliser(NormParams(params.global_mean, params.prior_windows))
        for r in np.flatnonzero(cw.clip == c):
            np.testing.assert_allclose(norm.normalise(cw.x[r].astype(np.float32)), trained[r], atol=1e-5)
    # A whole speaker known at once (a --speaker group): every window gets the same shift.
    whole = normalised_inputs(cw, rows, params, live=False)
    s0 = np.flatnonzero(cw.speaker[cw.clip] == cw.speaker[0])
    shifts = (whole[s0] - cw.x[s0].astype(np.float32))
    assert np.abs(shifts).max() > 0


def test_degraded_versions_are_files_of_their_own(tmp_path: Path) -> None:
    """The held-out clips' augmented copies are normalised and scored each version apart, never mixed with the
    recording or with another kind."""
    import json
    from dataclasses import replace

    from monitor.inference.normalise import NormParams, SessionNormaliser
    from training.multi_fit import FitOptions, norm_params, normalised_inputs, speaker_profiles, window_profiles
    from training.multi_report import degraded_table

    cw = _real_windows(tmp_path)
    n = len(cw.x)
    rng = np.random.default_rng(0)
    louder = np.clip(cw.x.astype(np.float32) + rng.uniform(0.05, 0.2, size=(1, 1, cw.x.shape[2])), 0, 1)
    cw = replace(cw, x=np.concatenate([cw.x, louder.astype(np.float16)]), clip=np.concatenate([cw.clip, cw.clip]),
                 version=np.concatenate([cw.version, np.full(n, 3, dtype=np.int8)]))
    params = norm_params(cw, np.arange(len(cw.records)), speaker_profiles(cw, window_profiles(cw.x)),
                         FitOptions(norm_prior_windows=4.0))
    rows = np.arange(n, 2 * n)
    got = normalised_inputs(cw, rows, params, live=True, by="version")
    mixed = normalised_inputs(cw, np.arange(2 * n), params, live=True, by="clip")[n:]
    for c in np.unique(cw.clip[rows]):
        norm = SessionNormaliser(NormParams(params.global_mean, params.prior_windows))
        for i in np.flatnonzero(cw.clip[rows] == c):
            np.testing.assert_allclose(norm.normalise(cw.x[rows[i]].astype(np.float32)), got[i], atol=1e-5)
    assert np.abs(got - mixed).max() > 1e-3  # grouped with the recording, the copies would be shifted otherwise

    # Scoring: one clip heard as two versions counts twice, each pooled over its own windows.
    angry, sad = LABELS.index("angry"), LABELS.index("sad")
    probs = np.zeros((3, 8))
    probs[0, angry] = probs[1, angry] = 1.0  # clip a, room: two windows, angry
    probs[2, sad] = 1.0  # clip a, noise: sad
    np.savez(tmp_path / "loco_x.npz", keys=np.array(["a"]), probs=np.zeros((1, 8)), info=json.dumps({}),
             degraded_keys=np.array(["a", "a", "a"]), degraded_version=np.array([2, 2, 3], dtype=np.int8),
             degraded_probs=probs)
    t = degraded_table([tmp_path / "loco_x.npz"], {"a": (angry, "x", "x/s")}, ["x"])
    assert t["x"]["n"] == 2 and t["x"]["acc8"] == 0.5
    assert t["kind:room"]["uar8"] == 1.0 and t["kind:noise"]["uar8"] == 0.0


def test_two_degraded_versions_of_one_clip_are_two_files(tmp_path: Path) -> None:
    """``by="version"`` on the degraded rows of ``run_one`` (every augmented version of each held-out clip): each
    (clip, version) is normalised alone, as `score` would a file of it; grouped by clip, the two versions of a clip
    would share one voice profile."""
    from dataclasses import replace

    from monitor.inference.normalise import NormParams, SessionNormaliser
    from training.multi_fit import FitOptions, norm_params, normalised_inputs, speaker_profiles, window_profiles

    cw = _real_windows(tmp_path)
    n = len(cw.x)
    rng = np.random.default_rng(1)
    x0 = cw.x.astype(np.float32)
    louder = np.clip(x0 + rng.uniform(0.05, 0.2, size=(1, 1, cw.x.shape[2])), 0, 1)
    tilted = np.clip(x0 - np.linspace(0.0, 0.3, cw.x.shape[2]), 0, 1)
    cw = replace(cw, x=np.concatenate([cw.x, louder.astype(np.float16), tilted.astype(np.float16)]),
                 clip=np.concatenate([cw.clip] * 3),
                 version=np.concatenate([cw.version, np.full(n, 2, dtype=np.int8), np.full(n, 4, dtype=np.int8)]))
    params = norm_params(cw, np.arange(len(cw.records)), speaker_profiles(cw, window_profiles(cw.x)),
                         FitOptions(norm_prior_windows=4.0))
    deg = np.flatnonzero(cw.version > 0)
    got = normalised_inputs(cw, deg, params, live=True, by="version")
    for c in np.unique(cw.clip[deg]):
        for v in (2, 4):
            norm = SessionNormaliser(NormParams(params.global_mean, params.prior_windows))
            for i in np.flatnonzero((cw.clip[deg] == c) & (cw.version[deg] == v)):
                np.testing.assert_allclose(norm.normalise(cw.x[deg[i]].astype(np.float32)), got[i], atol=1e-5)
    by_clip = normalised_inputs(cw, deg, params, live=True, by="clip")
    assert np.abs(got - by_clip).max() > 1e-3
