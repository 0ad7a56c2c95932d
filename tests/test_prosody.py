"""The prosody head beside the CNN (``monitor.inference.prosody``, ``models/emotion.prosody.json``): the shipped
head, the fusion in the analyzer, the survey's statistics in ``score``, the switch, and a broken head. Real model,
real RAVDESS clips from tests/data, the real CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.analysis import WindowAnalyzer
from monitor.audio.convert import read_audio
from monitor.dsp.functionals import NAMES, functionals
from monitor.dsp.segmenter import segment_audio
from monitor.errors import ModelError
from monitor.inference.baseline import Baseline, BaselineOptions, Moments, pooled_stats
from monitor.inference.classifier import EmotionClassifier, prosody_path
from monitor.inference.prosody import FeatureStats, ProsodyHead, VoiceStats, fuse
from tests.test_baseline import probs_of, run_folder
from tests.test_batch import MODEL, clips, no_traceback, read_rows
from tests.test_batch import SCRIPT as SCORE

REPO = Path(__file__).resolve().parents[1]


def test_shipped_head_loads_and_matches_the_extractor(classifier: EmotionClassifier) -> None:
    head = classifier.prosody
    assert head is not None, f"{prosody_path(MODEL)} must ship beside the model"
    assert head.names == NAMES and np.shape(head.coef) == (len(classifier.labels), len(head.hidden_intercept)
                                                            or len(NAMES))
    assert not head.hidden_coef or np.shape(head.hidden_coef) == (len(head.hidden_intercept), len(NAMES))
    assert 0 < head.weight_run < 1 and 0 < head.weight_alone < 1
    assert head.temperature_run > 0 and head.temperature_alone > 0
    assert all(s > 0 for s in head.std)


def test_fuse_arithmetic() -> None:
    p = np.array([0.5, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    lp = np.log(np.array([0.05, 0.05, 0.05, 0.05, 0.1, 0.1, 0.1, 0.5]))
    assert np.allclose(fuse(p, lp, 1.0), p, atol=1e-6), "w = 1: the CNN alone"
    assert np.allclose(fuse(p, lp, 0.0), np.exp(lp), atol=1e-6), "w = 0: the head alone"
    half = fuse(p, lp, 0.5)
    expected = np.sqrt(p * np.exp(lp))
    assert np.allclose(half, expected / expected.sum(), atol=1e-6)
    sharper = fuse(p, lp, 0.5, temperature=0.5)
    assert sharper.max() > half.max() and np.argmax(sharper) == np.argmax(half)


def _windows(path: Path, window_s: float):
    from monitor.config import Config

    audio, _ = read_audio(path)
    return segment_audio(audio, Config().segmenter_options(window_s))


def test_analyzer_fuses_the_head_with_the_cnn(classifier: EmotionClassifier) -> None:
    """Each window: the CNN's probabilities (as with the head off) fused with the head's judgement of the window's
    functionals, standardised by what the session has sounded like so far (the window included) pulled towards
    the training windows' statistics; the sums a survey reads are kept."""
    head = classifier.prosody
    assert head is not None
    on, off = WindowAnalyzer(classifier), WindowAnalyzer(classifier, prosody=False)
    assert off.functional_sum is None
    voices = VoiceStats()
    moved = 0.0
    fs = []
    for clip in clips()[:4]:  # one session: four clips of different actors
        for w in _windows(clip, classifier.features.window_s):
            e_on, e_off = on.analyze(w), off.analyze(w)
            p_off = np.array([e_off.probabilities[lab] for lab in classifier.labels])
            p_on = np.array([e_on.probabilities[lab] for lab in classifier.labels])
            f = functionals(w.audio)
            fs.append(f)
            voices.add(f)
            mean, std = voices.standardiser("", head.population)
            lp = head.log_probs(f, mean, std)
            assert np.allclose(p_on, fuse(p_off, lp, head.weight_alone, head.temperature_alone), atol=1e-5)
            assert e_on.emotion == classifier.labels[int(np.argmax(p_on))]
            moved = max(moved, float(np.abs(p_on - p_off).max()))
    assert moved > 0.05, "the head must change something on real speech"
    assert on.windows == len(fs) and voices.windows() == len(fs)
    assert np.allclose(on.functional_sum, np.sum(fs, axis=0), rtol=1e-5)
    assert np.allclose(on.functional_sq, np.sum(np.square(np.asarray(fs, dtype=np.float64)), axis=0), rtol=1e-5)


