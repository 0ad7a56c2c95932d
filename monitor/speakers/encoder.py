"""Speaker embeddings without torch: Resemblyzer's GE2E voice encoder run in numpy.

The network (Jemine's Resemblyzer 0.1.4, Apache-2.0; converted once by ``training/convert_speaker_encoder.py``)
is a 3-layer LSTM (40 -> 256 -> 256 -> 256) over 40-channel mel frames, a linear layer (256 -> 256), ReLU and
L2 normalisation of the last layer's final hidden state. The front end follows the original exactly:

- the waveform is raised (never lowered) to -30 dBFS RMS;
- mel *power* spectrogram (not log): 25 ms periodic Hann window (400 samples, n_fft 400), 10 ms hop,
  ``center=True`` with zero padding, 40 Slaney mel bands from 0 to 8 kHz (librosa's defaults);
- the utterance is cut into partials of 160 frames (1.6 s), the last one kept (zero padded) if it covers at
  least 75 % of a partial; the embedding is the L2-normalised mean of the partials'. Resemblyzer's own
  partial scheme, at 0.7 partials per second instead of its default 1.3 (``partial_starts``).

The weights ship in ``models/speaker_encoder.npz`` (float16; computed in float32) with ``speaker_encoder.json``
(source, licence, sha256). The gate sigmoids use ``sigmoid(x) = (1 + tanh(x / 2)) / 2`` with the 1/2 folded
into the weights at load time, so a time step is one matrix product and one ``tanh`` over all four gates.
The partials of an utterance go through the LSTM as one batch, in float32, with preallocated buffers.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from monitor.dsp.features import _analysis_window, mel_filterbank
from monitor.errors import MonitorError

DEFAULT_ENCODER = Path(__file__).resolve().parents[2] / "models" / "speaker_encoder.npz"
DEFAULT_LDA = DEFAULT_ENCODER.with_name("speaker_lda.npz")
FORMAT = "voice-monitor-speaker-encoder/1"

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
PARTIAL_RATE = 0.7  # partials per second of audio (Resemblyzer's default is 1.3; see partial_starts)
MIN_COVERAGE = 0.75
TARGET_DBFS = -30.0
HIDDEN = 256
STATE_LAYERS = (1, 2)  # the LSTM layers (0-based) whose states the voice head reads: the second and the third
STATE_DIMS = 2 * HIDDEN * len(STATE_LAYERS)  # per layer: each unit's mean and spread over time (``read``)


def normalize_volume(x: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray | None:
    """Raise ``x`` (float, [-1, 1]) to ``target_dbfs`` RMS; louder audio is left alone. None if silent."""
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    if rms < 1e-7:
        return None
    change_db = target_dbfs - 20.0 * np.log10(rms)
    return x * (10.0 ** (change_db / 20.0)) if change_db > 0 else x


@lru_cache(maxsize=1)
def _front_end() -> tuple[np.ndarray, np.ndarray]:
    """(Hann window, mel filters as a contiguous (bins, mels) matrix), float32. A transposed view of the
    filterbank would send the product down numpy's slow non-BLAS path (~30x slower here)."""
    fb = mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, 0.0, SAMPLE_RATE / 2)
    return _analysis_window(N_FFT, N_FFT).astype(np.float32), np.ascontiguousarray(fb.T, dtype=np.float32)


