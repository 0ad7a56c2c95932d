"""How the voice head holds in rooms, noise and other channels, and whether training it on such versions helps.

Every clip of the five corpora gets one degraded version (``training.augment.version_clip``: a synthetic room,
RT60 0.2-0.9 s; noise or babble at 0-20 dB SNR; or a telephone band, a lossy codec or a microphone tilt; one kind
per clip, chosen by its key; at a random peak level from -35 to -1 dBFS), cut at the clean clip's window bounds,
and each window's functionals and speaker encoder reading are cached. Then, for every held-out result file of the
CNN (the speaker-independent CV folds and the leave-one-corpus-out runs), the shipped voice head's recipe
(``training.prosody.DEFAULT_HEAD``, 64 principal components of the encoder's states) is

- trained on the clean windows and tested on the clean held-out windows (the shipped figures), or on their
  degraded versions;
- trained on the clean windows plus a degraded copy of every training clip, and tested the same two ways.

Scored as ``training.prosody.evaluate_file`` scores the shipped head (the monitor's arithmetic, the run's voices
included). The CNN's held-out probabilities exist for the clean clips only, so on degraded clips the head is read
alone (weight 0); the fused figure (the CNN at 0.6, as shipped) is given for the clean clips.

    python -m training.heads_rooms --data ../shared/data   # ~35 min the first time (the degraded clips), then ~5 min
"""

from __future__ import annotations

import argparse
import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from monitor.audio.convert import read_audio
from monitor.dsp.functionals import functionals
from training.augment import version_clip
from training.corpora import KNOWN_CORPORA, Corpus, load_corpora
from training.dataset import DEFAULT_CACHE, cached_clips, save_npz_atomic
from training.evaluate import clip_windows
from training.voice_embeddings import VOICE_DIMS, window_readings

if TYPE_CHECKING:
    from training.prosody import Windows

KINDS = ("room", "noise", "channel")
SETTINGS = ("run", "alone", "session")
VARIANTS = (("clean", False, False), ("degraded", True, False), ("trained with versions, clean", False, True),
            ("trained with versions, degraded", True, True))  # (name, held-out windows degraded, training copies)
VOICE_DIMS_K = 64
SHIPPED_WEIGHT = 0.6

_babble: list[np.ndarray] = []


def _init(babble_paths: list[str]) -> None:
    global _babble
    _babble = [read_audio(p)[0].astype(np.float32) / 32768.0 for p in babble_paths]


def degraded_rows(path: str, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """A clip's degraded version cut at the clean clip's windows (``training.evaluate.clip_windows``): each
    window's functionals, encoder states and embedding (zeros where the encoder hears nothing), and the kind."""
    audio, _ = read_audio(path)
    seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    kind = KINDS[seed % len(KINDS)]
    others = [_babble[i] for i in rng.choice(len(_babble), size=int(rng.integers(3, 6)), replace=False)]
    y = version_clip(audio.astype(np.float32) / 32768.0, kind, rng, others)
    y16 = np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)
    parts = [y16[s:e] for s, e in clip_windows(audio)]
    readings = window_readings(parts)
    return np.stack([functionals(a) for a in parts]), readings[:, :VOICE_DIMS], readings[:, VOICE_DIMS:], kind


def code_key() -> str:
    """What the degraded windows depend on: the framing and functionals, the encoder, the degradations."""
    from training import prosody, voice_embeddings

    h = hashlib.sha1(f"{prosody.code_key()}-{voice_embeddings.code_key()}".encode())
    h.update((Path(__file__).resolve().parent / "augment.py").read_bytes())
    return h.hexdigest()[:12]


def degraded_corpora(corpora: list[Corpus], cache: Path, jobs: int = 2) -> dict[str, np.ndarray]:
    """The degraded windows of every corpus, rows in ``training.prosody.corpus_windows``' order (cached per corpus)."""
    cache.mkdir(parents=True, exist_ok=True)
    everyone = [r for c in corpora for r in c.records]
    babble = [str(everyone[i].path) for i in np.random.default_rng(1).choice(len(everyone), 40, replace=False)]
    parts = []
    for c in corpora:
        path = cache / f"rooms-{code_key()}-{c.name}.npz"
        want = [r.key for r in c.records]
        z = cached_clips(path, want)
        if z is None:
            print(f"heads_rooms: degrading {len(want)} clips of {c.name} ...", flush=True)
            with ProcessPoolExecutor(jobs, initializer=_init, initargs=(babble,)) as ex:
                res = list(ex.map(degraded_rows, [str(r.path) for r in c.records], want, chunksize=16))
            z = {"x": np.concatenate([r[0] for r in res]), "embedding": np.concatenate([r[1] for r in res]),
                 "speaker_embedding": np.concatenate([r[2] for r in res]),
                 "kind": np.concatenate([[r[3]] * len(r[0]) for r in res]), "clips": np.array(want)}
            save_npz_atomic(path, z)
        parts.append(z)
    return {k: np.concatenate([p[k] for p in parts]) for k in ("x", "embedding", "speaker_embedding", "kind")}


