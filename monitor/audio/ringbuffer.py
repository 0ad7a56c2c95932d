"""A fixed-capacity ring buffer of audio frames between a producer (audio callback) and one consumer.

The producer never waits: a block that does not fit is dropped whole and counted (``dropped_blocks``), so
an overrun is always visible. The lock is held only for the copy.
"""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    def __init__(self, capacity_frames: int, channels: int = 1, dtype: type = np.int16) -> None:
        if capacity_frames <= 0 or channels <= 0:
            raise ValueError("capacity and channels must be positive")
        self.capacity = int(capacity_frames)
        self.channels = int(channels)
        self._data = np.zeros((self.capacity, self.channels), dtype=dtype)
        self._read = 0  # total frames read
        self._write = 0  # total frames written
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self.dropped_blocks = 0
        self.dropped_frames = 0
        self.blocks = 0

    @property
    def available(self) -> int:
        return self._write - self._read

    @property
    def frames_written(self) -> int:
        """Total frames accepted (the stream position of the next frame to be written)."""
        return self._write

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, block: np.ndarray) -> bool:
        """Copy ``block`` (frames, channels) or (frames,) in; False (and counted) if it does not fit."""
        n = len(block)
        if n == 0:
            return True
        with self._cond:
            self.blocks += 1
            if self._write - self._read + n > self.capacity:
                self.dropped_blocks += 1
                self.dropped_frames += n
                return False
            start = self._write % self.capacity
            first = min(n, self.capacity - start)
            src = block.reshape(n, -1)
            self._data[start : start + first] = src[:first]
            if first < n:
                self._data[: n - first] = src[first:]
            self._write += n
            self._cond.notify()
        return True

    def write_wait(self, block: np.ndarray, timeout: float | None = None) -> bool:
        """For sources that can wait (files, stdin): block until there is room, then write."""
        n = len(block)
        if n > self.capacity:
            half = n // 2
            return self.write_wait(block[:half], timeout) and self.write_wait(block[half:], timeout)
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or self.capacity - self.available >= n, timeout):
                return False
            if self._closed:
                return False
        return self.write(block)

    def read(self, max_frames: int, timeout: float | None = None) -> np.ndarray | None:
        """Up to ``max_frames`` frames (frames, channels); empty on timeout; None once closed and drained."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.available > 0 or self._closed, timeout):
                return self._data[:0].copy()
            n = min(self.available, max_frames)
            if n == 0:
                return None
            start = self._read % self.capacity
            first = min(n, self.capacity - start)
            out = np.empty((n, self.channels), dtype=self._data.dtype)
            out[:first] = self._data[start : start + first]
            if first < n:
                out[first:] = self._data[: n - first]
            self._read += n
            self._cond.notify_all()
        return out

    def close(self) -> None:
        """No more writes: readers drain what is left, then get None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
