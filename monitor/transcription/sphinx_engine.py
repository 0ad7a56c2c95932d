"""PocketSphinx fallback: English, offline, needs no download (the model ships inside the pocketsphinx wheel).

Less accurate than Vosk (about a third of the words wrong on RAVDESS) but always available. Streams with
``process_raw``; word times come from ``seg()`` in frames (``frate`` per second, 100 by default) from the start
of the utterance, converted to stream seconds. Fillers (``<s>``, ``</s>``, ``<sil>``, ``[NOISE]``, ``++...++``)
are dropped and pronunciation variants (``him(2)``) are folded to the word.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from monitor.errors import TranscriberError
from monitor.events import Word
from monitor.transcription.base import SAMPLE_RATE, Transcript, as_int16, monotonic_words

_VARIANT = re.compile(r"\(\d+\)$")


def is_filler(word: str) -> bool:
    return not word or word[0] in "<[+" or word.upper() in {"SIL", "NOISE"}


def clean_word(word: str) -> str:
    return _VARIANT.sub("", word)


class SphinxTranscriber:
    """Streaming PocketSphinx recogniser with word times in stream seconds. Use from one thread."""

    name = "pocketsphinx"
    label = "pocketsphinx (English model from the pocketsphinx package)"

    def __init__(self, *, final_pass: str = "batch", **config: Any) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise TranscriberError(f"the pocketsphinx package is not installed ({e}): pip install pocketsphinx, "
                                   f"or set [transcriber] engine = \"none\"") from e
        options: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": "FATAL"}
        options.update(config)
        try:
            self._dec = Decoder(**options)
        except (RuntimeError, ValueError, KeyError) as e:
            raise TranscriberError(f"pocketsphinx cannot start ({e}): reinstall it (pip install --force-reinstall "
                                   f"pocketsphinx) or set [transcriber] engine = \"none\"") from e
        self._frate = float(self._dec.config["frate"] or 100)
        if final_pass not in ("batch", "stream", "batch-only"):
            raise ValueError("final_pass must be 'batch', 'stream' or 'batch-only'")
        self.final_pass = final_pass
        self._buf: list[np.ndarray] = []
        self._utt: int | None = None
        self._start_sample = 0
        self._n = 0  # samples of the current utterance

    def start_utterance(self, utterance: int, start_sample: int) -> None:
        if self._utt is not None:
            self.end_utterance()
        self._utt = utterance
        self._start_sample = int(start_sample)
        self._n = 0
        self._buf = []
        if self.final_pass != "batch-only":
            self._dec.start_utt()

    def accept(self, audio_int16: np.ndarray) -> str:
        if self._utt is None:
            raise RuntimeError("accept() before start_utterance()")
        data = as_int16(audio_int16)
        if len(data):
            self._n += len(data)
            if self.final_pass != "stream":
                self._buf.append(data)
            if self.final_pass == "batch-only":
                return ""
            self._dec.process_raw(data.tobytes(), False, False)
        hyp = self._dec.hyp()
        return " ".join(clean_word(w) for w in hyp.hypstr.split()) if hyp is not None else ""

    def end_utterance(self) -> Transcript:
        if self._utt is None:
            raise RuntimeError("end_utterance() before start_utterance()")
        if self.final_pass != "batch-only":
            self._dec.end_utt()
        if self.final_pass != "stream" and self._n:
            self._dec.start_utt()
            self._dec.process_raw(np.concatenate(self._buf).tobytes(), False, True)
            self._dec.end_utt()
        self._buf = []
        start_s = self._start_sample / SAMPLE_RATE
        end_s = start_s + self._n / SAMPLE_RATE
        words = []
        for seg in self._dec.seg():
            if is_filler(seg.word):
                continue
            conf = float(getattr(seg, "prob", 1.0))
            words.append(Word(clean_word(seg.word), start_s + seg.start_frame / self._frate,
                              start_s + (seg.end_frame + 1) / self._frate, conf))
        ws = monotonic_words(words, start_s, end_s)
        t = Transcript(self._utt, start_s, end_s, " ".join(w.text for w in ws), ws)
        self._utt = None
        return t
