"""A file for batch scoring, read in blocks: memory stays bounded whatever the file's length.

``read_audio`` (monitor.audio.convert) loads a whole file as float32 before converting it (about 160 MB per
10 minutes of 44.1 kHz stereo, per worker). :class:`AudioBlocks` reads ``block_s`` of the file at a time with
soundfile (float32, as ``read_audio`` reads) and converts each block with the same
:class:`~monitor.audio.convert.StreamConverter` (channel mean, soxr stream keeping its state between blocks),
so the 16 kHz samples are those of ``read_audio`` (equal, or within float rounding where soxr resamples), and
the errors are its one-line errors (and a path that cannot even be inspected, which ``read_audio`` lets
through as an OSError, is one too). A file libsndfile cannot open (m4a, WebM ...) is decoded by PyAV
(``monitor.audio.media``), frame by frame, through the same converter.

The live ``FileSource`` is not reused: it reads int16 (a 24-bit or float file would be quantised before
resampling, unlike ``read_audio``) and hands blocks to a reader thread through a ring buffer, which batch
scoring does not need.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from monitor.audio import media
from monitor.audio.convert import StreamConverter, decode_problem, unreadable
from monitor.errors import AudioError
from monitor.paths import FOLDER, MISSING, access_problem, path_kind


class AudioBlocks:
    """``blocks()`` yields 16 kHz mono int16 arrays of ``block_s`` (the last of each read shorter); ``duration_s``
    is the original's length once read. The file is read ``read_s`` at a time (fewer, larger reads: a read costs
    libsndfile a seek or two whatever its length) and each read is handed on in ``block_s`` pieces.

    Raises AudioError (one line) for missing, unreadable, corrupt or empty files, like ``read_audio``; a file
    that turns out to be corrupt part-way raises when the bad block is reached.
    """

    def __init__(self, path: str | Path, block_s: float = 0.5, read_s: float = 4.0) -> None:
        self.path = Path(path)
        self.block_s = block_s
        self.read_s = max(read_s, block_s)
        self.rate = 0
        self.channels = 0
        self.frames_read = 0

    @property
    def duration_s(self) -> float:
        return self.frames_read / self.rate if self.rate else 0.0

    def blocks(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        p = self.path
        try:
            kind = path_kind(p)
        except OSError as exc:  # read_audio's own checks would raise it (Path.exists), as an internal error
            raise AudioError(f"{p}: cannot access it: {access_problem(exc)}") from None
        if kind == MISSING:
            raise AudioError(f"{p}: no such file")
        if kind == FOLDER:
            raise AudioError(f"{p}: is a folder, not an audio file")
        try:
            with open(p, "rb") as raw, sf.SoundFile(raw) as f:  # a file object: any file name
                self.rate, self.channels = int(f.samplerate), int(f.channels)
                yield from self._converted(_reads(f, max(1, int(round(self.read_s * self.rate)))))
        except AudioError:
            raise
        except OSError as exc:
            raise AudioError(f"{p}: cannot read it: {access_problem(exc)}") from None
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            if self.rate:  # opened, then corrupt part-way
                raise unreadable(p, decode_problem(exc)) from None
            refused = decode_problem(exc)
        else:
            return
        source = media.open_refused(p, refused)  # libsndfile could not open it: PyAV may
        self.rate, self.channels = source.rate, source.channels
        yield from self._converted(source.blocks())

    def _converted(self, reads: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """float32 (frames, channels) reads at ``rate`` -> 16 kHz mono int16 blocks of ``block_s``."""
        conv = StreamConverter(self.rate)
        piece = max(1, int(round(self.block_s * conv.out_rate)))
        for data in reads:
            self.frames_read += len(data)
            out = conv.process(data)
            for i in range(0, len(out), piece):
                yield out[i : i + piece]
        if self.frames_read == 0:
            raise AudioError(f"{self.path}: the file holds no audio samples")
        yield conv.process(np.zeros((0, self.channels), dtype=np.float32), last=True)


def _reads(f: Any, read: int) -> Iterator[np.ndarray]:
    """An open ``soundfile.SoundFile`` as float32 (frames, channels) reads of ``read`` frames: the frames its header
    announces, what ``sf.read`` would read."""
    remaining = f.frames
    while remaining > 0:
        data = f.read(min(read, remaining), dtype="float32", always_2d=True)
        if not len(data):
            break
        remaining -= len(data)
        yield data
