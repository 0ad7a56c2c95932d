"""A source fed from outside: another thread pushes raw s16le PCM (a browser's microphone over a WebSocket).

It is a live source like the microphone: the pipeline's reader converts the pushed rate and channels to 16 kHz
mono; a block that does not fit in the ring (the pipeline fell behind by ``ring_seconds``) is dropped and
counted, never waited for, so the pusher never blocks. ``stop()`` (or ``end()``) closes the ring: the pipeline
drains what was pushed and finishes.
"""

from __future__ import annotations

import threading

import numpy as np

from monitor.audio.sources import Source
from monitor.errors import AudioError


class PushSource(Source):
    realtime = True

    def __init__(self, rate: int = 16000, channels: int = 1, ring_seconds: float = 20.0,
                 description: str = "pushed PCM") -> None:
        super().__init__(ring_seconds)
        if not (8000 <= rate <= 192000) or not (1 <= channels <= 8):
            raise AudioError(f"pushed audio must be 8000..192000 Hz and 1..8 channels (got {rate} Hz, {channels} ch)")
        self.rate = rate
        self.channels = channels
        self.description = f"{description} ({rate} Hz, {channels} ch)"
        self._rest = b""
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        self._make_ring()

    def push(self, data: bytes) -> bool:
        """Append raw little-endian int16 frames (a partial frame is kept for the next push). False if dropped
        or after stop."""
        assert self.ring is not None, "start() first"
        if self.ring.closed:
            return False
        frame = 2 * self.channels
        with self._lock:
            data = self._rest + data
            usable = len(data) - len(data) % frame
            self._rest = data[usable:]
            if usable == 0:
                return True
            block = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, self.channels)
            if not self._started:
                self._started = True
                self._anchor_now(len(block))
            ok = self.ring.write(block)
            if not ok:
                self._started = False  # frames were lost: re-anchor the wall clock at the next block
            return ok

    def stop(self) -> None:
        if self.ring is not None:
            self.ring.close()

    @property
    def overflows(self) -> int:
        return 0