def variant(win: Windows, deg: Windows, held: set[str], test_degraded: bool, with_versions: bool) -> Windows:
    """The windows one evaluation sees: held-out windows clean or degraded; with ``with_versions`` a degraded copy
    of every training clip's windows added as training windows (keys ``<key>#version``)."""
    from training.prosody import Windows

    is_held = np.isin(win.key, list(held))

    def pick(clean: np.ndarray, other: np.ndarray) -> np.ndarray:
        return np.where(is_held[:, None], other, clean) if test_degraded else clean

    out = replace(win, x=pick(win.x, deg.x), embedding=pick(win.embedding, deg.embedding),
                  vector=pick(win.vector, deg.vector))
    if not with_versions:
        return out
    t = ~is_held
    versions = np.char.add(win.key[t].astype(str), "#version")
    return Windows(np.vstack([out.x, deg.x[t]]), np.concatenate([out.key, versions]),
                   np.concatenate([win.corpus, win.corpus[t]]), np.concatenate([win.label, win.label[t]]),
                   win.corpus_labels, np.concatenate([win.speaker, win.speaker[t]]),
                   np.vstack([out.embedding, deg.embedding[t]]), np.vstack([out.vector, deg.vector[t]]))


def main(argv: list[str] | None = None) -> int:
    from training.prosody import DEFAULT_HEAD, corpus_windows, evaluate_file, speaker_vectors
    from training.voice_embeddings import corpus_readings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--results", type=Path, default=Path("models/results/cnn2d-spknorm"))
    ap.add_argument("--model-dir", type=Path, default=Path("models"))
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    corpora = load_corpora(a.data, KNOWN_CORPORA)
    win = corpus_windows(corpora, jobs=a.jobs)
    win.embedding, emb = corpus_readings(corpora, len(win.x), jobs=a.jobs)
    win.vector = speaker_vectors(emb)
    d = degraded_corpora(corpora, Path(a.cache).expanduser(), a.jobs)
    deg = replace(win, x=d["x"].astype(np.float64), embedding=d["embedding"],
                  vector=speaker_vectors(d["speaker_embedding"]))
    temperature = float(json.loads((a.model_dir / "emotion.json").read_text())["temperature"])
    files = sorted(a.results.glob("cv_*.npz")) + [a.results / f"loco_{c}.npz" for c in KNOWN_CORPORA]
    scores: dict = {}
    for path in files:
        with np.load(path) as z:
            held = set(map(str, z["keys"]))
        for name, test_degraded, with_versions in VARIANTS:
            r = evaluate_file(variant(win, deg, held, test_degraded, with_versions), path, temperature,
                              (DEFAULT_HEAD,), voice_dims=VOICE_DIMS_K)
            for s in SETTINGS:
                for w in (0.0, SHIPPED_WEIGHT):
                    for corpus, v in r[s][DEFAULT_HEAD][w][0].items():
                        scores.setdefault((path.stem.split("_")[0], name, s, w), []).append(
                            (corpus, v["uar8"], v["arousal_uar"]))
        print(f"heads_rooms: {path.stem} done", flush=True)
    table = {" / ".join(map(str, k)): {"uar8": float(np.mean([v[1] for v in vals])),
                                       "arousal": float(np.mean([v[2] for v in vals])),
                                       "per_corpus_uar8": {c: float(np.mean([v[1] for v in vals if v[0] == c]))
                                                           for c in sorted({v[0] for v in vals})}}
             for k, vals in scores.items()}
    (a.model_dir / "results").mkdir(exist_ok=True)
    (a.model_dir / "results" / "heads_rooms.json").write_text(json.dumps(table, indent=1))
    print("| held out | voice head | tested on | CNN weight | " + " | ".join(SETTINGS) + " |")
    print("|---|---|---|---|" + "---|" * len(SETTINGS))
    for kind in ("loco", "cv"):
        for name, _, _ in VARIANTS:
            for w in (0.0, SHIPPED_WEIGHT):
                if w and name.endswith("degraded"):
                    continue  # no CNN probabilities of the degraded clips
                cells = [table[f"{kind} / {name} / {s} / {w}"] for s in SETTINGS]
                trained = "clean + versions" if "versions" in name else "clean"
                tested = "degraded" if name.endswith("degraded") else "clean"
                print(f"| {'corpora never heard' if kind == 'loco' else 'speakers never heard (CV)'} | {trained} | "
                      f"{tested} | {w} | " + " | ".join(f"{c['uar8']:.3f} ({c['arousal']:.3f})" for c in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
