"""Format conversion to the pipeline's format: 16 kHz mono int16.

``StreamConverter`` converts block by block (microphone, stdin, paced files) and keeps the resampler's
state between blocks, so the output does not depend on the block size. ``read_audio`` loads a whole file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from monitor.errors import AudioError

TARGET_RATE = 16000


def to_mono_float(block: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) int16/float -> float32 mono in [-1, 1] (channel mean)."""
    block = np.asarray(block)
    if block.dtype == np.int16:
        x = block.astype(np.float32) / 32768.0
    elif block.dtype == np.int32:
        x = block.astype(np.float32) / 2147483648.0
    else:
        x = block.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    return x


def float_to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)


class StreamConverter:
    """Any rate, any channel count -> 16 kHz mono int16, block by block, with resampler state kept."""

    def __init__(self, in_rate: int, out_rate: int = TARGET_RATE) -> None:
        if in_rate <= 0:
            raise AudioError(f"invalid sample rate {in_rate}: the input must report a positive rate")
        self.in_rate = int(in_rate)
        self.out_rate = out_rate
        self._stream = None
        if self.in_rate != out_rate:
            import soxr

            self._stream = soxr.ResampleStream(self.in_rate, out_rate, 1, dtype="float32", quality="HQ")

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        x = to_mono_float(block)
        if self._stream is not None:
            x = self._stream.resample_chunk(x, last=last)
        return float_to_int16(x)


# libsndfile reads WAV, FLAC, Ogg/Opus, MP3, AIFF and more, not the AAC/MP4 family (m4a, a phone's voice memo),
# WebM or WMA; PyAV decodes those when installed (monitor.audio.media). A file neither reads names the way out.
CONVERT_HINT = "convert it to WAV or FLAC, for example: ffmpeg -i IN -ac 1 -ar 16000 OUT.wav"


def unreadable(path: str | Path, reason: str) -> AudioError:
    """The one-line error for a file that cannot be decoded: libsndfile's reason, and what to do."""
    from monitor.audio import media

    way = CONVERT_HINT if media.available() else f"install PyAV (pip install av) or {CONVERT_HINT}"
    return AudioError(f"{path}: not a readable audio file ({reason}); if it is audio in another format (m4a, aac, "
                      f"mp4, webm, wma ...), {way}")


def decode_problem(exc: Exception) -> str:
    """libsndfile's own reason ("Format not recognised."), without soundfile's "Error opening <file object>: "
    around it (the file is opened by object, so that prefix would quote a Python object in the message)."""
    reason = getattr(exc, "error_string", None) or str(exc).split("\n")[0]
    return re.sub(r"^Error opening <[^>]*>: ", "", str(reason)).strip()


def _read_media(p: Path, refused: str) -> tuple[np.ndarray, int]:
    """A file libsndfile refused to open (``refused``: its reason), decoded by PyAV (``monitor.audio.media``)
    -> (float32 (frames, channels), rate); else the one-line error with what to do."""
    from monitor.audio import media

    source = media.open_refused(p, refused)
    parts = list(source.blocks())
    data = np.concatenate(parts) if parts else np.zeros((0, source.channels), np.float32)
    return data, source.rate


def read_audio(path: str | Path) -> tuple[np.ndarray, float]:
    """Read any file libsndfile can read (or PyAV, for m4a/AAC, WebM ...: ``monitor.audio.media``) -> (16 kHz
    mono int16, duration in seconds of the original).

    Raises AudioError with a one-line reason for missing, unreadable, corrupt or empty files.
    """
    import soundfile as sf

    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: no such file")
    if p.is_dir():
        raise AudioError(f"{p}: is a folder, not an audio file")
    refused = None  # libsndfile's reason for not opening the file (then PyAV may: monitor.audio.media)
    try:
        with open(p, "rb") as f:  # a file object: any file name, and a clear permission error
            try:
                sound = sf.SoundFile(f)
            except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
                refused = decode_problem(exc)
            else:
                with sound:
                    data, rate = sound.read(dtype="float32", always_2d=True), sound.samplerate
    except PermissionError:
        raise AudioError(f"{p}: permission denied") from None
    except OSError as exc:
        raise AudioError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:  # opened, then corrupt part-way
        raise unreadable(p, decode_problem(exc)) from None
    if refused is not None:
        data, rate = _read_media(p, refused)
    if data.shape[0] == 0:
        raise AudioError(f"{p}: the file holds no audio samples")
    duration = data.shape[0] / rate
    conv = StreamConverter(rate)
    return conv.process(data, last=True), duration
