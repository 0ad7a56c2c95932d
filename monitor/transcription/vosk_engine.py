"""Vosk (Kaldi) streaming recogniser: the default engine.

One ``KaldiRecognizer`` is kept for the whole stream (creating one costs ~0.5 s). Vosk reports word times
from the first sample the recogniser ever received (it keeps counting across ``FinalResult``), so the
engine counts the samples it has fed and converts: stream time = utterance start + (vosk time - samples fed
before the utterance). ``vosk`` is imported lazily: the package works without it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from monitor.errors import TranscriberError
from monitor.events import Word
from monitor.transcription.base import SAMPLE_RATE, Transcript, as_int16, monotonic_words
from monitor.transcription.models import how_to_get_model, vosk_layout_problem

_LOAD_LOCK = threading.Lock()
# resolved path -> (signature, vosk.Model): a model is large and read-only, so engines share it
_MODELS: dict[str, tuple[str, Any]] = {}
_FILLERS = {"<unk>", "[unk]", "<eps>", "[noise]", "[laughter]", "<sil>"}


def import_vosk() -> Any:
    try:
        import vosk
    except ImportError as e:  # pragma: no cover - vosk is a dependency
        raise TranscriberError(f"the vosk package is not installed ({e}): pip install vosk, or use "
                               f"[transcriber] engine = \"pocketsphinx\"") from e
    vosk.SetLogLevel(-1)
    return vosk


class _StderrCapture:
    """Catch what C++ writes to fd 2 while loading (Kaldi's ERROR lines ignore SetLogLevel), to give the
    user one line instead of a spray of C++ logs."""

    def __enter__(self) -> _StderrCapture:
        self.text = ""
        self._file = tempfile.TemporaryFile(mode="w+b")
        try:
            self._saved: int | None = os.dup(2)
            os.dup2(self._file.fileno(), 2)
        except OSError:
            self._saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        self._file.seek(0)
        self.text = self._file.read().decode("utf-8", "replace")
        self._file.close()

    def last_error(self) -> str:
        lines = [ln.strip() for ln in self.text.splitlines() if "ERROR" in ln]
        if not lines:
            return ""
        return re.sub(r"^ERROR(?: \([^)]*\))?:?\s*", "", lines[0])[:200]


def _signature(path: Path) -> str:
    """The model cache key: the folder and the size and time of every file in it (a model replaced on disk is
    loaded again)."""
    parts = [str(path.resolve())]
    for f in sorted(path.rglob("*")):
        try:
            st = f.stat()
        except OSError:
            continue
        if f.is_file():
            parts.append(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def load_vosk_model(path: str | os.PathLike[str]) -> Any:
    """A ``vosk.Model`` for ``path`` (cached per path), checked by building a recogniser on it.

    Raises TranscriberError (one line naming the path and what to do) for a missing folder, a folder that is not
    a Vosk model, or a model that Vosk cannot load (corrupt or truncated files).
    """
    p = Path(path).expanduser()
    problem = vosk_layout_problem(p)
    if problem:
        raise TranscriberError(f"Vosk model path {p} {problem}: {how_to_get_model()}")
    key = _signature(p)
    where = str(p.resolve())
    with _LOAD_LOCK:
        cached = _MODELS.get(where)
        if cached is not None and cached[0] == key:
            return cached[1]
        _MODELS.pop(where, None)  # replaced on disk: load it again
        vosk = import_vosk()
        with _StderrCapture() as cap:
            try:
                model = vosk.Model(where)
                rec = vosk.KaldiRecognizer(model, SAMPLE_RATE)  # a bad graph only shows up here
                rec.AcceptWaveform(np.zeros(SAMPLE_RATE // 10, dtype=np.int16).tobytes())
                rec.FinalResult()
                del rec
                err = None
            except Exception as e:  # vosk raises a bare Exception("Failed to create a model")
                err = e
        if err is not None:
            detail = cap.last_error() or str(err)
            raise TranscriberError(f"Vosk cannot load the model at {p} ({detail}): it is corrupt or incomplete; "
                                   f"delete it and {how_to_get_model()}") from err
        _MODELS[where] = (key, model)
        return model


class VoskTranscriber:
    """Streaming Vosk recogniser with word times in stream seconds. Use from one thread."""

    name = "vosk"

    def __init__(self, model_path: str | os.PathLike[str], *, partial_every_s: float = 0.0) -> None:
        vosk = import_vosk()
        self.model_path = Path(model_path)
        self.model = load_vosk_model(model_path)
        self._rec = vosk.KaldiRecognizer(self.model, SAMPLE_RATE)
        self._rec.SetWords(True)
        self._fed = 0  # samples fed to the recogniser over its lifetime (Vosk's time base)
        self._utt_base = 0  # value of _fed when the current utterance started
        self._utt: int | None = None
        self._start_sample = 0
        self._words: list[Word] = []
        self._partial = ""
        self._partial_every = int(partial_every_s * SAMPLE_RATE)
        self._since_partial = 0

    @property
    def label(self) -> str:
        return f"vosk ({self.model_path.name})"

    def start_utterance(self, utterance: int, start_sample: int) -> None:
        if self._utt is not None:
            self.end_utterance()
        self._utt = utterance
        self._start_sample = int(start_sample)
        self._utt_base = self._fed
        self._words = []
        self._partial = ""
        self._since_partial = 0

    def _collect(self, result_json: str) -> None:
        res = json.loads(result_json)
        offset = self._start_sample / SAMPLE_RATE - self._utt_base / SAMPLE_RATE
        for w in res.get("result", ()):
            text = str(w.get("word", "")).strip()
            if not text or text.lower() in _FILLERS:
                continue
            self._words.append(Word(text, float(w["start"]) + offset, float(w["end"]) + offset,
                                    float(w.get("conf", 1.0))))

    def _text(self) -> str:
        done = " ".join(w.text for w in self._words)
        return f"{done} {self._partial}".strip()

    def accept(self, audio_int16: np.ndarray) -> str:
        if self._utt is None:
            raise RuntimeError("accept() before start_utterance()")
        data = as_int16(audio_int16)
        if not len(data):
            return self._text()
        self._fed += len(data)
        self._since_partial += len(data)
        if self._rec.AcceptWaveform(data.tobytes()):
            self._collect(self._rec.Result())  # Vosk found an endpoint inside the utterance
            self._partial = ""
            self._since_partial = 0
        elif self._since_partial >= self._partial_every:
            self._partial = str(json.loads(self._rec.PartialResult()).get("partial", ""))
            self._since_partial = 0
        return self._text()

    def end_utterance(self) -> Transcript:
        if self._utt is None:
            raise RuntimeError("end_utterance() before start_utterance()")
        self._collect(self._rec.FinalResult())
        start_s = self._start_sample / SAMPLE_RATE
        end_s = start_s + (self._fed - self._utt_base) / SAMPLE_RATE
        words = monotonic_words(self._words, start_s, end_s)
        t = Transcript(self._utt, start_s, end_s, " ".join(w.text for w in words), words)
        self._utt = None
        self._words = []
        self._partial = ""
        return t