def mel_frames(x: np.ndarray) -> np.ndarray:
    """float waveform -> mel power spectrogram, float32, shape (1 + len // HOP, N_MELS), librosa ``center=True``."""
    window, filters = _front_end()
    padded = np.pad(np.asarray(x, dtype=np.float32), (N_FFT // 2, N_FFT // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames * window, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return power @ filters


def partial_starts(n_samples: int, rate: float = PARTIAL_RATE) -> list[int]:
    """First mel frame of each 1.6 s partial (Resemblyzer's ``compute_partial_slices`` with ``rate``, 75 %).

    At 0.7 partials per second a 3 s window is two partials (frames 0 and 143: the window and 2 frames of
    padding), where Resemblyzer's default 1.3 makes three (0, 77, 154): the third partial cost a third more
    (each is 160 sequential LSTM steps per layer) for embeddings that hardly differ (models/SPEAKERS.md)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((SAMPLE_RATE / rate) / HOP))
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    last = starts[-1] * HOP
    coverage = (n_samples - last) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


@dataclass
class _Layer:
    w_ih: np.ndarray  # (in, 4H), gate order i f o g; the sigmoid gates' (i, f, o) columns halved
    w_hh_rows: np.ndarray  # (4H, H), same gates as rows
    bias: np.ndarray  # (4H,)


class _Workspace:
    """The LSTM's buffers for one (batch, steps) shape, reused from call to call.

    ``cell`` holds the gates and the cell state side by side, rows ``i f o g c`` (H rows each), so that the
    two products of the cell update, ``i * g`` and ``f * c``, are one ufunc over ``(i, f) * (g, c)``; the step's
    matrix product writes the gates ``i f o g`` (the first 4H rows) in place."""

    def __init__(self, batch: int, steps: int) -> None:
        self.key = (batch, steps)
        self.rows = np.empty((batch * steps, 4 * HIDDEN), np.float32)  # input projection, (partial, step) rows
        self.xp = np.empty((steps, 4 * HIDDEN, batch), np.float32)  # the same, per step, column-wise
        self.out = np.empty((steps, HIDDEN, batch), np.float32)  # h of every step
        self.seq = np.empty((batch, steps, HIDDEN), np.float32)  # the next layer's input rows
        self.h0 = np.zeros((HIDDEN, batch), np.float32)
        self.cell = np.empty((5 * HIDDEN, batch), np.float32)
        self.prod = np.empty((2 * HIDDEN, batch), np.float32)
        self.tmp = np.empty((HIDDEN, batch), np.float32)
        h, cell = HIDDEN, self.cell
        self.z, self.sig, self.o = cell[: 4 * h], cell[: 3 * h], cell[2 * h : 3 * h]
        self.i_f, self.g_c, self.c = cell[: 2 * h], cell[3 * h :], cell[4 * h :]
        self.ig, self.fc = self.prod[:h], self.prod[h:]


_local = threading.local()


def _time_mean_and_spread(out: np.ndarray) -> list[np.ndarray]:
    """(steps, units, batch) hidden states -> [each unit's mean over steps and partials, its standard deviation over
    the steps averaged over the partials]. Two passes (mean, then the centred squares), each a matrix-vector
    product over the steps: ``out.std(axis=0)`` reduces along the slow axis and cost 0.8 ms per layer, this 0.1."""
    steps = out.shape[0]
    flat = out.reshape(steps, -1)  # (steps, units * batch), a view
    weights = np.full(steps, 1.0 / steps, np.float32)
    mean = weights @ flat
    centred = flat - mean
    centred *= centred
    spread = np.sqrt(weights @ centred).reshape(out.shape[1:])
    return [mean.reshape(out.shape[1:]).mean(axis=1), spread.mean(axis=1)]


def _workspace(batch: int, steps: int) -> _Workspace:
    """This thread's buffers for the shape (one shape kept: a window is nearly always two partials)."""
    ws = getattr(_local, "workspace", None)
    if ws is None or ws.key != (batch, steps):
        ws = _local.workspace = _Workspace(batch, steps)
    return ws


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_lda(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(mean, projection) of the speaker space fitted by training/fit_speaker_lda.py."""
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        with np.load(path) as lda:
            mean, projection = lda["mean"].astype(np.float32), lda["projection"].astype(np.float32)
    except FileNotFoundError as exc:
        raise MonitorError(
            f"speaker projection {exc.filename} not found; restore models/speaker_lda.* or set [speakers] lda = false"
        ) from None
    except (OSError, ValueError, KeyError) as exc:
        raise MonitorError(f"speaker projection {path} cannot be read ({exc}); set [speakers] lda = false") from None
    if meta.get("sha256") and meta["sha256"] != _sha256(path):
        raise MonitorError(f"{path} does not match the checksum in {path.with_suffix('.json').name}; restore it")
    return mean, projection


class SpeakerEncoder:
    """Loads the converted weights once; ``embed`` turns 16 kHz mono audio into the encoder's 256-d unit
    vector, ``vector`` into the unit vector the clustering compares (the embedding in the LDA speaker space
    when ``lda`` is on, see training/fit_speaker_lda.py; the embedding itself when off)."""

    def __init__(self, path: str | Path | None = None, lda: bool = True, lda_path: str | Path | None = None) -> None:
        self.lda = _load_lda(Path(lda_path) if lda_path else DEFAULT_LDA) if lda else None
        p = Path(path) if path else DEFAULT_ENCODER
        meta_path = p.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            weights = np.load(p)
        except FileNotFoundError as exc:
            raise MonitorError(
                f"speaker encoder {exc.filename} not found; restore models/speaker_encoder.* or use --speakers off"
            ) from None
        except (OSError, ValueError) as exc:
            raise MonitorError(f"speaker encoder {p} cannot be read ({exc}); use --speakers off") from None
        if meta.get("format") != FORMAT:
            raise MonitorError(f"{meta_path}: not a {FORMAT} file; use --speakers off")
        if meta.get("sha256") and meta["sha256"] != _sha256(p):
            raise MonitorError(f"{p} does not match the checksum in {meta_path.name}; restore it or use --speakers off")
        # torch's gate order i f g o -> i f o g (the three sigmoid gates side by side), sigmoid ones halved
        order = np.r_[0 : 2 * HIDDEN, 3 * HIDDEN : 4 * HIDDEN, 2 * HIDDEN : 3 * HIDDEN]
        half = np.where(np.arange(4 * HIDDEN) < 3 * HIDDEN, 0.5, 1.0).astype(np.float32)

        def gates(a: np.ndarray) -> np.ndarray:  # (4H, ...) torch rows -> (..., 4H) reordered, halved
            return np.ascontiguousarray(a.astype(np.float32)[order].T * half)

        with weights:
            self.layers = [
                _Layer(
                    gates(weights[f"w_ih_{k}"]),
                    np.ascontiguousarray(gates(weights[f"w_hh_{k}"]).T),
                    gates(weights[f"b_ih_{k}"].astype(np.float32) + weights[f"b_hh_{k}"].astype(np.float32)),
                )
                for k in range(int(meta["layers"]))
            ]
            self.linear_w = np.ascontiguousarray(weights["linear_w"].astype(np.float32).T)
            self.linear_b = weights["linear_b"].astype(np.float32)
        self.meta = meta

    def forward(self, mels: np.ndarray, states: list[np.ndarray] | None = None) -> np.ndarray:
        """(batch, frames, 40) mel power partials -> (batch, 256) L2-normalised embeddings.

        ``states``: if given, for each layer of ``STATE_LAYERS`` two (256,) vectors are appended to it: each
        unit's hidden state averaged over the steps and the partials, and its standard deviation over the steps
        averaged over the partials (what ``read`` returns beside the embedding).

        The partials of an utterance run together (batch = partials: 160 sequential steps per layer, not 160
        per partial). The state is kept column-wise, (units, batch): a step is ``W_hh @ h`` with the (1024, 256)
        matrix in row order, which BLAS does faster than ``h @ W_hh^T`` for a batch of two. The input projection
        of all steps is one 2-D matrix product per layer (a 3-D ``@`` does not reach BLAS's fast path). All
        buffers are reused from call to call (``_Workspace``): a fresh 1.3 MB array costs its page faults
        every time. A step is one matrix product and seven in-place ufuncs, see ``_Workspace``."""
        x = np.asarray(mels, dtype=np.float32)
        batch, steps, _ = x.shape
        ws = _workspace(batch, steps)
        seq = x.reshape(batch * steps, -1)  # rows: (partial, step)
        z, sig, o, i_f, g_c, c, prod = ws.z, ws.sig, ws.o, ws.i_f, ws.g_c, ws.c, ws.prod
        ig, fc, tmp, xp, out = ws.ig, ws.fc, ws.tmp, ws.xp, ws.out
        matmul, add, multiply, tanh = np.matmul, np.add, np.multiply, np.tanh
        h = ws.h0
        for n, layer in enumerate(self.layers):
            np.matmul(seq, layer.w_ih, out=ws.rows)
            ws.rows += layer.bias
            np.copyto(xp, ws.rows.reshape(batch, steps, -1).transpose(1, 2, 0))  # (steps, 4H, batch)
            h = ws.h0
            c.fill(0.0)
            w_hh = layer.w_hh_rows
            for t in range(steps):
                matmul(w_hh, h, out=z)
                add(z, xp[t], out=z)
                tanh(z, out=z)
                multiply(sig, 0.5, out=sig)  # sigmoid(x) = (1 + tanh(x / 2)) / 2, the 1/2 inside in the weights
                add(sig, 0.5, out=sig)
                multiply(i_f, g_c, out=prod)  # (i, f) * (g, c) = (i g, f c) in one ufunc
                add(ig, fc, out=c)
                tanh(c, out=tmp)
                h = out[t]
                multiply(o, tmp, out=h)
            if states is not None and n in STATE_LAYERS:
                states += _time_mean_and_spread(out)
            if n < len(self.layers) - 1:
                np.copyto(ws.seq, out.transpose(2, 0, 1))  # back to (partial, step) rows
                seq = ws.seq.reshape(batch * steps, HIDDEN)
        emb = np.maximum(h.T @ self.linear_w + self.linear_b, 0.0)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return emb / np.maximum(norms, 1e-12)

    def embed(self, audio: np.ndarray, rate: float = PARTIAL_RATE) -> np.ndarray | None:
        """16 kHz mono audio (int16 or float in [-1, 1]) -> unit 256-d embedding; None for silence.
        ``rate``: partials per second (Resemblyzer's ``embed_utterance`` argument)."""
        return self._run(audio, rate, None)

    def read(self, audio: np.ndarray, rate: float = PARTIAL_RATE) -> tuple[np.ndarray, np.ndarray] | None:
        """``embed``'s embedding and the encoder's states (``STATE_DIMS`` float32: for the second and third LSTM
        layers, each unit's mean and spread over time; ``forward``), from one pass; None for silence. The
        states are what the voice head reads (models/VOICE.md): the embedding is trained to stay put while a
        voice's emotion changes, the layers below it less so."""
        states: list[np.ndarray] = []
        emb = self._run(audio, rate, states)
        return None if emb is None else (emb, np.concatenate(states).astype(np.float32))

    def _run(self, audio: np.ndarray, rate: float, states: list[np.ndarray] | None) -> np.ndarray | None:
        a = np.asarray(audio).reshape(-1)
        x = a.astype(np.float64) / 32768.0 if a.dtype == np.int16 else a.astype(np.float64)
        x = normalize_volume(x)
        if x is None:
            return None
        starts = partial_starts(len(x), rate)
        need = (starts[-1] + PARTIAL_FRAMES) * HOP
        if need >= len(x):
            x = np.pad(x, (0, need - len(x)))
        mel = mel_frames(x)
        partials = np.stack([mel[s : s + PARTIAL_FRAMES] for s in starts])
        mean = self.forward(partials, states).mean(axis=0)
        return (mean / np.linalg.norm(mean)).astype(np.float32)

    def project(self, emb: np.ndarray | None) -> np.ndarray | None:
        """An embedding -> the unit vector the clustering compares (unchanged without the projection)."""
        if emb is None or self.lda is None:
            return emb
        z = (emb - self.lda[0]) @ self.lda[1]
        return (z / max(float(np.linalg.norm(z)), 1e-12)).astype(np.float32)

    def vector(self, audio: np.ndarray) -> np.ndarray | None:
        return self.project(self.embed(audio))