def test_voice_stats_arithmetic_and_the_reports() -> None:
    """``VoiceStats``: the voice's own mean and spread as far as heard (``n / (n + prior)``), the prior's for the
    rest, a speaker's shrunk towards the session's; ``training.prosody.running_stats`` (the report's) is the
    same arithmetic."""
    from training.prosody import running_stats

    rng = np.random.default_rng(2)
    x = rng.normal(5.0, 3.0, size=(12, len(NAMES)))
    prior = FeatureStats(tuple(rng.normal(size=len(NAMES))), tuple(rng.uniform(1, 2, size=len(NAMES))))
    v = VoiceStats()
    m0, s0 = v.standardiser("", prior)
    assert np.allclose(m0, prior.mean) and np.allclose(s0, prior.std), "nothing heard: the prior"
    got = []
    for f in x:
        v.add(f)
        got.append(v.standardiser("", prior))
    n = len(x)
    lam = n / (n + v.prior_windows)
    assert np.allclose(got[-1][0], lam * x.mean(axis=0) + (1 - lam) * np.array(prior.mean))
    assert np.allclose(got[-1][1], np.sqrt(lam * x.var(axis=0) + (1 - lam) * np.array(prior.std) ** 2))
    order = np.arange(n)
    mean, std = running_stats(x, np.zeros(n), order, np.array(prior.mean), np.array(prior.std))
    assert np.allclose(mean, [g[0] for g in got]) and np.allclose(std, [g[1] for g in got])
    # a speaker: shrunk towards the session's, which counts every window
    v.add(x[0] + 10.0, "S2")
    session = v.standardiser("", prior)
    s2 = v.standardiser("S2", prior)
    lam1 = 1 / (1 + v.prior_windows)
    assert np.allclose(s2[0], lam1 * (x[0] + 10.0) + (1 - lam1) * session[0])
    assert v.windows("") == n + 1 and v.windows("S2") == 1


def test_run_statistics_are_pooled_and_pulled_towards_the_training_windows(classifier: EmotionClassifier) -> None:
    head = classifier.prosody
    assert head is not None
    rng = np.random.default_rng(0)
    files = [rng.normal(3.0, 2.0, size=(k, len(NAMES))) for k in (3, 5, 8)]
    moments = [Moments(len(x), tuple(x.sum(axis=0)), tuple((x**2).sum(axis=0))) for x in files]
    stats = pooled_stats([*moments, None])
    assert stats is not None and stats.files == 3
    every = np.concatenate(files)
    assert np.allclose(stats.mean, every.mean(axis=0), atol=1e-5)
    assert np.allclose(stats.std, every.std(axis=0), atol=1e-5)
    assert pooled_stats([moments[0], None]) is None, "one file: nothing to measure a run by"
    few = head.shrunk(np.array(stats.mean), np.array(stats.std), 3, BaselineOptions().prior_files)
    many = head.shrunk(np.array(stats.mean), np.array(stats.std), 3000, BaselineOptions().prior_files)
    lam = 3 / (3 + BaselineOptions().prior_files)
    assert np.allclose(few.mean, lam * every.mean(axis=0) + (1 - lam) * np.array(head.mean), atol=1e-4)
    lam = 3000 / (3000 + BaselineOptions().prior_files)
    assert np.allclose(many.mean, lam * every.mean(axis=0) + (1 - lam) * np.array(head.mean), atol=1e-4)
    var = lam * every.std(axis=0) ** 2 + (1 - lam) * np.array(head.std) ** 2
    assert np.allclose(many.std, np.sqrt(var), atol=1e-4)
    gap = lambda st: np.abs(np.array(st.mean) - every.mean(axis=0)).sum()  # noqa: E731
    assert gap(many) < gap(few), "more files, nearer the run's own statistics"


def score(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCORE), *args, "--progress", "none", "-j", "2", "--speakers", "off"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=240)


