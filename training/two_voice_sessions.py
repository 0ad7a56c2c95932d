"""The prosody and voice heads in live sessions of two voices (a one-off check, not part of the report).

``training.prosody`` measures live sessions of one speaker. In a room of two, the monitor keys each window by its
speaker label and standardises it by that speaker's running statistics pulled towards the session's, themselves
pulled towards the training windows' (``monitor.inference.prosody.VoiceStats``): a new voice's first windows are
read against the other voice's. This script pairs the held-out speakers of each corpus at random into sessions,
hears each session's clips in a random order, keys every window by its true speaker (diarization assumed right),
and scores the shipped recipes of both heads (the prosody head: 16 tanh units; the voice head: 64 components, a
regression on the encoder's states; each fused at its shipped weight for a session, ``weight_alone`` of
models/emotion.{prosody,voice}.json) against the one-speaker sessions of the report. ``--embedding-prior``: also
the variant in which a speaker's encoder-state inputs are pulled towards the training windows' rather than the
session's.

    python -m training.two_voice_sessions --data ../shared/data     # a few minutes with the caches of --voice
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from monitor.inference.prosody import FeatureStats, VoiceStats, fuse
from training.corpora import KNOWN_CORPORA, load_corpora
from training.multi_metrics import corpus_scores, pool
from training.prosody import (
    HIDDEN_C,
    MlpOptions,
    Windows,
    _align,
    _fit,
    corpus_windows,
    head_from,
    held_out,
    standardise_per,
)
from training.voice_embeddings import corpus_embeddings

HEADS = {"prosody head (16 tanh)": (0, ("corpus", False, 16), HIDDEN_C), "voice head (64, regression)":
         (64, ("corpus", False, 0), 0.1)}
SHIPPED = {"prosody head (16 tanh)": "emotion.prosody.json", "voice head (64, regression)": "emotion.voice.json"}


def weight(name: str, model_dir: Path = Path("models")) -> float:
    """The shipped head's fusion weight for a session (``weight_alone``)."""
    return float(json.loads((model_dir / SHIPPED[name]).read_text())["weight_alone"])


def two_level(x: np.ndarray, speaker: np.ndarray, session: np.ndarray, order: np.ndarray, m0: np.ndarray,
              s0: np.ndarray, voice_from: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each window's mean and spread as the monitor gives them (``VoiceStats.standardiser`` of its speaker within
    its session, prior ``m0`` / ``s0``), heard in ``order``. ``voice_from``: inputs from this index on pull a
    speaker straight towards the prior, not towards the session."""
    prior = FeatureStats(tuple(m0), tuple(s0))
    sessions: dict[str, VoiceStats] = {}
    alone: dict[str, VoiceStats] = {}  # each speaker on its own (the variant)
    mean, std = np.zeros_like(x), np.zeros_like(x)
    for i in order:
        stats = sessions.setdefault(session[i], VoiceStats())
        stats.add(x[i], speaker[i])
        mean[i], std[i] = stats.standardiser(speaker[i], prior)
        if voice_from is not None:
            own = alone.setdefault(speaker[i], VoiceStats())
            own.add(x[i])
            m, s = own.standardiser("", prior)
            mean[i, voice_from:], std[i, voice_from:] = m[voice_from:], s[voice_from:]
    return mean, std


def pairs(speaker: np.ndarray, runs: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each window's session: the speakers of each corpus paired at random (one alone when their number is odd)."""
    rng = np.random.default_rng(seed)
    session = np.empty(len(speaker), dtype=object)
    for c in np.unique(runs):
        voices = sorted(set(speaker[runs == c]))
        for j, i in enumerate(rng.permutation(len(voices))):
            session[(runs == c) & (speaker == voices[i])] = f"{c}/{j // 2}"
    return session


def scores(win: Windows, path: Path, temperature: float, embedding_prior: bool) -> dict[tuple[str, str], list]:
    with np.load(path) as z:
        rows = _align(win, z["keys"])
    out: dict[tuple[str, str], list] = {}
    for name, (dims, head_kind, c) in HEADS.items():
        h = held_out(win, path, temperature, dims)
        head = head_from(*_fit(standardise_per(h.features[h.train], win.corpus[h.train]), win.label[h.train],
                               win.corpus[h.train], win.corpus_labels, head_kind, c, MlpOptions(c=c)),
                         h.pop_mean, h.pop_std)
        speaker = win.speaker[rows]
        session = pairs(speaker, h.runs)
        rank = np.random.default_rng(0).permutation(h.clip.max() + 1)  # clips heard in a random order
        order = np.lexsort((np.arange(len(rows)), rank[h.clip]))
        p_cnn, one_mean, one_std = h.inputs["session"]
        settings = {"one voice": (one_mean, one_std),
                    "two voices": two_level(h.x, speaker, session, order, h.pop_mean, h.pop_std)}
        if embedding_prior and dims:
            settings["two voices, encoder states towards the training windows'"] = two_level(
                h.x, speaker, session, order, h.pop_mean, h.pop_std, win.x.shape[1])
        for setting, (mean, std) in settings.items():
            p = fuse(p_cnn, head.log_probs(h.x, mean, std), weight(name))
            for corpus in np.unique(h.runs):
                m = h.runs == corpus
                ids, pooled = pool(p[m], h.clip[m])
                first = np.array([np.flatnonzero(h.clip[m] == i)[0] for i in ids])
                s = corpus_scores(pooled, h.y[m][first], win.corpus_labels[str(corpus)])
                out.setdefault((name, setting), []).append((s["uar8"], s["arousal_uar"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--results", type=Path, default=Path("models/results/cnn2d-spknorm"))
    ap.add_argument("--embedding-prior", action="store_true")
    a = ap.parse_args(argv)
    temperature = float(json.loads(Path("models/emotion.json").read_text())["temperature"])
    corpora = load_corpora(a.data, KNOWN_CORPORA)
    win = corpus_windows(corpora)
    win.embedding = corpus_embeddings(corpora, len(win.x))
    for kind, files in (("speakers never heard (CV)", sorted(a.results.glob("cv_*.npz"))),
                        ("corpora never heard", [a.results / f"loco_{c}.npz" for c in KNOWN_CORPORA])):
        merged: dict[tuple[str, str], list] = {}
        for path in files:
            for k, v in scores(win, path, temperature, a.embedding_prior).items():
                merged.setdefault(k, []).extend(v)
        for (name, setting), v in merged.items():
            print(f"{kind}, {name}, {setting}: 8-way UAR {np.mean([u for u, _ in v]):.3f}, "
                  f"binary arousal {np.mean([b for _, b in v]):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
