"""Windows and features for training, framed exactly like the monitor frames speech, with an on-disk cache.

Each clip is read with ``monitor.audio.convert.read_audio`` (any rate/format -> 16 kHz mono int16), cut into
windows by ``monitor.dsp.segmenter.segment_audio`` and turned into features by ``monitor.dsp.features.log_mel``.
A clip that yields no window falls back to the whole clip (centred in one window, as ``log_mel`` does); the
count is reported. Copy 0 of a clip is the recording itself; copies 1..K are augmented versions of the whole
clip (``training.augment``), segmented again. Every copy carries its clip's actor, so fold splits by actor keep
augmented copies on the side of their clip; evaluation uses copy 0 only.

The cache (one .npz per actor) lives outside the data folder, by default in ``~/.cache/voice-monitor``; its key
covers the feature parameters, augmentation settings, number of copies, seed, the source of the framing code
(VAD, segmenter, features, conversion, augmentation) and the file list.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from monitor.audio.convert import float_to_int16, read_audio
from monitor.dsp.features import FeatureParams, log_mel
from monitor.dsp.segmenter import segment_audio
from training.augment import AugmentOptions, augment_clip
from training.manifest import Clip, Manifest

CACHE_VERSION = 1
# The framing and features depend on this code; a change to any of it (e.g. a VAD fix) invalidates the cache.
_FRAMING_SOURCES = ("monitor/dsp/vad.py", "monitor/dsp/segmenter.py", "monitor/dsp/features.py",
                    "monitor/audio/convert.py", "training/augment.py")


def framing_fingerprint() -> str:
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha1()
    for rel in _FRAMING_SOURCES:
        h.update((root / rel).read_bytes())
    return h.hexdigest()[:12]
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voice-monitor"


@dataclass(frozen=True)
class DatasetOptions:
    features: FeatureParams = field(default_factory=FeatureParams)
    copies: int = 3  # augmented copies per clip (besides the original)
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    seed: int = 1234

    def key(self) -> str:
        blob = json.dumps(
            {"v": CACHE_VERSION, "features": self.features.to_dict(), "copies": self.copies,
             "augment": asdict(self.augment), "seed": self.seed, "code": framing_fingerprint()},
            sort_keys=True,
        )
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass
class WindowSet:
    """All windows of a set of clips. Row i: features x[i] of window of clip ``clip[i]`` (copy ``copy[i]``)."""

    x: np.ndarray  # (n, frames, mels) float16 in [0, 1]
    y: np.ndarray  # (n,) label index
    actor: np.ndarray  # (n,)
    clip: np.ndarray  # (n,) index into clip_ids
    copy: np.ndarray  # (n,) 0 = original recording
    clip_ids: list[str]
    fallbacks: int = 0  # clips (any copy) that gave no window and were used whole

    def subset(self, mask: np.ndarray) -> WindowSet:
        return WindowSet(self.x[mask], self.y[mask], self.actor[mask], self.clip[mask], self.copy[mask],
                         self.clip_ids, self.fallbacks)

    def where(self, actors: set[int] | list[int], originals_only: bool = False) -> WindowSet:
        mask = np.isin(self.actor, list(actors))
        if originals_only:
            mask &= self.copy == 0
        return self.subset(mask)


def _place(audio: np.ndarray, start: int, end: int, whole: np.ndarray, n: int, rng: np.random.Generator,
           max_shift: int) -> np.ndarray:
    """Random placement: a short window at a random offset, a full window moved by up to ``max_shift``."""
    if len(audio) < n:
        out = np.zeros(n, dtype=audio.dtype)
        off = int(rng.integers(0, n - len(audio) + 1))
        out[off : off + len(audio)] = audio
        return out
    s = start + int(rng.integers(-max_shift, max_shift + 1))
    s = min(max(s, 0), max(len(whole) - n, 0))
    seg = whole[s : s + n]
    if len(seg) < n:
        seg = np.concatenate([seg, np.zeros(n - len(seg), dtype=whole.dtype)])
    return seg


def clip_features(
    audio: np.ndarray,
    params: FeatureParams,
    rng: np.random.Generator | None = None,
    opts: AugmentOptions | None = None,
) -> tuple[list[np.ndarray], bool]:
    """int16 16 kHz clip -> features of each window the segmenter finds; (features, fell back to whole clip)."""
    windows = segment_audio(audio)
    if not windows:
        return [log_mel(audio, params)], True
    n = params.window_samples
    feats = []
    for w in windows:
        a = w.audio
        if rng is not None and opts is not None and rng.random() < opts.shift_prob:
            a = _place(a, w.start_sample, w.end_sample, audio, n, rng, int(opts.max_shift_s * params.sample_rate))
        feats.append(log_mel(a, params))
    return feats, False


def clip_seed(seed: int, clip: Clip) -> list[int]:
    return [seed, int(clip.clip_id.replace("-", ""))]


def actor_windows(clips: list[Clip], opts: DatasetOptions) -> dict[str, np.ndarray]:
    """Features of all copies of all clips of one actor (arrays for the cache file)."""
    xs, ys, clip_idx, copies = [], [], [], []
    fallbacks = 0
    for i, clip in enumerate(clips):
        audio, _ = read_audio(clip.path)
        rng = np.random.default_rng(clip_seed(opts.seed, clip))
        for k in range(opts.copies + 1):
            if k == 0:
                feats, fell = clip_features(audio, opts.features)
            else:
                aug, _ = augment_clip(audio.astype(np.float32) / 32768.0, opts.augment, rng)
                feats, fell = clip_features(float_to_int16(aug), opts.features, rng, opts.augment)
            fallbacks += int(fell)
            for f in feats:
                xs.append(f.astype(np.float16))
                ys.append(clip.emotion_index)
                clip_idx.append(i)
                copies.append(k)
    return {
        "x": np.stack(xs),
        "y": np.array(ys, dtype=np.int16),
        "clip": np.array(clip_idx, dtype=np.int32),
        "copy": np.array(copies, dtype=np.int16),
        "clip_ids": np.array([c.clip_id for c in clips]),
        "sizes": np.array([c.path.stat().st_size for c in clips], dtype=np.int64),
        "fallbacks": np.array(fallbacks),
    }


def cached_clips(path: Path, want: list[str]) -> dict | None:
    """The arrays of a per-corpus cache file if it holds exactly the clips ``want`` (its ``clips``, in order)."""
    if not path.exists():
        return None
    with np.load(path) as f:
        return {k: f[k] for k in f.files} if list(f["clips"]) == want else None


def save_npz_atomic(path: Path, data: dict, compressed: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file, so an interrupted run never leaves half a cache file."""
    tmp = path.with_suffix(".tmp.npz")
    (np.savez_compressed if compressed else np.savez)(tmp, **data)
    tmp.replace(path)


