"""The prosody head beside the CNN: functionals of every window, a softmax regression, and its fusion weight.

What it does, in steps (each result is cached or written, so a step runs again in seconds):

1. ``monitor.dsp.functionals`` of every window the monitor's segmenter cuts from every clip of every corpus (the
   recording itself, as the CNN's held-out windows; a clip without a window is used whole, as the CNN's cache
   does). Cached per corpus under ``~/.cache/voice-monitor/prosody-<code>/``.
2. A class-balanced softmax regression on the functionals, standardised per corpus or per speaker, its loss over
   all eight labels or over each corpus's own (four heads; every corpus x label has the same total weight);
   beside them heads with one hidden layer (``--hidden``, default 16 tanh units; ``fit_mlp``), shipped only if
   their CV sum (run + alone + session at their weights) beats the regression's by ``MARGIN``.
3. The fusion with the CNN's held-out probabilities (``models/results/<config>/cv_*.npz`` and ``loco_*.npz``,
   the shipped temperature applied), as the monitor does it (``monitor.inference.prosody``)::

       log p = w log p_cnn + (1 - w) log p_prosody

   each window standardised by ``VoiceStats``'s arithmetic (``running_stats``) in the settings of
   ``evaluate_file``: a `score` run of clips (the run's statistics as the prior), a clip alone, a speaker's clips
   as a live session (the training windows' as the prior), and runs / sessions 60 % neutral. The head, and the
   weight of each prior, are chosen on the speaker-independent cross-validation (mean 8-way UAR over folds and
   corpora), then read on the corpora never heard (the regression trained on the other four); a temperature per
   prior is fitted on the CV's windows.
4. The shipped head: trained on every window of every corpus, with the chosen weights, written to
   ``models/emotion.prosody.json``; the tables to ``models/results/prosody.json`` and ``models/PROSODY.md``.

``--voice K``: the same for the *voice head* (``models/emotion.voice.json``, ``models/results/voice.json``,
``models/VOICE.md``), which the monitor fuses instead when speaker turns are on: the head's inputs are the
functionals and the first K principal components of the speaker encoder's states for each window
(``training.voice_embeddings``; the components fitted on the training windows of each evaluation, standardised
per voice like the functionals; in a `score` run their prior is the training windows', and with the run's voices,
``--run-voices``, the nearest group of the run's surveyed clips).

    python -m training.prosody --data ../shared/data            # ~5 min the first time (2 cores), then seconds
    python -m training.prosody --data ../shared/data --voice 64 --hidden ""   # the shipped voice head; + ~6 min
                                                                              # for the embeddings the first time
"""

from __future__ import annotations

import argparse
import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.audio.convert import read_audio
from monitor.dsp.functionals import NAMES, functionals
from monitor.dsp.segmenter import segment_audio
from monitor.inference.baseline import BaselineOptions
from monitor.inference.prosody import PRIOR_WINDOWS, FeatureStats, ProsodyHead, fuse, shrink
from monitor.labels import LABELS
from training.corpora import KNOWN_CORPORA, Corpus, load_corpora
from training.dataset import DEFAULT_CACHE, cached_clips, framing_fingerprint, save_npz_atomic
from training.multi_metrics import corpus_scores, ece, fit_temperature, pool, with_temperature
from training.multi_report import _survey_rows, skewed_subset, with_run_baseline

WEIGHTS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0)
C = 0.1  # inverse L2 strength (per unit of mean sample weight)
HIDDEN = "16"  # the one-hidden-layer heads measured beside the regressions (units)
HIDDEN_C = 0.02  # their inverse L2 strength (measured on the CV: 0.1 and 0.02; models/results/FINDINGS.md)
N = len(LABELS)


def code_key() -> str:
    h = hashlib.sha1(framing_fingerprint().encode())
    h.update((Path(__file__).resolve().parents[1] / "monitor/dsp/functionals.py").read_bytes())
    return h.hexdigest()[:12]


def clip_windows(path: str) -> list[np.ndarray]:
    """A clip's audio as the monitor's segmenter cuts it into windows (the clip whole when it gives none): what the
    prosody head's functionals and the voice head's encoder states are read from."""
    audio, _ = read_audio(path)
    windows = segment_audio(audio)
    return [w.audio for w in windows] if windows else [audio]


def _clip_rows(path: str) -> np.ndarray:
    return np.stack([functionals(a) for a in clip_windows(path)])


@dataclass
class Windows:
    """Functionals of every window: ``x[i]`` of clip ``key[i]`` (``training.corpora.Record.key``)."""

    x: np.ndarray  # (n, len(NAMES)) float64
    key: np.ndarray  # (n,) str
    corpus: np.ndarray  # (n,) str
    label: np.ndarray  # (n,) int
    corpus_labels: dict[str, list[int]]
    speaker: np.ndarray  # (n,) str, "corpus/speaker"
    embedding: np.ndarray | None = None  # (n, 1024) speaker encoder states (``--voice``; training.voice_embeddings)
    vector: np.ndarray | None = None  # (n, dims) each window's unit vector in the speaker space (zeros: silent)