def test_score_fuses_with_the_runs_statistics(tmp_path: Path, classifier: EmotionClassifier) -> None:
    """The default run's windows are the CNN-alone run's windows with the run's baseline taken out, fused with
    the head's judgement of each window's functionals standardised by the surveyed windows' statistics."""
    head = classifier.prosody
    assert head is not None
    folder, cnn = run_folder(tmp_path)
    off = score(str(folder), "-o", "off.csv", "-w", "off_w.csv", "--baseline", "off", "--config", str(cnn),
                cwd=tmp_path)
    on = score(str(folder), "-o", "on.csv", "-w", "on_w.csv", cwd=tmp_path)
    assert off.returncode == 0 and on.returncode == 0, off.stderr + on.stderr
    key = lambda r: (r["path"], float(r["start_s"]))  # noqa: E731
    w_off = sorted(read_rows(tmp_path / "off_w.csv"), key=key)
    w_on = sorted(read_rows(tmp_path / "on_w.csv"), key=key)
    assert [key(r) for r in w_off] == [key(r) for r in w_on]
    labels = list(classifier.labels)
    p_off, p_on = probs_of(w_off, labels), probs_of(w_on, labels)
    # rebuild what the survey measured: the CNN's mean log-probabilities and the functionals of every window
    paths = sorted({r["path"] for r in w_off})
    f_rows, moments, means = {}, [], []
    logp = np.log(np.maximum(p_off, 1e-6))
    for p in paths:
        ws = _windows(tmp_path / p, classifier.features.window_s)
        starts = [float(r["start_s"]) for r in w_off if r["path"] == p]
        assert [round(w.start_s, 2) for w in ws] == [round(s, 2) for s in starts], p
        f = np.array([functionals(w.audio) for w in ws], dtype=np.float64)
        f_rows[p] = f
        moments.append(Moments(len(f), tuple(f.sum(axis=0)), tuple((f**2).sum(axis=0))))
        means.append(logp[[i for i, r in enumerate(w_off) if r["path"] == p]].mean(axis=0))
    base = Baseline.from_file_means(means, BaselineOptions())
    stats = pooled_stats(moments)
    assert base is not None and stats is not None
    run = head.shrunk(np.array(stats.mean), np.array(stats.std), stats.files, BaselineOptions().prior_files)
    lps = []
    for p in paths:  # each file its own voice, over the run's statistics
        voices = VoiceStats()
        for f in f_rows[p]:
            voices.add(f)
            lps.append(head.log_probs(f, *voices.standardiser("", run)))
    expected = fuse(base.apply(p_off), np.array(lps), head.weight_run, head.temperature_run)
    assert np.abs(expected - p_on).max() < 0.01  # the CSV rounds probabilities
    assert np.abs(p_on - base.apply(p_off)).max() > 0.05, "the head must change something on a real run"


