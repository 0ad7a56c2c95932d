"""stop() racing the microphone watchdog's reopen, on the real PortAudio path (a PulseAudio pipe source that is
killed and restarted, as in test_mic_reconnect.py).

The only instrument is a gate around ``MicSource._open`` in the watchdog thread: it holds the reopen until
stop() has been called, so stop lands inside the reopen path every time instead of by luck. After stop()
returns, the watchdog must have ended and every stream it opened must be closed.

The second test gates the watchdog's periodic wait instead: its check runs just after stop() took the stream,
as it can when the wait times out while stop() is running. That is a normal end, not a lost microphone.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from conftest import require_pulseaudio, virtual_mic_tools

pytestmark = pytest.mark.slow

PULSE_VARS = ("XDG_RUNTIME_DIR", "HOME", "PULSE_SERVER")


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_stop_during_the_watchdog_reopen_leaves_no_stream_open(tmp_path, monkeypatch):
    require_pulseaudio()
    folder = tmp_path / "vm"
    mic = virtual_mic_tools.start(folder)
    for k in PULSE_VARS:
        monkeypatch.setenv(k, mic.env[k])
    from monitor.audio import sources

    sd = sources._sd()
    sd._terminate()  # enumerate the devices again with this process's PulseAudio server
    sd._initialize()
    feed_stop = threading.Event()
    feeder = threading.Thread(target=virtual_mic_tools.play, args=(mic, [], feed_stop), daemon=True)
    feeder.start()
    src = sources.MicSource("pulse", retry_s=0.2)
    src.stall_s = 1.0

    real_open = src._open
    in_reopen = threading.Event()
    stop_called = threading.Event()
    opened: list = []  # every stream the watchdog opened

    def gated_open() -> None:
        if threading.current_thread().name == "mic-watchdog":
            in_reopen.set()
            stop_called.wait(20)
            time.sleep(0.5)  # stop() is under way (or, without the lock, already finished)
            real_open()
            opened.append(src._stream)
        else:
            real_open()

    src._open = gated_open
    stopper: threading.Thread | None = None
    try:
        src.start()
        assert _wait(lambda: src.ring.frames_written > 0, 10), "no audio from the virtual microphone"
        feed_stop.set()
        feeder.join(5)
        mic.stop()  # unplugged
        time.sleep(0.5)
        mic = virtual_mic_tools.start(folder)  # plugged back in: the reopen will succeed
        feed_stop = threading.Event()
        feeder = threading.Thread(target=virtual_mic_tools.play, args=(mic, [], feed_stop), daemon=True)
        feeder.start()
        assert in_reopen.wait(20), "the watchdog never tried to reopen the stream"

        returned = threading.Event()

        def do_stop() -> None:
            stop_called.set()
            src.stop()
            returned.set()

        stopper = threading.Thread(target=do_stop, daemon=True)
        stopper.start()
        assert returned.wait(20), "stop() did not return"
        watchdog_alive_after_stop = src._watchdog is not None and src._watchdog.is_alive()
        time.sleep(1.0)  # anything the watchdog still does after stop() returned happens now
        assert not watchdog_alive_after_stop, "the watchdog was still running when stop() returned"
        assert opened, "the gated reopen never ran"
        assert all(s.closed for s in opened), "a stream reopened by the watchdog was left open after stop()"
        assert src._stream is None
    finally:
        stop_called.set()
        if stopper is None:
            src.stop()
        feed_stop.set()
        feeder.join(5)
        mic.stop()
        for s in opened:
            sources.MicSource._close_stream(s)
        if os.environ.get("PULSE_SERVER"):
            monkeypatch.undo()
            sd._terminate()
            sd._initialize()


class _WaitThenLetStopRun(threading.Event):
    """The watchdog's ``_stopping`` event. Its first wait in the watchdog thread runs ``stop_in_thread`` and returns
    False (a timeout) only once stop() has set the event and taken the stream: the interleaving of a wait that
    times out while stop() is running."""

    def __init__(self, src, stop_in_thread) -> None:
        super().__init__()
        self.src, self.stop_in_thread, self.fired = src, stop_in_thread, False

    def wait(self, timeout=None):  # noqa: ANN001, ANN201
        if threading.current_thread().name == "mic-watchdog" and not self.fired:
            self.fired = True
            self.stop_in_thread()
            assert _wait(lambda: self.is_set() and self.src._stream is None, 10), "stop() did not take the stream"
            return False
        return super().wait(timeout)


def test_stop_racing_the_watchdog_check_is_not_a_lost_microphone(tmp_path, monkeypatch):
    require_pulseaudio()
    mic = virtual_mic_tools.start(tmp_path / "vm")
    for k in PULSE_VARS:
        monkeypatch.setenv(k, mic.env[k])
    from monitor.audio import sources

    sd = sources._sd()
    sd._terminate()  # enumerate the devices again with this process's PulseAudio server
    sd._initialize()
    feed_stop = threading.Event()
    feeder = threading.Thread(target=virtual_mic_tools.play, args=(mic, [], feed_stop), daemon=True)
    feeder.start()
    src = sources.MicSource("pulse")
    returned = threading.Event()

    def stop_in_thread() -> None:
        def run() -> None:
            src.stop()
            returned.set()

        threading.Thread(target=run, daemon=True).start()

    src._stopping = _WaitThenLetStopRun(src, stop_in_thread)
    try:
        src.start()
        assert returned.wait(20), "stop() did not return"
        assert src._stopping.fired, "the watchdog never waited"
        assert not src._watchdog.is_alive()
        assert src.error is None, f"a normal stop was reported as {src.error!r}"
        assert src.reconnects == 0
    finally:
        if not returned.is_set():
            src.stop()
        feed_stop.set()
        feeder.join(5)
        mic.stop()
        monkeypatch.undo()
        sd._terminate()
        sd._initialize()
