"""Convert Resemblyzer's GE2E voice encoder (torch) once into the numpy weights the monitor runs.

Run it in a separate conversion environment that has torch (CPU) and resemblyzer; the runtime never needs them:

    python3.11 -m venv /work/convenv && /work/convenv/bin/pip install torch==2.13.0
    pip download resemblyzer==0.1.4 --no-deps -d /tmp/rz
    /work/convenv/bin/pip install --no-deps /tmp/rz/Resemblyzer-0.1.4-py3-none-any.whl
    /work/convenv/bin/pip install librosa webrtcvad-wheels soundfile   # what resemblyzer's audio.py imports
    PYTHONPATH=. /work/convenv/bin/python -m training.convert_speaker_encoder [--dtype float16]

Writes models/speaker_encoder.npz (the LSTM and linear weights), models/speaker_encoder.json (source, licence,
checksum, the front end) and tests/data/speaker_reference.npy: the ORIGINAL torch model's embeddings of a few
tests/data clips (``VoiceEncoder.embed_utterance`` of the clip raised to -30 dBFS, as
``resemblyzer.preprocess_wav`` does before its silence trimming), which tests/test_speaker_encoder.py compares
with the numpy runtime's. It then checks the runtime against torch here and prints the cosines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "models" / "speaker_encoder.npz"
REFERENCE = ROOT / "tests" / "data" / "speaker_reference.npy"
# Clips of tests/data whose torch embeddings are stored (rows of speaker_reference.npy, in this order).
REFERENCE_CLIPS = (
    "03-01-01-01-01-01-01.flac",
    "03-01-02-02-01-02-08.flac",
    "03-01-05-02-01-01-02.flac",
    "03-01-08-02-02-01-07.flac",
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    args = ap.parse_args(argv)

    import soundfile as sf
    import torch
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import normalize_volume
    from resemblyzer.hparams import audio_norm_target_dBFS

    package = Path(metadata.distribution("resemblyzer").locate_file("resemblyzer"))
    weights_path = package / "pretrained.pt"
    dist = metadata.distribution("resemblyzer")
    licence = [c for c in (dist.metadata.get_all("Classifier") or []) if c.startswith("License")]
    state = torch.load(weights_path, map_location="cpu")["model_state"]
    arrays = {}
    for k in range(3):
        arrays[f"w_ih_{k}"] = state[f"lstm.weight_ih_l{k}"].numpy()
        arrays[f"w_hh_{k}"] = state[f"lstm.weight_hh_l{k}"].numpy()
        arrays[f"b_ih_{k}"] = state[f"lstm.bias_ih_l{k}"].numpy()
        arrays[f"b_hh_{k}"] = state[f"lstm.bias_hh_l{k}"].numpy()
    arrays["linear_w"] = state["linear.weight"].numpy()
    arrays["linear_b"] = state["linear.bias"].numpy()
    np.savez(OUT, **{k: v.astype(args.dtype) for k, v in arrays.items()})
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    meta = {
        "format": "voice-monitor-speaker-encoder/1",
        "layers": 3,
        "hidden": 256,
        "embedding": 256,
        "dtype": args.dtype,
        "sha256": digest,
        "source": f"Resemblyzer {dist.version} (PyPI wheel, resemblyzer/pretrained.pt, sha256 "
        f"{hashlib.sha256(weights_path.read_bytes()).hexdigest()}), https://github.com/resemble-ai/Resemblyzer",
        "author": dist.metadata.get("Author", ""),
        "licence": "Apache-2.0 (" + "; ".join(licence) + ", LICENSE in the wheel)",
        "model": "GE2E speaker encoder (Wan et al. 2018): LSTM 40-256x3, linear 256, ReLU, L2 norm",
        "front_end": {
            "sample_rate": 16000,
            "n_fft": 400,
            "hop_length": 160,
            "n_mels": 40,
            "mel": "power (not log), Slaney, 0-8000 Hz, periodic Hann, center=True zero pad",
            "volume": f"raised to {audio_norm_target_dBFS} dBFS RMS, never lowered",
            "partials": "160 frames (1.6 s), 1.3 per second, last kept at >= 75 % coverage, mean then L2",
        },
        "converted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "converted_with": f"torch {torch.__version__}, training/convert_speaker_encoder.py",
    }
    OUT.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB, {args.dtype}) and its .json")

    sys.path.insert(0, str(ROOT))
    from monitor.speakers.encoder import PARTIAL_RATE, SpeakerEncoder

    torch.set_num_threads(1)
    original = VoiceEncoder(device="cpu", verbose=False)
    ours = SpeakerEncoder(OUT)
    refs = []
    for name in REFERENCE_CLIPS:
        wav, sr = sf.read(ROOT / "tests" / "data" / name, dtype="float32")
        assert sr == 16000, name
        loud = normalize_volume(wav, audio_norm_target_dBFS, increase_only=True)
        refs.append(original.embed_utterance(loud, rate=PARTIAL_RATE))
        pcm, _ = sf.read(ROOT / "tests" / "data" / name, dtype="int16")
        for rate in (PARTIAL_RATE, 1.3):
            cos = float(np.dot(ours.embed(pcm, rate=rate), original.embed_utterance(loud, rate=rate)))
            print(f"{name}: cosine numpy vs torch at {rate} partials/s: {cos:.5f}")
    np.save(REFERENCE, np.stack(refs).astype(np.float32))
    print(f"wrote {REFERENCE} (torch embeddings of {len(refs)} clips at {PARTIAL_RATE} partials/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