def speaker_vectors(embeddings: np.ndarray) -> np.ndarray:
    """Each window's embedding -> its unit vector in the monitor's speaker space (``SpeakerEncoder.project``);
    zeros for a window without one (silence)."""
    from monitor.speakers.encoder import SpeakerEncoder

    encoder = SpeakerEncoder()
    out = np.zeros((len(embeddings), encoder.lda[1].shape[1] if encoder.lda is not None else embeddings.shape[1]))
    for i, e in enumerate(embeddings):
        if np.any(e):
            out[i] = encoder.project(e.astype(np.float32))
    return out


def head_inputs(win: Windows, train: np.ndarray, voice_dims: int = 0
                ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Every window's head inputs and the embedding projection fitted on the ``train`` windows: the functionals
    alone (``voice_dims`` 0), or followed by the first ``voice_dims`` principal components of the embeddings."""
    if not voice_dims:
        return win.x, None
    if win.embedding is None:
        raise ValueError("voice head without the encoder states (win.embedding)")
    from training.voice_embeddings import principal_components

    mean, comp = principal_components(win.embedding[train], voice_dims)
    return np.hstack([win.x, (win.embedding - mean) @ comp.T]), (mean, comp)


def corpus_windows(corpora: list[Corpus], cache: Path | None = None, jobs: int = 2, log=print) -> Windows:
    cache = Path(cache or DEFAULT_CACHE).expanduser() / f"prosody-{code_key()}"
    cache.mkdir(parents=True, exist_ok=True)
    xs, keys, names, labels = [], [], [], []
    for c in corpora:
        path = cache / f"{c.name}.npz"
        want = [r.key for r in c.records]
        z = cached_clips(path, want)
        if z is None:
            log(f"prosody: functionals of {len(c.records)} clips of {c.name} ...")
            with ProcessPoolExecutor(jobs) as ex:
                rows = list(ex.map(_clip_rows, [str(r.path) for r in c.records], chunksize=32))
            z = {"x": np.concatenate(rows), "clips": np.array(want),
                 "key": np.concatenate([[r.key] * len(m) for r, m in zip(c.records, rows, strict=True)]),
                 "label": np.concatenate([[r.label] * len(m) for r, m in zip(c.records, rows, strict=True)])}
            save_npz_atomic(path, z)
        xs.append(z["x"].astype(np.float64))
        keys.append(z["key"])
        labels.append(z["label"])
        names.append(np.full(len(z["key"]), c.name))
    spk = {r.key: f"{c.name}/{r.speaker}" for c in corpora for r in c.records}
    key = np.concatenate(keys)
    return Windows(np.concatenate(xs), key, np.concatenate(names), np.concatenate(labels).astype(int),
                   {c.name: c.labels for c in corpora}, np.array([spk[str(k)] for k in key]))


def running_stats(x: np.ndarray, groups: np.ndarray, order: np.ndarray, prior_mean: np.ndarray,
                  prior_std: np.ndarray, prior_windows: float = PRIOR_WINDOWS) -> tuple[np.ndarray, np.ndarray]:
    """Each window's mean and spread as ``monitor.inference.prosody.VoiceStats`` gives them (its group a session
    heard in ``order``, the window itself included, shrunk towards the prior: rows of ``prior_mean`` /
    ``prior_std``, one per window, or one for all)."""
    mean, std = np.zeros_like(x), np.zeros_like(x)
    m0 = np.broadcast_to(prior_mean, x.shape)
    v0 = np.broadcast_to(prior_std, x.shape) ** 2
    for g in np.unique(groups):
        idx = order[groups[order] == g]
        n = np.arange(1, len(idx) + 1)[:, None]
        m = np.cumsum(x[idx], axis=0) / n
        v = np.maximum(np.cumsum(x[idx] ** 2, axis=0) / n - m**2, 0.0)
        lam = n / (n + prior_windows)
        mean[idx] = lam * m + (1 - lam) * m0[idx]
        std[idx] = np.sqrt(lam * v + (1 - lam) * v0[idx])
    return mean, std


def voice_stats(x: np.ndarray, groups: np.ndarray, order: np.ndarray, prior_mean: np.ndarray, prior_std: np.ndarray,
                levels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``running_stats`` as ``VoiceStats.standardiser`` gives it for a window keyed by its speaker (``levels`` 2:
    the speaker's own statistics pulled towards the session's, those towards the prior; each group one voice, so
    the speaker's windows are the session's) or keyed "" (``levels`` 1: speaker turns off)."""
    mean, std = running_stats(x, groups, order, prior_mean, prior_std)
    for _ in range(levels - 1):
        mean, std = running_stats(x, groups, order, mean, std)
    return mean, std


