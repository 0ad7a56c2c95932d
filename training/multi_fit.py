"""Training on many corpora: a time-convolution network, a loss masked to each corpus's labels, balanced sampling.

The network reads the monitor's log-mel window (frames x mels) as a sequence of mel vectors: optional per-window
normalisation (each mel band's mean over the window subtracted: the microphone's and the room's colouring and
much of the speaker's timbre are constant over a window, the way cepstral mean normalisation removes them), three
1-D convolutions over time (stride 2, 2, 1), mean and standard deviation over time (statistics pooling, as speaker
and paralinguistic x-vector networks do), a hidden layer and the logits. About 6 M multiply-adds per window, a
third of the RAVDESS-only 2-D CNN, which is what lets every leave-one-corpus-out run train on 2 CPU cores.

Partial label sets: a corpus without "calm" cannot say that a clip is not calm. The softmax of each example is
taken over its corpus's labels only (the other logits are masked out of the loss), so a corpus teaches how its
own labels differ from each other and never pushes an absent label down. Label smoothing spreads over the same
labels; mixup pairs examples of the same corpus only.

Balanced sampling: each epoch draws a fixed number of clips with replacement, weighted so that every training
corpus weighs the same, every label the same within its corpus, and every speaker the same within a corpus's
label; each drawn clip contributes one random window of one random enabled version (recording or augmentation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from monitor.inference.normalise import NormParams, band_profiles, shift
from monitor.labels import LABELS
from training.augment import SpecAugmentOptions, spec_augment
from training.corpus_features import CorpusWindows

N = len(LABELS)


@dataclass(frozen=True)
class NetOptions:
    arch: str = "tcn"  # "tcn": the time-convolution network here; "cnn2d": training.model's 2-D CNN
    channels: tuple[int, int, int] = (96, 128, 128)
    hidden: int = 96
    window_norm: bool = True  # subtract each mel band's mean over the window
    dropout: float = 0.3
    l2: float = 1e-4


@dataclass(frozen=True)
class FitOptions:
    epochs: int = 24
    clips_per_epoch: int = 6000
    batch_size: int = 64
    learning_rate: float = 2e-3
    lr_floor: float = 0.05
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.2
    mixup_prob: float = 0.3
    versions: tuple[int, ...] = (0, 1, 2, 3, 4)  # 0 = recording; 1-4 = training.augment.VERSION_KINDS
    spec: SpecAugmentOptions = field(default_factory=SpecAugmentOptions)
    net: NetOptions = field(default_factory=NetOptions)
    seed: int = 1234
    # Speaker normalisation (monitor.inference.normalise): each example is shifted by w * (its speaker's band
    # profile - the population's), w drawn from these weights; () = off. Prior windows k of the runtime's shrinkage.
    speaker_norm: tuple[float, ...] = ()
    norm_prior_windows: float = 4.0


def build_net(input_shape: tuple[int, int], opts: NetOptions, seed: int = 0):
    """Keras model: (frames, mels, 1) features in [0, 1] -> (8,) logits."""
    import keras
    from keras import layers, ops

    if opts.arch == "cnn2d":
        from training.model import build_model

        return build_model(input_shape, N, seed=seed, softmax=False)

    reg = keras.regularizers.l2(opts.l2) if opts.l2 else None
    frames, mels = input_shape
    inp = keras.Input(shape=(frames, mels, 1), name="features")
    x = layers.Reshape((frames, mels), name="sequence")(inp)
    if opts.window_norm:
        x = layers.Lambda(lambda t: t - ops.mean(t, axis=1, keepdims=True), name="window_norm")(x)
    for i, (ch, k, s) in enumerate(zip(opts.channels, (5, 3, 3), (2, 2, 1), strict=True)):
        x = layers.Conv1D(ch, k, strides=s, padding="same", use_bias=False, kernel_regularizer=reg,
                          kernel_initializer=keras.initializers.HeNormal(seed=seed + i), name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
    mean = layers.GlobalAveragePooling1D(name="mean_pool")(x)
    std = layers.Lambda(lambda t: ops.sqrt(ops.mean(ops.square(t - ops.mean(t, axis=1, keepdims=True)), axis=1)
                                           + 1e-4), name="std_pool")(x)
    x = layers.Concatenate(name="stats")([mean, std])
    x = layers.Dropout(opts.dropout, seed=seed, name="dropout")(x)
    x = layers.Dense(opts.hidden, activation="relu", kernel_regularizer=reg,
                     kernel_initializer=keras.initializers.HeNormal(seed=seed + 10), name="hidden")(x)
    logits = layers.Dense(N, kernel_regularizer=reg, kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                          name="logits")(x)
    return keras.Model(inp, logits, name="emotion_tcn")


def with_softmax(logits_model):
    """The exported form: probabilities over the eight labels (the runtime's contract)."""
    import keras

    out = keras.layers.Softmax(name="probabilities")(logits_model.output)
    return keras.Model(logits_model.input, out, name="emotion_tcn_probs")


def masked_loss(y_true, logits):
    """Cross-entropy over the example's corpus labels. y_true = [target (8) | label mask (8)]."""
    from keras import ops

    target, mask = y_true[:, :N], y_true[:, N:]
    z = logits + (mask - 1.0) * 1e4
    logp = z - ops.logsumexp(z, axis=1, keepdims=True)
    return -ops.sum(target * logp, axis=1)


def clip_weights(cw: CorpusWindows, clips: np.ndarray) -> np.ndarray:
    """Sampling weight of each clip in ``clips``: corpora, labels within a corpus, speakers within a label equal."""
    corpus, label, speaker = cw.corpus[clips], cw.label[clips], cw.speaker[clips]
    w = np.zeros(len(clips))
    corpora = np.unique(corpus)
    for c in corpora:
        in_c = corpus == c
        labels = np.unique(label[in_c])
        for lab in labels:
            in_cl = in_c & (label == lab)
            spk = np.unique(speaker[in_cl])
            for s in spk:
                m = in_cl & (speaker == s)
                w[m] = 1.0 / (len(corpora) * len(labels) * len(spk) * m.sum())
    return w / w.sum()


def corpus_masks(cw: CorpusWindows) -> np.ndarray:
    """(corpora, 8) 1 where the corpus has the label."""
    m = np.zeros((len(cw.corpora), N), dtype=np.float32)
    m[cw.corpus, cw.label] = 1.0
    return m


class WindowIndex:
    """Rows of the windows of (clip, version), for drawing one window of a clip version quickly."""

    def __init__(self, cw: CorpusWindows) -> None:
        self.n_versions = int(cw.version.max()) + 1
        key = cw.clip.astype(np.int64) * self.n_versions + cw.version
        self.order = np.argsort(key, kind="stable")
        sorted_key = key[self.order]
        n_keys = (int(cw.clip.max()) + 1) * self.n_versions
        self.start = np.searchsorted(sorted_key, np.arange(n_keys))
        self.stop = np.searchsorted(sorted_key, np.arange(n_keys), side="right")

    def draw(self, clips: np.ndarray, versions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        k = clips.astype(np.int64) * self.n_versions + versions
        lo, hi = self.start[k], self.stop[k]
        missing = hi <= lo  # a version without windows cannot happen (fallback to the whole clip); be safe
        k0 = clips.astype(np.int64) * self.n_versions
        lo = np.where(missing, self.start[k0], lo)
        hi = np.where(missing, self.stop[k0], hi)
        return self.order[lo + (rng.random(len(k)) * (hi - lo)).astype(np.int64)]


def window_profiles(x: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(n, mels) band profile of each window (``monitor.inference.normalise.band_profiles``); NaN if silent."""
    return np.concatenate([band_profiles(x[i : i + chunk].astype(np.float32)) for i in range(0, len(x), chunk)]) \
        if len(x) else np.zeros((0, x.shape[2]), dtype=np.float32)


def speaker_profiles(cw: CorpusWindows, profiles: np.ndarray) -> np.ndarray:
    """(speakers, mels) mean band profile of each speaker's recordings (version 0 windows)."""
    rows = np.flatnonzero((cw.version == 0) & ~np.isnan(profiles[:, 0]))
    spk = cw.speaker[cw.clip[rows]]
    total = np.zeros((len(cw.speakers), profiles.shape[1]))
    np.add.at(total, spk, profiles[rows])
    count = np.bincount(spk, minlength=len(cw.speakers))
    return (total / np.maximum(count, 1)[:, None]).astype(np.float32)


def norm_params(cw: CorpusWindows, train_clips: np.ndarray, spk_prof: np.ndarray, opts: FitOptions) -> NormParams:
    """The population's band profile: mean over the training corpora of the mean over their speakers."""
    spk = np.unique(cw.speaker[train_clips])
    corpus_of = np.zeros(len(cw.speakers), dtype=int)
    corpus_of[cw.speaker] = cw.corpus
    means = [spk_prof[spk[corpus_of[spk] == c]].mean(axis=0) for c in np.unique(corpus_of[spk])]
    return NormParams(np.mean(means, axis=0).astype(np.float32), opts.norm_prior_windows)


def _lr(epoch: int, opts: FitOptions) -> float:
    t = (epoch - 1) / max(opts.epochs - 1, 1)
    return float(opts.learning_rate * (opts.lr_floor + (1 - opts.lr_floor) * 0.5 * (1 + np.cos(np.pi * t))))


def _mixup_within(x, y, groups, opts: FitOptions, rng):
    n = len(x)
    lam = rng.beta(opts.mixup_alpha, opts.mixup_alpha, size=n).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)
    lam[rng.random(n) >= opts.mixup_prob] = 1.0
    partner = np.arange(n)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        partner[idx] = idx[rng.permutation(len(idx))]
    xm = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[partner]
    ym = lam[:, None] * y + (1 - lam[:, None]) * y[partner]
    return xm.astype(np.float32), ym.astype(np.float32)


def fit(cw: CorpusWindows, train_clips: np.ndarray, opts: FitOptions, log=print, tag: str = ""):
    """Train a fresh network on ``train_clips`` (indices of clips); returns the logits model."""
    import keras

    from training.model import set_seeds

    set_seeds(opts.seed)
    model = build_net(cw.x.shape[1:3], opts.net, seed=opts.seed)
    model.compile(optimizer=keras.optimizers.Adam(opts.learning_rate), loss=masked_loss)
    rng = np.random.default_rng(opts.seed)
    weights = clip_weights(cw, train_clips)
    masks = corpus_masks(cw)
    index = WindowIndex(cw)
    versions = np.array(opts.versions)
    eps = opts.label_smoothing
    if opts.speaker_norm:
        spk_prof = speaker_profiles(cw, window_profiles(cw.x))
        params = norm_params(cw, train_clips, spk_prof, opts)
        norm_w = np.array(opts.speaker_norm, dtype=np.float32)
    t0 = time.perf_counter()
    for epoch in range(1, opts.epochs + 1):
        model.optimizer.learning_rate.assign(_lr(epoch, opts))
        clips = train_clips[rng.choice(len(train_clips), size=opts.clips_per_epoch, p=weights)]
        rows = index.draw(clips, versions[rng.integers(0, len(versions), size=len(clips))], rng)
        m = masks[cw.corpus[clips]]
        y = np.eye(N, dtype=np.float32)[cw.label[clips]]
        y = (1 - eps) * y + eps * m / m.sum(axis=1, keepdims=True)
        x = cw.x[rows].astype(np.float32)
        if opts.speaker_norm:
            w = norm_w[rng.integers(0, len(norm_w), size=len(clips))]
            x = shift(x, w[:, None] * (spk_prof[cw.speaker[clips]] - params.global_mean))
        x = spec_augment(x, opts.spec, rng)
        x, y = _mixup_within(x, y, cw.corpus[clips], opts, rng)
        h = model.fit(x[..., None], np.concatenate([y, m], axis=1), batch_size=opts.batch_size, epochs=1,
                      shuffle=False, verbose=0)
        if epoch == 1 or epoch % 6 == 0 or epoch == opts.epochs:
            el = time.perf_counter() - t0
            log(f"{tag}epoch {epoch}/{opts.epochs} loss {h.history['loss'][-1]:.3f} ({el:.0f}s, "
                f"{el / epoch:.1f}s/epoch)")
    return model


def predict_probs(model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Softmax probabilities of a logits model over (n, frames, mels) features."""
    out = []
    for i in range(0, len(x), batch_size):
        z = np.asarray(model(x[i : i + batch_size].astype(np.float32)[..., None], training=False), dtype=np.float64)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        out.append(p / p.sum(axis=1, keepdims=True))
    return np.concatenate(out) if out else np.zeros((0, N))


def normalised_inputs(cw: CorpusWindows, rows: np.ndarray, params: NormParams, live: bool, by: str = "speaker",
                      seed: int = 0) -> np.ndarray:
    """Held-out windows ``rows`` normalised as the monitor would, per speaker (``by`` "speaker") or per clip (``by``
    "clip": each clip a file of its own, as `score` treats a folder of clips; "version": each version of each clip a
    file of its own): with all of the group's windows
    (``live`` False: a file or a ``--speaker`` group known whole), or as they are heard (``live`` True: a speaker's
    clips in a random order, a clip's windows in order; each window shifted by the profile of the windows heard so
    far, itself included)."""
    prof = window_profiles(cw.x[rows])
    clip = cw.clip[rows]
    if by == "speaker":
        group = cw.speaker[clip]
    elif by == "clip":
        group = clip
    else:  # "version": each version of each clip a file of its own (the degraded copies of held-out clips)
        group = clip * 16 + cw.version[rows]
    offset = np.zeros_like(prof)
    rng = np.random.default_rng(seed)
    for s in np.unique(group):
        idx = np.flatnonzero(group == s)
        ok = idx[~np.isnan(prof[idx, 0])]
        if live:
            clips = np.unique(clip[ok])
            rank = dict(zip(clips[rng.permutation(len(clips))].tolist(), range(len(clips)), strict=True))
            ok = ok[np.argsort([rank[c] for c in clip[ok]], kind="stable")]
            n = np.arange(1, len(ok) + 1)
            mean = np.cumsum(prof[ok], axis=0) / n[:, None]
            w = n / (n + params.prior_windows)
            offset[ok] = w[:, None] * (mean - params.global_mean)
        elif len(ok):
            offset[idx] = params.weight(len(ok)) * (prof[ok].mean(axis=0) - params.global_mean)
    return shift(cw.x[rows].astype(np.float32), offset)