def _actor_job(args: tuple[list[Clip], DatasetOptions, Path]) -> tuple[Path, float]:
    clips, opts, path = args
    t0 = time.perf_counter()
    save_npz_atomic(path, actor_windows(clips, opts))
    return path, time.perf_counter() - t0


def _valid_cache(path: Path, clips: list[Clip]) -> bool:
    if not path.exists():
        return False
    try:
        with np.load(path) as z:
            return list(z["clip_ids"]) == [c.clip_id for c in clips] and list(z["sizes"]) == [
                c.path.stat().st_size for c in clips
            ]
    except (OSError, KeyError, ValueError):
        return False


def build_windows(manifest: Manifest, opts: DatasetOptions, cache_dir: Path | None = None, jobs: int = 1,
                  log=print) -> WindowSet:
    """Features of every clip and copy in ``manifest``, computed once per actor and cached."""
    cache = Path(cache_dir or DEFAULT_CACHE).expanduser() / f"windows-{opts.key()}"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "options.json").write_text(json.dumps(
        {"features": opts.features.to_dict(), "copies": opts.copies, "augment": asdict(opts.augment),
         "seed": opts.seed}, indent=1))
    by_actor = {a: [c for c in manifest.clips if c.actor == a] for a in manifest.actors}
    paths = {a: cache / f"actor_{a:02d}.npz" for a in by_actor}
    todo = [(by_actor[a], opts, paths[a]) for a in by_actor if not _valid_cache(paths[a], by_actor[a])]
    if todo:
        log(f"features: computing {len(todo)} of {len(by_actor)} actors ({opts.copies} augmented copies per clip) "
            f"into {cache}")
        t0 = time.perf_counter()
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for done, (path, dt) in enumerate(pool.map(_actor_job, todo), 1):
                    _progress(done, len(todo), t0, f"{path.stem} {dt:.0f}s", log)
        else:
            for done, job in enumerate(todo, 1):
                path, dt = _actor_job(job)
                _progress(done, len(todo), t0, f"{path.stem} {dt:.0f}s", log)
    else:
        log(f"features: all {len(by_actor)} actors from cache {cache}")
    parts = []
    offset = 0
    clip_ids: list[str] = []
    fallbacks = 0
    for a in by_actor:
        with np.load(paths[a]) as z:
            parts.append((z["x"], z["y"], np.full(len(z["y"]), a, dtype=np.int16), z["clip"] + offset, z["copy"]))
            clip_ids += list(z["clip_ids"])
            offset += len(z["clip_ids"])
            fallbacks += int(z["fallbacks"])
    ws = WindowSet(*(np.concatenate([p[i] for p in parts]) for i in range(5)), clip_ids=clip_ids,
                   fallbacks=fallbacks)
    n_orig = int(np.sum(ws.copy == 0))
    log(f"features: {len(ws.y)} windows ({n_orig} from original recordings) from {len(clip_ids)} clips; "
        f"{fallbacks} clip copies had no speech window and were used whole")
    return ws


def _progress(done: int, total: int, t0: float, what: str, log) -> None:
    elapsed = time.perf_counter() - t0
    eta = elapsed / done * (total - done)
    log(f"  [{done}/{total}] {what}; elapsed {elapsed:.0f}s, about {eta:.0f}s left")
    sys.stdout.flush()