def standardise_per(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    for g in np.unique(groups):
        m = groups == g
        out[m] = (x[m] - x[m].mean(axis=0)) / (x[m].std(axis=0) + 1e-6)
    return out


def sample_weights(y: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """Every corpus x label the same total weight (mean 1)."""
    sw = np.zeros(len(y))
    for g in np.unique(corpus):
        for lab in np.unique(y[corpus == g]):
            m = (corpus == g) & (y == lab)
            sw[m] = 1.0 / m.sum()
    return sw / sw.mean()


def fit_head(xs: np.ndarray, y: np.ndarray, corpus: np.ndarray, corpus_labels: dict[str, list[int]],
             mask: bool = True, c: float = C) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced softmax regression on standardised ``xs`` -> (coef (8, d), intercept (8,)). ``mask``: each
    window's softmax over the labels its corpus has."""
    from scipy.optimize import minimize

    n, d = xs.shape
    sw = sample_weights(y, corpus)
    allowed = np.ones((n, N), bool)
    if mask:
        for g in np.unique(corpus):
            allowed[corpus == g] = np.isin(np.arange(N), corpus_labels[str(g)])
    onehot = np.eye(N)[y]
    xb = np.hstack([xs, np.ones((n, 1))])

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta.reshape(N, d + 1)
        z = np.where(allowed, xb @ w.T, -np.inf)
        zmax = z.max(axis=1, keepdims=True)
        e = np.exp(z - zmax)
        s = e.sum(axis=1, keepdims=True)
        p = e / s
        nll = -(np.sum(np.where(onehot > 0, z, 0.0), axis=1) - (zmax[:, 0] + np.log(s[:, 0])))
        reg = 0.5 * np.sum(w[:, :d] ** 2)
        g = c * ((p - onehot) * sw[:, None]).T @ xb
        g[:, :d] += w[:, :d]
        return float(reg + c * np.sum(sw * nll)), g.ravel()

    res = minimize(objective, np.zeros(N * (d + 1)), jac=True, method="L-BFGS-B", options={"maxiter": 3000})
    w = res.x.reshape(N, d + 1)
    return w[:, :d], w[:, d]


@dataclass(frozen=True)
class Mlp:
    """A one-hidden-layer head: ``coef @ act(hidden_coef @ x + hidden_intercept) + intercept``."""

    hidden_coef: np.ndarray  # (hidden, d)
    hidden_intercept: np.ndarray  # (hidden,)
    coef: np.ndarray  # (8, hidden)
    intercept: np.ndarray  # (8,)
    activation: str


def fit_mlp(xs: np.ndarray, y: np.ndarray, corpus: np.ndarray, hidden: int, c: float = C,
            activation: str = "tanh", seeds: int = 1, maxiter: int = 3000) -> Mlp:
    """A class-balanced one-hidden-layer head on standardised ``xs`` (loss over all eight labels, the sample
    weights of ``fit_head``, L2 on both layers' weights), full-batch L-BFGS from a fixed-seed start. ``seeds`` > 1:
    that many nets from different starts, averaged in the logits (one net of ``seeds * hidden`` units; the same
    fused output as averaging their log-probabilities, which differ from the logits by a constant per window)."""
    from scipy.optimize import minimize

    from monitor.inference.prosody import ACTIVATIONS

    act = ACTIVATIONS[activation]
    n, d = xs.shape
    sw = sample_weights(y, corpus)
    onehot = np.eye(N)[y]
    shapes = [(hidden, d), (hidden,), (N, hidden), (N,)]
    sizes = [int(np.prod(s)) for s in shapes]

    def unpack(theta: np.ndarray) -> list[np.ndarray]:
        return [a.reshape(s) for a, s in zip(np.split(theta, np.cumsum(sizes)[:-1]), shapes, strict=True)]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w1, b1, w2, b2 = unpack(theta)
        a = xs @ w1.T + b1
        h = act(a)
        z = h @ w2.T + b2
        zmax = z.max(axis=1, keepdims=True)
        e = np.exp(z - zmax)
        s = e.sum(axis=1, keepdims=True)
        nll = zmax[:, 0] + np.log(s[:, 0]) - np.sum(onehot * z, axis=1)
        gz = c * (e / s - onehot) * sw[:, None]
        gh = gz @ w2
        ga = gh * (1.0 - h * h) if activation == "tanh" else gh * (a > 0)
        grads = [ga.T @ xs + w1, ga.sum(axis=0), gz.T @ h + w2, gz.sum(axis=0)]
        loss = c * np.sum(sw * nll) + 0.5 * (np.sum(w1 * w1) + np.sum(w2 * w2))
        return float(loss), np.concatenate([g.ravel() for g in grads])

    nets = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        start = [rng.normal(size=(hidden, d)) / np.sqrt(d), np.zeros(hidden),
                 rng.normal(size=(N, hidden)) * 0.1 / np.sqrt(hidden), np.zeros(N)]
        res = minimize(objective, np.concatenate([a.ravel() for a in start]), jac=True, method="L-BFGS-B",
                       options={"maxiter": maxiter})
        nets.append(unpack(res.x))
    return Mlp(np.concatenate([w[0] for w in nets]), np.concatenate([w[1] for w in nets]),
               np.concatenate([w[2] for w in nets], axis=1) / seeds, np.mean([w[3] for w in nets], axis=0),
               activation)


def head_from(coef: np.ndarray | Mlp, intercept: np.ndarray | None, mean: np.ndarray, std: np.ndarray,
              weight_run: float = 0.75, weight_alone: float = 0.75, temperature_run: float = 1.0,
              temperature_alone: float = 1.0, projection: tuple[np.ndarray, np.ndarray] | None = None) -> ProsodyHead:
    """A ``ProsodyHead`` of a regression's (coef, intercept), or of an ``Mlp`` (``intercept`` None); with an
    ``projection`` of the encoder states (mean, components) a voice head."""
    rows = lambda a: tuple(tuple(map(float, r)) for r in a)  # noqa: E731
    hidden: dict = {}
    if isinstance(coef, Mlp):
        hidden = {"hidden_coef": rows(coef.hidden_coef), "hidden_intercept": tuple(map(float, coef.hidden_intercept)),
                  "activation": coef.activation}
        coef, intercept = coef.coef, coef.intercept
    names = tuple(NAMES)
    if projection is not None:
        names += tuple(f"voice_{i + 1}" for i in range(len(projection[1])))
        hidden |= {"embedding_mean": tuple(map(float, projection[0])), "embedding_projection": rows(projection[1])}
    return ProsodyHead(names, tuple(map(float, mean)), tuple(map(float, std)), rows(coef),
                       tuple(map(float, intercept)), weight_run, weight_alone, temperature_run, temperature_alone,
                       **hidden)


def _align(win: Windows, keys: np.ndarray) -> np.ndarray:
    """Rows of ``win`` for a result file's windows (its clip keys, each clip's windows in order)."""
    where: dict[str, list[int]] = {}
    for i, k in enumerate(win.key):
        where.setdefault(str(k), []).append(i)
    seen: dict[str, int] = {}
    rows = []
    for k in keys:
        k = str(k)
        j = seen.get(k, 0)
        seen[k] = j + 1
        rows.append(where[k][min(j, len(where[k]) - 1)])
    mismatched = sum(1 for k, v in seen.items() if v != len(where[k]))
    if mismatched:
        print(f"prosody: {mismatched} clips have another window count than the CNN's results (nearest used)")
    return np.array(rows)


SETTINGS = ("run", "alone", "session", "run60", "session60")
# (standardised by, masked loss, hidden units: 0 a softmax regression)
HEADS = (("corpus", True, 0), ("corpus", False, 0), ("speaker", True, 0), ("speaker", False, 0))
MARGIN = 0.015  # a hidden layer is shipped only if its CV sum beats the regression's by this much
# the regression standardised per corpus with its loss over all labels (the first prosody head's choice); another
# of HEADS replaces it only if its CV sum beats it by MARGIN too (with the monitor's exact arithmetic, the voice
# head's CV put the per-speaker one 0.001 ahead: a tie, which flipped the choice and cost arousal alone 0.04)
DEFAULT_HEAD = ("corpus", False, 0)


@dataclass(frozen=True)
class MlpOptions:
    activation: str = "tanh"
    seeds: int = 1
    c: float = C


@dataclass
class HeldOut:
    """One result file's held-out windows as the monitor judges them in each setting of ``evaluate_file``."""

    train: np.ndarray  # the windows the file's networks trained on (mask over ``Windows``)
    clip: np.ndarray  # each held-out window's clip (index)
    runs: np.ndarray  # each held-out window's run (its corpus)
    y: np.ndarray  # labels
    x: np.ndarray  # functionals
    pop_mean: np.ndarray  # the training windows' statistics
    pop_std: np.ndarray
    subsets: dict[str, np.ndarray]  # setting -> its windows
    inputs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # setting -> (CNN probabilities, mean, spread)
    features: np.ndarray  # every window's head inputs (``head_inputs``: the projection fitted on ``train``)


def run_prior(surveyed: np.ndarray, files: int, pop_mean: np.ndarray, pop_std: np.ndarray, nf: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """The prior a `score` run gives every window (``ProsodyHead.shrunk`` of the survey's ``pooled_stats``): the
    surveyed windows' statistics of the functionals (the first ``nf`` inputs) pulled towards the training
    windows' by ``BaselineOptions().prior_files`` of the ``files`` surveyed; the training windows' for the rest."""
    mean, std = np.array(pop_mean, dtype=np.float64), np.array(pop_std, dtype=np.float64)
    mean[:nf], std[:nf] = shrink(surveyed[:, :nf].mean(axis=0), surveyed[:, :nf].var(axis=0), files,
                                 BaselineOptions().prior_files, FeatureStats(tuple(pop_mean[:nf]), tuple(pop_std[:nf])))
    return mean, std


def run_voice_priors(x: np.ndarray, clip: np.ndarray, vector: np.ndarray, surveyed: np.ndarray,
                     run_mean: np.ndarray, run_std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each window's prior in a `score` run with the run's voices (``monitor.inference.run_voices``, its own
    arithmetic): the surveyed clips (``surveyed``, a mask over the windows) grouped by voice, and each window's
    nearest group to its clip's vectors so far (itself included) pulled towards the run's (``run_mean``,
    ``run_std``: the head inputs' statistics the run gives without the voices)."""
    from monitor.inference.baseline import Moments
    from monitor.inference.run_voices import RunVoices

    files = []
    for j in np.unique(clip[surveyed]):
        w = clip == j
        v = vector[w].sum(axis=0)
        files.append(Moments(int(w.sum()), tuple(x[w].sum(axis=0)), tuple((x[w] ** 2).sum(axis=0)),
                             tuple(v) if np.any(v) else ()))
    voices = RunVoices.from_survey(files)
    prior_m, prior_s = np.tile(run_mean, (len(x), 1)), np.tile(run_std, (len(x), 1))
    if voices is None:
        return prior_m, prior_s
    run = FeatureStats(tuple(run_mean), tuple(run_std))
    so_far: dict[int, np.ndarray] = {}
    for i in range(len(x)):
        if np.any(vector[i]):
            so_far[clip[i]] = so_far[clip[i]] + vector[i] if clip[i] in so_far else vector[i].copy()
        prior = voices.prior(so_far.get(clip[i]), run)
        prior_m[i], prior_s[i] = prior.mean, prior.std
    return prior_m, prior_s


def held_out(win: Windows, path: Path, temperature: float, voice_dims: int = 0,
             run_voices: bool = True) -> HeldOut:
    """The held-out windows of a result file (``cv_*.npz``, ``loco_*.npz``) and, per setting, the CNN's
    probabilities and the mean and spread each window's head inputs are standardised by (``evaluate_file``).
    ``voice_dims``: the voice head's inputs (``head_inputs``); a run's survey gives the prior of the functionals
    only, the states' take the training windows'; with ``run_voices`` (and ``win.vector``) a run's clips are
    also grouped by voice and each window's prior is its group's (``run_voice_priors``), as `score` does with
    speaker turns on."""
    with np.load(path) as z:
        keys = z["keys"]
        p_file = with_temperature(z["probs_file"].astype(np.float64), temperature)
        p_live = with_temperature(z["probs_live"].astype(np.float64), temperature)
    rows = _align(win, keys)
    train = ~np.isin(win.key, list(set(map(str, keys))))
    features, _ = head_inputs(win, train, voice_dims)
    runs = np.array([str(k).split(":", 1)[0] for k in keys])
    _, clip = np.unique(keys, return_inverse=True)
    y_win, spk, x = win.label[rows], win.speaker[rows], features[rows]
    pop_mean, pop_std = features[train].mean(axis=0), features[train].std(axis=0)
    nf = win.x.shape[1]  # the functionals (a run's survey reads them)
    rng = np.random.default_rng(0)
    rank = rng.permutation(clip.max() + 1)  # a live session hears its clips in a random order
    heard_at = np.empty(len(clip), dtype=int)  # each window's place in its session
    heard_at[np.lexsort((np.arange(len(clip)), rank[clip]))] = np.arange(len(clip))
    subsets = {"run": np.arange(len(rows)), "alone": np.arange(len(rows)), "session": np.arange(len(rows)),
               "run60": np.flatnonzero(skewed_subset(y_win, clip, runs, 0.6)),
               "session60": np.flatnonzero(skewed_subset(y_win, clip, spk, 0.6))}
    inputs = {}  # setting -> (CNN probabilities, mean, spread) of its windows
    # with speaker turns (the voice head) the monitor keys each window by its speaker label: VoiceStats then pulls
    # the speaker's statistics towards the session's (here the same windows), those towards the prior
    levels = 2 if voice_dims else 1
    for setting, idx in subsets.items():
        c, r_, xi = clip[idx], runs[idx], x[idx]
        if setting.startswith("session"):
            mean, std = voice_stats(xi, spk[idx], np.argsort(heard_at[idx], kind="stable"), pop_mean, pop_std,
                                    levels)
            inputs[setting] = (p_live[idx], mean, std)
        elif setting == "alone":
            mean, std = voice_stats(xi, c, np.arange(len(idx)), pop_mean, pop_std, levels)
            inputs[setting] = (p_file[idx].astype(np.float32), mean, std)
        else:
            prior_m, prior_s = np.zeros_like(xi), np.zeros_like(xi)
            for r in np.unique(r_):  # each run standardised by a survey of its files (at most 100)
                m = np.flatnonzero(r_ == r)
                ids, inv = np.unique(c[m], return_inverse=True)
                chosen = np.isin(inv, _survey_rows(len(ids), BaselineOptions().max_files))
                prior_m[m], prior_s[m] = run_prior(xi[m][chosen], len(np.unique(inv[chosen])), pop_mean, pop_std,
                                                   nf)
                if run_voices and voice_dims and win.vector is not None:  # the run's voices, as `score` finds them
                    prior_m[m], prior_s[m] = run_voice_priors(xi[m], c[m], win.vector[rows][idx][m], chosen,
                                                              prior_m[m[0]], prior_s[m[0]])
            mean, std = voice_stats(xi, c, np.arange(len(idx)), prior_m, prior_s, levels)
            inputs[setting] = (with_run_baseline(p_file[idx], c, r_), mean, std)
    return HeldOut(train, clip, runs, y_win, x, pop_mean, pop_std, subsets, inputs, features)


def evaluate_file(win: Windows, path: Path, temperature: float, heads: tuple[tuple[str, bool, int], ...] = HEADS,
                  reg: float = C, mlp: MlpOptions = MlpOptions(), voice_dims: int = 0, run_voices: bool = True
                  ) -> dict:
    """Scores of one result file's held-out windows, as the monitor judges them, for every setting, head and
    weight: ``{setting: {head: {weight: ({corpus: corpus_scores}, window probabilities)}}}``, and each
    setting's windows' labels under ``("y", setting)``. Settings (each window standardised by ``VoiceStats``'s
    arithmetic, ``voice_stats``: with the voice head, speaker turns on, two levels):

    - run: each clip a file of a `score` run (each held-out corpus one run): the CNN with the run's baseline,
      the file's voice over the run's statistics (a survey of at most 100 files);
    - alone: each clip a file judged alone (one file, ``--baseline off``): over the training windows';
    - session: each speaker's clips one live session, heard in a random order (the CNN normalised as heard):
      over the training windows';
    - run60 / session60: the same in runs / sessions in which neutral (TurEV: calm) is 60 % of the clips.

    ``voice_dims``: the voice head's (``head_inputs``); ``run_voices``: runs group their clips by voice
    (``held_out``)."""
    h = held_out(win, path, temperature, voice_dims, run_voices)
    train, clip, runs, y_win, x, subsets, inputs = h.train, h.clip, h.runs, h.y, h.x, h.subsets, h.inputs
    pop_mean, pop_std = h.pop_mean, h.pop_std
    out: dict = {s: {} for s in subsets}
    for s_name, idx in subsets.items():
        out[("y", s_name)] = y_win[idx]
    for by, mask, hidden in heads:
        groups = win.corpus[train] if by == "corpus" else win.speaker[train]
        head = head_from(*_fit(standardise_per(h.features[train], groups), win.label[train], win.corpus[train],
                               win.corpus_labels, (by, mask, hidden), reg, mlp), pop_mean, pop_std)
        for setting, idx in subsets.items():
            cnn, mean, std = inputs[setting]
            lp = head.log_probs(x[idx], mean, std)
            c, r_, yi = clip[idx], runs[idx], y_win[idx]
            per_w = {}
            for w in WEIGHTS:
                p = fuse(cnn, lp, w)
                per_c = {}
                for r in np.unique(r_):
                    m = r_ == r
                    ids, pooled = pool(p[m], c[m])
                    first = np.array([np.flatnonzero(c[m] == i)[0] for i in ids])
                    per_c[str(r)] = corpus_scores(pooled, yi[m][first], win.corpus_labels[str(r)])
                per_w[w] = (per_c, p)
            out[setting][(by, mask, hidden)] = per_w
    return out


def _fit(xs: np.ndarray, y: np.ndarray, corpus: np.ndarray, corpus_labels: dict[str, list[int]],
         head: tuple[str, bool, int], reg: float, mlp: MlpOptions) -> tuple[np.ndarray | Mlp, np.ndarray | None]:
    if head[2]:
        return fit_mlp(xs, y, corpus, head[2], mlp.c, mlp.activation, mlp.seeds), None
    return fit_head(xs, y, corpus, corpus_labels, mask=head[1], c=reg)


def _mean(scores: list[tuple[str, dict]], metric: str, corpus: str | None = None) -> float:
    return float(np.mean([s[metric] for c, s in scores if corpus is None or c == corpus]))


def parser() -> argparse.ArgumentParser:
    """The command line of ``main`` (what the monitor's messages tell to run: ``monitor.inference.prosody``
    ``RETRAIN_PROSODY``, ``RETRAIN_VOICE``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--results", type=Path, default=Path("models/results/cnn2d-spknorm"))
    ap.add_argument("--model-dir", type=Path, default=Path("models"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--c", type=float, default=C, help=f"inverse L2 strength of the regression (default {C})")
    ap.add_argument("--hidden", default=HIDDEN, help="also measure one-hidden-layer heads of these sizes (e.g. "
                    "16,32; '' none; standardised per corpus, loss over all labels); one is shipped only if its CV "
                    f"sum beats the regression's by {MARGIN}")
    ap.add_argument("--activation", default="tanh", choices=("tanh", "relu"))
    ap.add_argument("--seeds", type=int, default=1, help="hidden-layer nets from that many starts, averaged")
    ap.add_argument("--hidden-c", type=float, default=HIDDEN_C, help="inverse L2 strength of the hidden-layer "
                    f"heads (default {HIDDEN_C})")
    ap.add_argument("--run-voices", choices=("on", "off"), default="on", help="with --voice: `score` runs group "
                    "their files by voice (monitor.inference.run_voices, [speakers] run_voices), measured so")
    ap.add_argument("--voice", type=int, default=0, metavar="K", help="the voice head instead: the functionals and "
                    "the first K principal components of the speaker encoder's states for the window "
                    "(models/emotion.voice.json, "
                    "models/VOICE.md; the monitor fuses it when speaker turns are on)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    k = a.voice
    name = "voice" if k else "prosody"  # what it writes: emotion.<name>.json, results/<name>.json
    mlp = MlpOptions(a.activation, a.seeds, a.hidden_c)
    heads = HEADS + tuple(("corpus", False, int(h)) for h in a.hidden.split(",") if h.strip())
    meta = json.loads((a.model_dir / "emotion.json").read_text())
    temperature = float(meta["temperature"])
    corpora = load_corpora(a.data, KNOWN_CORPORA)
    win = corpus_windows(corpora, jobs=a.jobs)
    if k:
        from training.voice_embeddings import corpus_readings

        win.embedding, speaker_embedding = corpus_readings(corpora, len(win.x), jobs=a.jobs)
        win.vector = speaker_vectors(speaker_embedding)
    run_voices = bool(k) and a.run_voices == "on"
    print(f"prosody: {len(win.x)} windows of {len(corpora)} corpora" + (f", voice head (K = {k})" if k else ""))
    hk = {h: f"{h[0]}/{'masked' if h[1] else 'all labels'}" + (f"/{h[2]} {mlp.activation}" if h[2] else "")
          for h in heads}  # printable head names
    cv: dict = {s: {h: {w: [] for w in WEIGHTS} for h in heads} for s in SETTINGS}
    cv_p: dict = {s: {h: {w: [] for w in WEIGHTS} for h in heads} for s in SETTINGS}
    cv_y: dict = {s: [] for s in SETTINGS}
    for fold in sorted(a.results.glob("cv_*.npz")):
        res = evaluate_file(win, fold, temperature, heads, a.c, mlp, k, run_voices)
        for s in SETTINGS:
            cv_y[s].append(res[("y", s)])
            for h in heads:
                for w in WEIGHTS:
                    cv[s][h][w] += list(res[s][h][w][0].items())
                    cv_p[s][h][w].append(res[s][h][w][1])
        print(f"  {fold.name} done")
    loco: dict = {s: {h: {w: {} for w in WEIGHTS} for h in heads} for s in SETTINGS}
    for c in KNOWN_CORPORA:
        res = evaluate_file(win, a.results / f"loco_{c}.npz", temperature, heads, a.c, mlp, k, run_voices)
        for s in SETTINGS:
            for h in heads:
                for w in WEIGHTS:
                    loco[s][h][w][c] = res[s][h][w][0][c]
        print(f"  loco {c} done")
    # the head by the sum of the three main settings' best CV; the weight of each prior within it: the run's on
    # "run", the training windows' on the mean of "alone" and "session"
    best = {h: sum(max(_mean(cv[s][h][w], "uar8") for w in WEIGHTS) for s in ("run", "alone", "session"))
            for h in HEADS}
    head_choice = max(HEADS, key=lambda h: best[h])
    if best[head_choice] < best[DEFAULT_HEAD] + MARGIN:  # a near tie keeps the head the first one chose
        head_choice = DEFAULT_HEAD

    def weights(h: tuple) -> tuple[float, float, float]:
        """The weight of each prior on the CV, and the CV sum (run + alone + session, 8-way) at them."""
        w_run = max(WEIGHTS, key=lambda w: _mean(cv["run"][h][w], "uar8"))
        w_alone = max(WEIGHTS, key=lambda w: _mean(cv["alone"][h][w], "uar8") + _mean(cv["session"][h][w], "uar8"))
        return w_run, w_alone, (_mean(cv["run"][h][w_run], "uar8") + _mean(cv["alone"][h][w_alone], "uar8")
                                + _mean(cv["session"][h][w_alone], "uar8"))

    for h in heads:
        w_r, w_a, total = weights(h)
        print(f"prosody: CV {hk[h]}: run {_mean(cv['run'][h][w_r], 'uar8'):.3f} (w {w_r}), alone "
              f"{_mean(cv['alone'][h][w_a], 'uar8'):.3f}, session {_mean(cv['session'][h][w_a], 'uar8'):.3f} "
              f"(w {w_a}); sum {total:.3f}")
    deep = [h for h in heads if h[2]]
    if deep:  # a hidden layer only if it beats the regression by MARGIN
        h = max(deep, key=lambda h: weights(h)[2])
        if weights(h)[2] >= weights(head_choice)[2] + MARGIN:
            head_choice = h
    w_run, w_alone, _ = weights(head_choice)
    chosen = {"run": w_run, "run60": w_run, "alone": w_alone, "session": w_alone, "session60": w_alone}
    calibration = {}
    for prior, settings in (("run", ("run",)), ("alone", ("alone", "session"))):
        y = np.concatenate([np.concatenate(cv_y[s]) for s in settings])
        p_cnn = np.concatenate([np.concatenate(cv_p[s][head_choice][1.0]) for s in settings])
        p = np.concatenate([np.concatenate(cv_p[s][head_choice][chosen[prior]]) for s in settings])
        t = fit_temperature(p, y)
        calibration[prior] = {"ece_cnn": ece(p_cnn, y), "ece_fused": ece(p, y), "temperature": t,
                              "ece_fused_scaled": ece(with_temperature(p, t), y)}
    table = {s: {hk[h]: {str(w): {"cv_uar8": _mean(cv[s][h][w], "uar8"),
                                  "cv_arousal": _mean(cv[s][h][w], "arousal_uar"),
                                  "cv_per_corpus": {c: _mean(cv[s][h][w], "uar8", c) for c in KNOWN_CORPORA
                                                    if any(k == c for k, _ in cv[s][h][w])},
                                  "loco": {c: {k: loco[s][h][w][c][k] for k in ("uar8", "uar", "arousal_uar")}
                                           for c in KNOWN_CORPORA}}
                         for w in WEIGHTS} for h in heads} for s in SETTINGS}
    # the shipped head: every window of every corpus
    by, mask, hidden = head_choice
    x, projection = head_inputs(win, np.ones(len(win.x), bool), k)
    xs = standardise_per(x, win.corpus if by == "corpus" else win.speaker)
    coef, icpt = _fit(xs, win.label, win.corpus, win.corpus_labels, head_choice, a.c, mlp)
    head = head_from(coef, icpt, x.mean(axis=0), x.std(axis=0), chosen["run"], chosen["alone"],
                     calibration["run"]["temperature"], calibration["alone"]["temperature"], projection)
    command = ("python -m training.prosody --data ../shared/data" + (f" --voice {k}" if k else "")
               + (f" --hidden {a.hidden} --activation {mlp.activation} --seeds {mlp.seeds} --hidden-c {mlp.c}"
                  if hidden else (' --hidden ""' if k and not a.hidden.strip() else ""))
               + (" --run-voices off" if k and not run_voices else ""))
    head.save(a.model_dir / f"emotion.{name}.json",
              {"emotion_sha256": meta["tflite_sha256"], "trained_on": list(KNOWN_CORPORA),
               "windows": int(len(win.x)), "c": a.c, "masked_loss": mask,
               "standardised_by": by, "command": command, **({"run_voices": run_voices} if k else {}),
               **({"hidden": hidden, "seeds": mlp.seeds, "hidden_c": mlp.c} if hidden else {})})
    (a.model_dir / "results").mkdir(exist_ok=True)
    summary = {"chosen": chosen, "head": hk[head_choice], "masked_loss": mask, "standardised_by": by,
               **({"run_voices": run_voices} if k else {}),
               "calibration": calibration, "table": table}
    (a.model_dir / "results" / f"{name}.json").write_text(json.dumps(summary, indent=1))
    from training.prosody_md import write_markdown

    md = a.model_dir / f"{name.upper()}.md"
    write_markdown(md, chosen, hk[head_choice], calibration, table, len(win.x), k, command, run_voices)
    print(f"prosody: weights chosen on the CV: run {chosen['run']}, alone {chosen['alone']}; wrote "
          f"{a.model_dir / f'emotion.{name}.json'} and {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
