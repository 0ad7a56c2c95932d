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

from monitor.audio.convert import CONVERT_HINT, unreadable
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
    """The first decodable audio stream of a file PyAV opens: ``rate`` and ``channels`` once opened (its first
    frame decoded, so a file PyAV opens but cannot decode is refused here), ``blocks()`` its samples as float32
    arrays of shape (frames, channels), in decoding order. Raises AudioError (one line, the path first) for a file
    PyAV cannot open or decode, one without an audio stream, or one that is corrupt part-way."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            import av
        except ImportError as exc:  # installed but broken (a missing system library)
            raise AudioError(f"{self.path}: PyAV is installed but cannot be loaded ({exc})") from None
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, ValueError, UnicodeDecodeError) as exc:
            raise AudioError(f"{self.path}: not a readable audio file ({_reason(exc)}); {CONVERT_HINT}") from None
        try:
            # a stream FFmpeg has no decoder for (a WAV with an unknown codec tag) has no codec context
            stream = next((s for s in self._container.streams if s.type == "audio" and s.codec_context is not None),
                          None)
            if stream is None:
                raise AudioError(f"{self.path}: the file holds no audio stream this tool can decode")
            self._stream = stream
            self.rate = int(stream.rate or 0)
            self.channels = int(stream.layout.nb_channels) if stream.layout is not None else int(stream.channels)
            if self.rate <= 0 or self.channels <= 0:
                raise AudioError(f"{self.path}: not a readable audio file (its audio stream has no sample rate)")
            self._resampler = av.AudioResampler(format="flt", layout=stream.layout, rate=self.rate)  # packed
            self._frames = self._container.decode(stream)
            self._first = self._next_samples()
        except AudioError:
            self._container.close()
            raise
        except (av.FFmpegError, ValueError, AttributeError) as exc:
            self._container.close()
            raise AudioError(f"{self.path}: not a readable audio file ({_reason(exc)}); {CONVERT_HINT}") from None

    def _next_samples(self) -> list[np.ndarray]:
        """The samples of the next decoded frame (an empty list at the end)."""
        frame = next(self._frames, None)
        if frame is None:
            return []
        return [out.to_ndarray().reshape(-1, self.channels) for out in self._resampler.resample(frame)]

    def close(self) -> None:
        """Close the file without reading it (``blocks()`` closes it when done)."""
        self._container.close()

    def blocks(self) -> Iterator[np.ndarray]:
        """The stream's samples from its start, float32 (frames, channels) at ``rate``; then the file is closed."""
        import av

        try:
            yield from self._first
            while True:
                part = self._next_samples()
                if not part:
                    break
                yield from part
            for out in self._resampler.resample(None):
                yield out.to_ndarray().reshape(-1, self.channels)
        except (av.FFmpegError, ValueError) as exc:
            raise AudioError(f"{self.path}: the audio is corrupt part-way ({_reason(exc)})") from None
        finally:
            self._container.close()


def open_refused(path: str | Path, refused: str) -> MediaFile:
    """A file libsndfile refused to open (``refused``: its reason), opened by PyAV. Raises the one-line error to
    show: without PyAV, or when PyAV cannot decode it either, libsndfile's reason with what to do; for a file named
    like one of ``EXTENSIONS``, PyAV's own reason (no audio stream, corrupt, PyAV broken) instead."""
    if not available():
        raise unreadable(path, refused)
    try:
        return MediaFile(path)
    except AudioError:
        if Path(path).suffix.lower() in EXTENSIONS:
            raise
        raise unreadable(path, refused) from None


def _reason(exc: BaseException) -> str:
    """An exception's reason in one line: FFmpeg's message without its errno number or the file name."""
    reason = getattr(exc, "strerror", None) or str(exc).split("\n")[0] or type(exc).__name__
    return str(reason).strip()
