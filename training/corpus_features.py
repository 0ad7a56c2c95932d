"""Windows and features of every clip of every corpus, in five versions, cached per speaker (resumable).

Version 0 is the recording itself; versions 1-4 are the kinds of ``training.augment.VERSION_KINDS`` (other
voices, rooms, noise and babble, telephone/codec/microphone). Each version of a clip is framed by the monitor's
own segmenter and turned into features by ``monitor.dsp.features.log_mel``, exactly as the runtime does. A clip
that yields no window is used whole (centred in one window).

Fold hygiene: a version is derived from its clip only, except babble, which is made from clips of other speakers
of the SAME fold of the same corpus (``training.corpora.speaker_folds`` with 5 folds), so a held-out speaker's
voice never reaches the training side, not even as background. A corpus with one speaker (esd0020) takes its
babble from its own other clips. Held-out clips are always evaluated on version 0.

The cache (one .npz per corpus and speaker, under ``~/.cache/voice-monitor/corpora-<key>``) is written
atomically, so an interrupted run resumes with the speakers not yet done.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.audio.convert import float_to_int16, read_audio
from monitor.dsp.features import FeatureParams
from training.augment import VERSION_KINDS, AugmentOptions, version_clip
from training.corpora import Corpus, Record, speaker_folds
from training.dataset import DEFAULT_CACHE, clip_features, framing_fingerprint, save_npz_atomic

CACHE_VERSION = 1
BABBLE_FOLDS = 5
BABBLE_TALKERS = (3, 5)


@dataclass
class CorpusWindows:
    """All windows. Row i: features ``x[i]`` of version ``version[i]`` of clip ``clip[i]``.

    Per clip j: ``records[j]``, ``label[j]``, ``corpus[j]`` (index into ``corpora``), ``speaker[j]`` (index into
    ``speakers``, names "corpus/speaker")."""

    x: np.ndarray  # (n, frames, mels) float16 in [0, 1]
    clip: np.ndarray  # (n,) int32
    version: np.ndarray  # (n,) int8
    records: list[Record]
    label: np.ndarray  # (clips,) int
    corpus: np.ndarray  # (clips,) int
    speaker: np.ndarray  # (clips,) int
    corpora: list[str]
    speakers: list[str]
    fallbacks: int = 0


def cache_key(params: FeatureParams, seed: int) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "features": params.to_dict(), "kinds": VERSION_KINDS, "seed": seed,
                       "code": framing_fingerprint()}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _seed(seed: int, key: str) -> list[int]:
    return [seed, zlib.crc32(key.encode())]


def _babble_sources(corpus: Corpus, speaker: str, seed: int) -> list[Path]:
    """Clips of the other speakers of ``speaker``'s babble fold (its own clips for a one-speaker corpus)."""
    folds = speaker_folds(corpus, BABBLE_FOLDS)
    fold = next((f for f in folds if speaker in f), [])
    others = {s for s in fold if s != speaker} or {speaker}
    pool = [r.path for r in corpus.records if r.speaker in others]
    rng = np.random.default_rng(_seed(seed, f"babble:{corpus.name}:{speaker}"))
    return [pool[i] for i in rng.permutation(len(pool))[:12]]


def speaker_windows(records: list[Record], babble_paths: list[Path], params: FeatureParams,
                    seed: int) -> dict[str, np.ndarray]:
    babble = [read_audio(p)[0].astype(np.float32) / 32768.0 for p in babble_paths]
    shift = AugmentOptions()
    xs, clips, versions = [], [], []
    fallbacks = 0
    for i, rec in enumerate(records):
        audio, _ = read_audio(rec.path)
        rng = np.random.default_rng(_seed(seed, rec.key))
        for v in range(len(VERSION_KINDS) + 1):
            if v == 0:
                feats, fell = clip_features(audio, params)
            else:
                k = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
                talkers = [babble[j] for j in rng.permutation(len(babble))[:k]]
                aug = version_clip(audio.astype(np.float32) / 32768.0, VERSION_KINDS[v - 1], rng, talkers)
                feats, fell = clip_features(float_to_int16(aug), params, rng, shift)
            fallbacks += int(fell)
            for f in feats:
                xs.append(f.astype(np.float16))
                clips.append(i)
                versions.append(v)
    return {"x": np.stack(xs), "clip": np.array(clips, dtype=np.int32), "version": np.array(versions, dtype=np.int8),
            "keys": np.array([r.key for r in records]), "fallbacks": np.array(fallbacks)}


def _job(args) -> tuple[Path, float]:
    records, babble_paths, params, seed, path = args
    t0 = time.perf_counter()
    save_npz_atomic(path, speaker_windows(records, babble_paths, params, seed))
    return path, time.perf_counter() - t0


def _valid(path: Path, records: list[Record]) -> bool:
    if not path.exists():
        return False
    try:
        with np.load(path) as z:
            return list(z["keys"]) == [r.key for r in records]
    except (OSError, KeyError, ValueError):
        return False


def build_corpus_windows(corpora: list[Corpus], params: FeatureParams, seed: int = 1234,
                         cache_dir: Path | None = None, jobs: int = 1, log=print) -> CorpusWindows:
    cache = Path(cache_dir or DEFAULT_CACHE).expanduser() / f"corpora-{cache_key(params, seed)}"
    cache.mkdir(parents=True, exist_ok=True)
    units = []  # (corpus index, speaker, records, path)
    for ci, c in enumerate(corpora):
        for s in c.speakers:
            recs = [r for r in c.records if r.speaker == s]
            units.append((ci, s, recs, cache / f"{c.name}__{s}.npz"))
    todo = [(recs, _babble_sources(corpora[ci], s, seed), params, seed, path)
            for ci, s, recs, path in units if not _valid(path, recs)]
    if todo:
        # Longest first, so the one-speaker corpus does not start last.
        todo.sort(key=lambda t: -len(t[0]))
        log(f"features: computing {len(todo)} of {len(units)} speakers ({len(VERSION_KINDS) + 1} versions per "
            f"clip) into {cache}")
        t0 = time.perf_counter()
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for done, (path, dt) in enumerate(pool.map(_job, todo), 1):
                    log(f"  [{done}/{len(todo)}] {path.stem} {dt:.0f}s; {time.perf_counter() - t0:.0f}s elapsed")
        else:
            for done, job in enumerate(todo, 1):
                path, dt = _job(job)
                log(f"  [{done}/{len(todo)}] {path.stem} {dt:.0f}s; {time.perf_counter() - t0:.0f}s elapsed")
    xs, clips, versions, records, corpus_idx, speaker_idx = [], [], [], [], [], []
    speakers: list[str] = []
    fallbacks = 0
    for ci, s, recs, path in units:
        with np.load(path) as z:
            xs.append(z["x"])
            clips.append(z["clip"] + len(records))
            versions.append(z["version"])
            fallbacks += int(z["fallbacks"])
        records += recs
        corpus_idx += [ci] * len(recs)
        speaker_idx += [len(speakers)] * len(recs)
        speakers.append(f"{corpora[ci].name}/{s}")
    cw = CorpusWindows(np.concatenate(xs), np.concatenate(clips), np.concatenate(versions), records,
                       np.array([r.label for r in records]), np.array(corpus_idx), np.array(speaker_idx),
                       [c.name for c in corpora], speakers, fallbacks)
    log(f"features: {len(cw.x)} windows of {len(records)} clips ({int(np.sum(cw.version == 0))} from the "
        f"recordings); {fallbacks} clip versions had no speech window and were used whole")
    return cw


def default_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))
