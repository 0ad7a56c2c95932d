"""Audio in formats libsndfile does not read (m4a/AAC, MP4, WebM, WMA ...), decoded with PyAV when it is installed.

PyAV (``pip install av``, the ``formats`` extra; ``scripts/setup.sh`` installs it) carries FFmpeg's libraries in
its wheel, for x86-64 and aarch64, so no ``ffmpeg`` program is needed. It is used only for a file libsndfile
refuses: what libsndfile reads is read as before, sample for sample. The first audio stream is decoded to
float32 at its own rate and channels; the caller mixes and resamples it with its own converter
(``monitor.audio.convert.StreamConverter``), as it does libsndfile's samples. Without PyAV such a file gets the
usual one-line error with the advice to convert it (``monitor.audio.convert.CONVERT_HINT``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from monitor.errors import AudioError

# Audio and video formats libsndfile does not read; with PyAV a folder's files of these kinds are scored too.
EXTENSIONS: frozenset[str] = frozenset(
    {".m4a", ".aac", ".mp4", ".m4v", ".m4b", ".3gp", ".amr", ".webm", ".mkv", ".mka", ".mov", ".avi", ".wma", ".wmv",
     ".ac3", ".ape", ".wv", ".alac", ".dts", ".flv"}
)  # fmt: skip


def available() -> bool:
    """Is PyAV installed (so that the formats of ``EXTENSIONS`` can be decoded)?"""
    return importlib.util.find_spec("av") is not None


class MediaFile:
    """The first audio stream of a file PyAV opens: ``rate`` and ``channels`` once opened, ``blocks()`` its
    samples as float32 arrays of shape (frames, channels), in decoding order. Raises AudioError (one line) for a
    file PyAV cannot open, one without an audio stream, or one that is corrupt part-way."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            import av
        except ImportError as exc:  # installed but broken (a missing system library)
            raise AudioError(f"{self.path}: PyAV cannot be loaded ({exc})") from None
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, ValueError, UnicodeDecodeError) as exc:
            raise AudioError(f"{self.path}: not a readable audio file ({_reason(exc)})") from None
        stream = next((s for s in self._container.streams if s.type == "audio"), None)
        if stream is None:
            self._container.close()
            raise AudioError(f"{self.path}: the file holds no audio stream")
        self._stream = stream
        self.rate = int(stream.rate or 0)
        self.channels = int(stream.layout.nb_channels) if stream.layout is not None else int(stream.channels)
        if self.rate <= 0 or self.channels <= 0:
            self._container.close()
            raise AudioError(f"{self.path}: not a readable audio file (its audio stream has no sample rate)")

    def close(self) -> None:
        """Close the file without reading it (``blocks()`` closes it when done)."""
        self._container.close()

    def blocks(self) -> Iterator[np.ndarray]:
        import av

        resampler = av.AudioResampler(format="flt", layout=self._stream.layout, rate=self.rate)  # packed float32
        try:
            for frame in self._container.decode(self._stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1, self.channels)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1, self.channels)
        except (av.FFmpegError, ValueError) as exc:
            raise AudioError(f"{self.path}: the audio is corrupt part-way ({_reason(exc)})") from None
        finally:
            self._container.close()


def _reason(exc: BaseException) -> str:
    return (str(exc).split("\n")[0] or type(exc).__name__).removesuffix(f": '{exc.filename}'"
                                                                         if getattr(exc, "filename", None) else "")
