"""Fit the speaker-space projection (LDA) that the clustering compares voices in.

    PYTHONPATH=. python -m training.fit_speaker_lda [--data /work/shared/data] [--dims 48] [--clips 40]

GE2E embeddings of one actor vary with the emotion acted almost as much as two actors of one gender differ
(models/SPEAKERS.md). A linear discriminant analysis learnt on many voices, each in many emotions, keeps the
directions along which voices differ and drops those along which one voice's emotions differ. It is fitted on
the TUNING voices of training/conversations.py only (the held-out voices of the evaluation never take part):
up to ``--clips`` clips per voice, each embedded whole by the shipped encoder. Writes
models/speaker_lda.npz (``mean`` (256,), ``projection`` (256, dims), float32) and models/speaker_lda.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from pathlib import Path

import numpy as np
from scipy.linalg import eigh

from monitor.audio.convert import read_audio
from monitor.speakers.encoder import SpeakerEncoder
from training.conversations import Voice, load_voices, split

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "models" / "speaker_lda.npz"


def fit(x: np.ndarray, speakers: np.ndarray, dims: int, ridge: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """(mean, projection): the ``dims`` leading generalised eigenvectors of (between, within) scatter."""
    mean = x.mean(axis=0)
    within = np.zeros((x.shape[1], x.shape[1]))
    between = np.zeros_like(within)
    for s in np.unique(speakers):
        xs = x[speakers == s]
        m = xs.mean(axis=0)
        within += (xs - m).T @ (xs - m)
        between += len(xs) * np.outer(m - mean, m - mean)
    within /= len(x)
    between /= len(x)
    _, vectors = eigh(between, within + ridge * np.eye(len(within)))
    return mean.astype(np.float32), np.ascontiguousarray(vectors[:, ::-1][:, :dims], dtype=np.float32)


def embed_clips(voices: list[Voice], clips: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, voice names): up to ``clips`` clips per voice, drawn with ``seed``, each embedded whole."""
    encoder = SpeakerEncoder()
    rng = random.Random(seed)
    rows, names = [], []
    for voice in voices:
        for path in rng.sample(list(voice.clips), min(clips, len(voice.clips))):
            emb = encoder.embed(read_audio(path)[0])
            if emb is not None:
                rows.append(emb)
                names.append(voice.name)
    return np.stack(rows), np.array(names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--dims", type=int, default=48)
    ap.add_argument("--clips", type=int, default=40, help="clips per voice at most")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not (data / "ravdess16k").is_dir():
        print(f"{data}/ravdess16k not found: pass --data (the shared corpora folder)")
        return 2
    tune, _ = split(load_voices(data))
    t0 = time.perf_counter()
    x, speakers = embed_clips(tune, args.clips, args.seed)
    names = speakers.tolist()
    mean, projection = fit(x, speakers, args.dims)
    np.savez(OUT, mean=mean, projection=projection)
    meta = {
        "format": "voice-monitor-speaker-lda/1",
        "dims": args.dims,
        "sha256": hashlib.sha256(OUT.read_bytes()).hexdigest(),
        "fitted_on": f"{len(x)} clips of {len(set(names))} tuning voices of training/conversations.py "
        f"({', '.join(sorted({v.corpus for v in tune}))}); the evaluation's held-out voices excluded",
        "command": f"PYTHONPATH=. python -m training.fit_speaker_lda --dims {args.dims} --clips {args.clips} "
        f"--seed {args.seed}",
        "licence": "derived from RAVDESS (CC BY-NC-SA 4.0), nEMO (CC BY-NC-SA 4.0) and ASED (cite Retta et al. "
        "2022) embeddings: non-commercial research use",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    OUT.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"{len(x)} clips of {len(set(names))} voices embedded in {time.perf_counter() - t0:.0f} s; wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