def test_prosody_false_is_the_cnn_alone(tmp_path: Path) -> None:
    """``[model] prosody = false``: every window as without a head (a model copied without its head)."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("emotion.tflite", "emotion.json"):
        shutil.copy(MODEL.parent / name, bare / name)
    cnn = tmp_path / "cnn.toml"
    cnn.write_text("[model]\nprosody = false\n")
    clip = str(clips()[2])
    a = score(clip, "-o", "a.csv", "--config", str(cnn), cwd=tmp_path)
    b = score(clip, "-o", "b.csv", "--model", str(bare / "emotion.tflite"), cwd=tmp_path)
    c = score(clip, "-o", "c.csv", cwd=tmp_path)
    assert a.returncode == b.returncode == c.returncode == 0, a.stderr + b.stderr + c.stderr
    rows = [read_rows(tmp_path / f"{n}.csv")[0] for n in "abc"]
    probs = [{k: v for k, v in r.items() if k.startswith("p_")} for r in rows]
    assert probs[0] == probs[1], "prosody off equals a model without a head"
    assert probs[0] != probs[2], "the shipped default fuses the head"


@pytest.mark.parametrize("content", ["{not json", '{"kind": "prosody-softmax-v1", "features": ["f0_mean"], '
                                                '"mean": [0], "std": [1], "coef": [[0]], "intercept": [0], '
                                                '"weight_run": 0.5, "weight_alone": 0.5}'])
def test_broken_head_is_one_line(tmp_path: Path, content: str) -> None:
    model = tmp_path / "m"
    model.mkdir()
    for name in ("emotion.tflite", "emotion.json"):
        shutil.copy(MODEL.parent / name, model / name)
    (model / "emotion.prosody.json").write_text(content)
    with pytest.raises(ModelError, match="prosody"):
        EmotionClassifier(model / "emotion.tflite")
    res = score(str(clips()[0]), "-o", "x.csv", "--model", str(model / "emotion.tflite"), cwd=tmp_path)
    assert res.returncode != 0
    no_traceback(res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "emotion.prosody.json" in lines[0], res.stderr


def test_head_round_trips(tmp_path: Path, classifier: EmotionClassifier) -> None:
    head = classifier.prosody
    assert head is not None
    head.save(tmp_path / "h.json")
    again = ProsodyHead.load(tmp_path / "h.json", classifier.labels, NAMES)
    assert again == head
    assert again.population == FeatureStats(head.mean, head.std, 0)


def test_fit_head_learns_and_masks() -> None:
    """``training.prosody.fit_head``: a class-balanced softmax regression that separates what can be separated;
    with the masked loss a corpus never pushes down the labels it lacks."""
    from training.prosody import fit_head

    rng = np.random.default_rng(1)
    n, d = 600, 4
    y = rng.integers(0, 3, n)  # labels 0-2
    x = rng.normal(size=(n, d))
    x[:, 0] += 2.5 * (y == 1)
    x[:, 1] += 2.5 * (y == 2)
    corpus = np.where(np.arange(n) < 300, "a", "b")
    y[corpus == "b"] = np.where(y[corpus == "b"] == 2, 1, y[corpus == "b"])  # corpus b has no label 2
    labels = {"a": [0, 1, 2], "b": [0, 1]}
    coef, icpt = fit_head(x, y, corpus, labels, mask=False)
    masked, m_icpt = fit_head(x, y, corpus, labels, mask=True)
    a = corpus == "a"
    right = lambda c, i: float(np.mean(np.argmax(x[a] @ c.T + i, axis=1) == y[a]))  # noqa: E731
    assert right(masked, m_icpt) > 0.8, "separable labels are learnt"
    # corpus b's clips that look like label 2 are "not 2" evidence only without the mask: it then learns 2 worse
    assert right(masked, m_icpt) > right(coef, icpt) + 0.03
    for c, i in ((coef, icpt), (masked, m_icpt)):
        assert set(np.unique(np.argmax(x @ c.T + i, axis=1))) <= {0, 1, 2}, "labels no corpus has never win"


def test_fit_mlp_learns_what_a_regression_cannot() -> None:
    """``training.prosody.fit_mlp``: a one-hidden-layer head learns labels no line separates (XOR of two
    features), where the regression stays at chance; its head in the monitor gives the same answers."""
    from training.prosody import fit_head, fit_mlp, head_from

    rng = np.random.default_rng(2)
    n, d = 800, len(NAMES)
    x = rng.normal(size=(n, d))
    y = np.where((x[:, 0] > 0) != (x[:, 1] > 0), 3, 5)  # two labels of the eight, XOR of the signs
    corpus = np.where(np.arange(n) < n // 2, "a", "b")
    mlp = fit_mlp(x, y, corpus, 16)
    coef, icpt = fit_head(x, y, corpus, {"a": [3, 5], "b": [3, 5]}, mask=False)
    assert mlp.hidden_coef.shape == (16, d) and mlp.coef.shape == (8, 16)
    head = head_from(mlp, None, np.zeros(d), np.ones(d))
    right = float(np.mean(np.argmax(head.log_probs(x, np.zeros(d), np.ones(d)), axis=1) == y))
    assert right > 0.9, "the hidden layer learns XOR"
    assert float(np.mean(np.argmax(x @ coef.T + icpt, axis=1) == y)) < 0.65, "a regression cannot"
    two = fit_mlp(x, y, corpus, 16, seeds=2)
    assert two.hidden_coef.shape == (32, d) and two.coef.shape == (8, 32), "two starts: one net of 2 x 16 units"
    assert np.array_equal(fit_mlp(x, y, corpus, 16).coef, mlp.coef), "a fixed start: the same net every time"


def _with_hidden(d: dict, units: int = 3, activation: str = "tanh") -> dict:
    """The head dict ``d`` given a hidden layer of ``units`` (random weights, fixed seed)."""
    rng = np.random.default_rng(3)
    d.update(hidden_coef=rng.normal(size=(units, len(d["features"]))).tolist(),
             hidden_intercept=rng.normal(size=units).tolist(), activation=activation,
             coef=rng.normal(size=(len(d["coef"]), units)).tolist())
    return d


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_hidden_layer_head_is_its_arithmetic(tmp_path: Path, activation: str) -> None:
    """A head with a hidden layer: ``log_softmax(coef @ act(hidden_coef @ x + hidden_intercept) + intercept)``
    of the clipped standardised functionals, computed by hand; it round-trips through its file and fuses as
    the regression does."""
    import json

    model = _head_variant(tmp_path, lambda d: _with_hidden(d, 5, activation))
    clf = EmotionClassifier(model)
    head = clf.prosody
    assert head is not None and np.shape(head.hidden_coef) == (5, len(NAMES)) and head.activation == activation
    d = json.loads((model.parent / "emotion.prosody.json").read_text())
    rng = np.random.default_rng(4)
    f = np.asarray(d["mean"]) + rng.normal(size=(6, len(NAMES))) * np.asarray(d["std"]) * 3
    mean, std = np.asarray(d["mean"]) * 0.9, np.asarray(d["std"]) * 1.1
    x = np.clip((f - mean) / (std + 1e-6), -6, 6)
    a = x @ np.asarray(d["hidden_coef"]).T + np.asarray(d["hidden_intercept"])
    h = np.tanh(a) if activation == "tanh" else np.maximum(a, 0)
    z = h @ np.asarray(d["coef"]).T + np.asarray(d["intercept"])
    expected = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert np.allclose(head.log_probs(f, mean, std), expected, atol=1e-9)
    assert np.allclose(head.log_probs(f[2], mean, std), expected[2], atol=1e-9), "one window as a row of many"
    head.save(tmp_path / "again.json")
    assert ProsodyHead.load(tmp_path / "again.json", clf.labels, NAMES) == head
    plain = ProsodyHead(head.names, head.mean, head.std, tuple(tuple(r) for r in np.ones((8, len(NAMES)))),
                        head.intercept, 0.5, 0.5)
    plain.save(tmp_path / "plain.json")
    assert "hidden_coef" not in json.loads((tmp_path / "plain.json").read_text()), "none written without one"
    assert ProsodyHead.load(tmp_path / "plain.json", clf.labels, NAMES) == plain


@pytest.mark.parametrize("change", [
    lambda d: _with_hidden(d).pop("hidden_intercept"),
    lambda d: _with_hidden(d).pop("activation"),
    lambda d: _with_hidden(d).pop("hidden_coef"),
    lambda d: _with_hidden(d).update(activation="sigmoid"),
    lambda d: _with_hidden(d)["hidden_coef"][1].pop(),
    lambda d: _with_hidden(d).update(hidden_intercept=[0.0, 0.0]),
    lambda d: _with_hidden(d)["coef"][0].append(0.0),
    lambda d: _with_hidden(d)["hidden_coef"][0].__setitem__(0, float("nan")),
    lambda d: _with_hidden(d).update(hidden_coef="x"),
], ids=["no intercept", "no activation", "no hidden coef", "unknown activation", "ragged hidden coef",
        "short hidden intercept", "coef of other width", "nan hidden coef", "hidden coef a string"])
def test_malformed_hidden_layer_is_refused_at_load(tmp_path: Path, change) -> None:
    model = _head_variant(tmp_path, change)
    with pytest.raises(ModelError, match="prosody"):
        EmotionClassifier(model)


def test_malformed_hidden_layer_is_one_line(tmp_path: Path) -> None:
    model = _head_variant(tmp_path, lambda d: _with_hidden(d).update(activation="sigmoid"))
    res = score(str(clips()[0]), "-o", "x.csv", "--model", str(model), cwd=tmp_path)
    assert res.returncode != 0
    no_traceback(res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "emotion.prosody.json" in lines[0] and "hidden layer" in lines[0], res.stderr


def _head_variant(tmp_path: Path, change) -> Path:
    """A model folder with the shipped model and its head, the head changed by ``change(dict)``."""
    import json

    model = tmp_path / "m"
    model.mkdir(exist_ok=True)
    for name in ("emotion.tflite", "emotion.json"):
        shutil.copy(MODEL.parent / name, model / name)
    d = json.loads(prosody_path(MODEL).read_text())
    change(d)
    (model / "emotion.prosody.json").write_text(json.dumps(d))
    return model / "emotion.tflite"


def _ragged(d: dict) -> None:
    d["coef"][0] = d["coef"][0][:-1]


@pytest.mark.parametrize("change", [
    _ragged,
    lambda d: d.update(mean=d["mean"][:-1]),
    lambda d: d.update(std=d["std"][:-1]),
    lambda d: d.update(intercept=d["intercept"][:-1]),
    lambda d: d["std"].__setitem__(0, 0.0),
    lambda d: d["std"].__setitem__(0, -1.0),
    lambda d: d["mean"].__setitem__(0, float("nan")),
    lambda d: d["coef"][0].__setitem__(0, float("inf")),
], ids=["ragged coef", "short mean", "short std", "short intercept", "zero std", "negative std", "nan mean",
        "inf coef"])
def test_head_of_wrong_shape_or_values_is_refused_at_load(tmp_path: Path, change) -> None:
    """A head whose arrays do not fit or hold no usable numbers is a ModelError when the model loads, not a
    ValueError at load (a traceback) or at every window (every file an internal error, NaN probabilities)."""
    model = _head_variant(tmp_path, change)
    with pytest.raises(ModelError, match="prosody"):
        EmotionClassifier(model)


def test_live_with_a_ragged_head_is_one_line(tmp_path: Path) -> None:
    model = _head_variant(tmp_path, _ragged)
    cmd = [sys.executable, "-m", "monitor.cli", "--file", str(clips()[0]), "--model", str(model),
           "--no-dashboard", "--transcriber", "none"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    no_traceback(res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "emotion.prosody.json" in lines[0], res.stderr


def serve_stops_at_start(model: Path, head_file: str) -> None:
    """``serve --model model`` exits at start with one line naming ``head_file`` (it builds its scorer only at the
    first upload, so a broken head must be caught before, not as a 500 and a traceback at every upload)."""
    cmd = [sys.executable, "-m", "monitor.cli", "serve", "--port", "0", "--model", str(model)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"serve started with a broken {head_file}: {err}")
    assert proc.returncode != 0
    no_traceback(err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and head_file in lines[0], err


def test_serve_with_a_broken_head_is_one_line_at_start(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    model = tmp_path / "m"
    model.mkdir()
    for name in ("emotion.tflite", "emotion.json"):
        shutil.copy(MODEL.parent / name, model / name)
    (model / "emotion.prosody.json").write_text("{not json")
    serve_stops_at_start(model / "emotion.tflite", "emotion.prosody.json")


def test_head_of_another_emotion_model_is_one_line(tmp_path: Path) -> None:
    """The head's weights and temperatures were chosen on the outputs of the model beside it: a head recorded for
    another model (a retrained CNN, the head left as it was) is refused with one line."""
    import json

    model = tmp_path / "m"
    model.mkdir()
    for name in ("emotion.tflite", "emotion.json", "emotion.prosody.json"):
        shutil.copy(MODEL.parent / name, model / name)
    head = json.loads((model / "emotion.prosody.json").read_text())
    assert head["emotion_sha256"] == json.loads((MODEL.parent / "emotion.json").read_text())["tflite_sha256"]
    EmotionClassifier(model / "emotion.tflite")  # the shipped pair loads
    head["emotion_sha256"] = "0" * 64
    (model / "emotion.prosody.json").write_text(json.dumps(head))
    with pytest.raises(ModelError, match="another emotion model"):
        EmotionClassifier(model / "emotion.tflite")
    res = score(str(clips()[0]), "-o", "x.csv", "--model", str(model / "emotion.tflite"), cwd=tmp_path)
    assert res.returncode != 0
    no_traceback(res.stderr)
    assert len([ln for ln in res.stderr.splitlines() if ln.strip()]) == 1, res.stderr
