"""The speaker encoder's states (and embedding) for every window ``training.prosody`` reads, for the voice head
(``--voice``) and the run's voices (``monitor.inference.run_voices``: the embedding placed in the speaker space).

The same windows as ``training.prosody.corpus_windows`` (``clip_windows``: the monitor's segmenter over each
clip; a clip without a window whole), each through the monitor's own speaker encoder
(``monitor.speakers.encoder`` ``read``: each unit's mean and spread over time in the GE2E encoder's second and
third LSTM layers, 1024 numbers; the first voice head read the 256-d embedding instead, models/VOICE.md).
Cached per corpus under ``~/.cache/voice-monitor/voice-<code>/`` (the code: the segmenter's, the encoder's and
its weights' and this file's); about 6 minutes for the five corpora on 2 cores.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from monitor.inference.prosody import VOICE_DIMS
from training.corpora import Corpus
from training.dataset import DEFAULT_CACHE, cached_clips, framing_fingerprint, save_npz_atomic
from training.prosody import clip_windows

_ROOT = Path(__file__).resolve().parents[1]
_encoder = None  # one per worker process


def code_key() -> str:
    h = hashlib.sha1(framing_fingerprint().encode())
    for rel in ("monitor/speakers/encoder.py", "models/speaker_encoder.npz", "training/voice_embeddings.py"):
        h.update((_ROOT / rel).read_bytes())
    return h.hexdigest()[:12]


EMBEDDING_DIMS = 256  # the encoder's embedding (what the speaker space projects)


def clip_embeddings(path: str) -> np.ndarray:
    """(windows, VOICE_DIMS + EMBEDDING_DIMS) float32: the encoder's states for each window of a clip, then its
    embedding (zeros for a silent one)."""
    return window_readings(clip_windows(path))


def window_readings(parts: list[np.ndarray]) -> np.ndarray:
    """(windows, VOICE_DIMS + EMBEDDING_DIMS) float32: the encoder's states for each window's audio (int16), then
    its embedding (zeros for a silent one)."""
    global _encoder
    if _encoder is None:
        from monitor.speakers.encoder import SpeakerEncoder

        _encoder = SpeakerEncoder(lda=False)
    out = np.zeros((len(parts), VOICE_DIMS + EMBEDDING_DIMS), np.float32)
    for i, a in enumerate(parts):
        reading = _encoder.read(a)
        if reading is not None:
            out[i, :VOICE_DIMS], out[i, VOICE_DIMS:] = reading[1], reading[0]
    return out


def corpus_readings(corpora: list[Corpus], windows: int, cache: Path | None = None, jobs: int = 2,
                    log=print) -> tuple[np.ndarray, np.ndarray]:
    """(states, embeddings) of ``training.prosody.corpus_windows(corpora)``'s ``windows`` rows, in its order."""
    cache = Path(cache or DEFAULT_CACHE).expanduser() / f"voice-{code_key()}"
    cache.mkdir(parents=True, exist_ok=True)
    states, embeddings = [], []
    for c in corpora:
        path = cache / f"{c.name}.npz"
        want = [r.key for r in c.records]
        z = cached_clips(path, want)
        if z is None:
            log(f"voice: encoder states of the windows of {len(c.records)} clips of {c.name} ...")
            with ProcessPoolExecutor(jobs) as ex:
                e = np.concatenate(list(ex.map(clip_embeddings, [str(r.path) for r in c.records], chunksize=16)))
            z = {"embedding": e[:, :VOICE_DIMS], "speaker_embedding": e[:, VOICE_DIMS:], "clips": np.array(want)}
            save_npz_atomic(path, z)
        states.append(z["embedding"])
        embeddings.append(z["speaker_embedding"])
    e = np.concatenate(states)
    if len(e) != windows:
        raise RuntimeError(f"voice: {len(e)} encoder states for {windows} windows (the segmenter changed since the "
                           "functionals were cached?)")
    return e.astype(np.float64), np.concatenate(embeddings).astype(np.float64)


def corpus_embeddings(corpora: list[Corpus], windows: int, cache: Path | None = None, jobs: int = 2,
                      log=print) -> np.ndarray:
    """The encoder states of ``training.prosody.corpus_windows(corpora)``'s ``windows`` rows, in its order."""
    return corpus_readings(corpora, windows, cache, jobs, log)[0]


def principal_components(e: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), components (k, d)) of the rows of ``e``; signs fixed (each component's largest entry > 0)."""
    mean = e.mean(axis=0)
    _, _, vt = np.linalg.svd(e - mean, full_matrices=False)
    comp = vt[:k]
    comp *= np.sign(comp[np.arange(len(comp)), np.abs(comp).argmax(axis=1)])[:, None]
    return mean, comp
