"""Run a transcription engine in a child process.

pocketsphinx holds Python's GIL for the whole of each ``process_raw`` call (measured: 2 s without a thread
switch while decoding 1 s of audio on a loaded machine), so in a thread it would stall the emotion worker
and the capture reader. ``IsolatedTranscriber`` implements the ``Transcriber`` interface by forwarding every
call over a pipe to a process that owns the real engine; waiting on the pipe releases the GIL. The model is
loaded in the child, so the monitor process stays small and starts fast.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from monitor.errors import TranscriberError
from monitor.transcription.base import Transcript


def _send(conn: Connection, message: tuple) -> bool:
    """Send to the parent; False once it has gone (then the child just ends, quietly)."""
    try:
        conn.send(message)
        return True
    except (BrokenPipeError, EOFError, OSError):
        return False


def _serve(conn: Connection, engine: str, vosk_model_path: str | None, sphinx_warp_search: bool = True) -> None:
    # Ctrl-C in a terminal signals the whole process group: the parent decides when this process ends (it
    # still has the last utterance to decode while the monitor shuts down).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        from monitor.transcription.factory import make_transcriber

        transcriber, note = make_transcriber(engine, vosk_model_path, sphinx_warp_search=sphinx_warp_search)
    except Exception as exc:  # reported to the parent as one line
        _send(conn, ("error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        return
    if transcriber is None:
        _send(conn, ("none", note))
        return
    if not _send(conn, ("ready", (transcriber.name, note))):
        return
    while True:
        try:
            op, arg = conn.recv()
        except (EOFError, OSError):
            return
        if op == "quit":
            return
        try:
            if op == "start":
                transcriber.start_utterance(*arg)
                reply: tuple = ("ok", None)
            elif op == "accept":
                reply = ("ok", transcriber.accept(arg))
            elif op == "end":
                reply = ("ok", transcriber.end_utterance())
            else:
                reply = ("error", f"unknown request {op!r}")
        except Exception as exc:
            reply = ("error", str(exc))
        if not _send(conn, reply):
            return


class IsolatedTranscriber:
    """A ``Transcriber`` whose engine lives in a child process (see the module docstring)."""

    def __init__(self, engine: str, vosk_model_path: str | None = None, start_timeout: float = 120.0,
                 sphinx_warp_search: bool = True) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, engine, vosk_model_path, sphinx_warp_search),
                                 daemon=True, name=f"transcriber-{engine}")
        self._start_ignoring_signals()
        child.close()
        if not self._conn.poll(start_timeout):
            self.close()
            raise TranscriberError(f"the {engine} transcriber did not start within {start_timeout:.0f} s")
        try:
            kind, payload = self._conn.recv()
        except EOFError:
            self.close()
            raise TranscriberError(f"the {engine} transcriber process died while starting") from None
        if kind == "error":
            self.close()
            raise TranscriberError(payload)
        if kind == "none":
            self.close()
            self.name, self.note, self.enabled = "none", payload, False
            return
        self.name, self.note = payload
        self.enabled = True

    def _start_ignoring_signals(self) -> None:
        """Start the child with SIGINT/SIGTERM ignored from its first instruction (inherited over exec)."""
        if threading.current_thread() is not threading.main_thread():
            self._proc.start()
            return
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            self._proc.start()
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)

    def _call(self, op: str, arg: Any) -> Any:
        try:
            self._conn.send((op, arg))
            kind, payload = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            raise TranscriberError(f"the {self.name} transcriber process has stopped") from None
        if kind == "error":
            raise TranscriberError(f"{self.name}: {payload}")
        return payload

    def start_utterance(self, utterance: int, start_sample: int) -> None:
        self._call("start", (utterance, start_sample))

    def accept(self, audio_int16: np.ndarray) -> str:
        return self._call("accept", np.ascontiguousarray(audio_int16, dtype=np.int16))

    def end_utterance(self) -> Transcript:
        return self._call("end", None)

    def close(self) -> None:
        try:
            if self._proc.is_alive():
                self._conn.send(("quit", None))
        except (OSError, BrokenPipeError):
            pass
        self._proc.join(2.0)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(2.0)
        self._conn.close()
