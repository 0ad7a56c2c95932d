"""Audio sources: microphone (sounddevice callback), file (optionally paced in real time), stdin (raw s16le).

Every source writes raw frames in its own rate and channel count into a ``RingBuffer``; the pipeline's
reader converts them to 16 kHz mono (``StreamConverter``). Each source also records clock anchors (stream
sample -> wall-clock time) so events carry the wall-clock time their audio was captured, even across a
microphone that was unplugged and came back.
"""

from __future__ import annotations

import os
import select
import stat
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitor.audio import media
from monitor.audio.convert import decode_problem, float_to_int16
from monitor.audio.ringbuffer import RingBuffer
from monitor.errors import AudioError
from monitor.events import AudioGap
from monitor.invocation import command_hint
from monitor.paths import FILE, FOLDER, MISSING, access_problem, path_kind

PIPELINE_RATE = 16000


GAP_S = 0.2  # a jump of the capture clock larger than this between two anchors is audio lost
# PortAudio's capture timestamps (through PulseAudio) jitter by a few hundred ms on a busy machine without any
# audio being lost: only a larger jump, with no overflow flag, counts as audio the sound system lost.
ADC_JUMP_S = 1.0


@dataclass
class Clock:
    """Maps pipeline sample positions (16 kHz) to wall-clock seconds by anchors set at (re)starts.

    A new anchor whose wall time is later than the previous anchor predicts means audio was lost in
    between (a reconnect, an overrun): it is recorded in ``gaps``, so lost audio is always counted.
    """

    anchors: list[tuple[int, float]] = field(default_factory=list)
    gaps: list[AudioGap] = field(default_factory=list)

    def anchor(self, sample: int, wall: float, reason: str = "audio lost") -> None:
        if self.anchors:
            expected = self.wall(sample)
            if wall - expected > GAP_S:
                self.gaps.append(AudioGap(sample / PIPELINE_RATE, expected, wall, reason))
        self.anchors.append((sample, wall))

    @property
    def lost_s(self) -> float:
        return sum(g.seconds for g in self.gaps)

    def wall(self, sample: int) -> float:
        if not self.anchors:
            return time.time()
        base_sample, base_wall = self.anchors[0]
        for s, w in self.anchors:
            if s <= sample:
                base_sample, base_wall = s, w
        return base_wall + (sample - base_sample) / PIPELINE_RATE


class Source:
    """Base: a ring buffer, a clock, a description, start/stop."""

    rate: int = PIPELINE_RATE
    channels: int = 1
    description: str = ""
    realtime: bool = True  # produces audio at the pace of a clock (the ring may overrun)

    def __init__(self, ring_seconds: float = 20.0) -> None:
        self.ring_seconds = ring_seconds
        self.ring: RingBuffer | None = None
        self.clock = Clock()
        self.error: str | None = None
        self.reconnects = 0

    def _make_ring(self) -> None:
        self.ring = RingBuffer(int(self.rate * self.ring_seconds), self.channels)

    def _anchor_now(self, ago_s: float = 0.0, reason: str = "audio lost") -> None:
        """Anchor the ring's current write position to the time its next sample was captured (``ago_s``
        seconds ago); a jump against the previous anchor is recorded as a gap, for ``reason``."""
        assert self.ring is not None
        sample = int(round(self.ring.frames_written * PIPELINE_RATE / self.rate))
        self.clock.anchor(sample, time.time() - ago_s, reason)

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def overflows(self) -> int:
        return 0


# --- microphone -------------------------------------------------------------------------------------


def _sd() -> Any:
    try:
        import sounddevice as sd
    except OSError:
        raise AudioError(
            "PortAudio is not installed: run `sudo apt-get install libportaudio2` (or use --file / --stdin)"
        ) from None
    return sd


def input_devices() -> list[dict]:
    """The input devices PortAudio sees: dicts with index, name, max_input_channels, default_samplerate."""
    sd = _sd()
    return [dict(d) for d in sd.query_devices() if d["max_input_channels"] > 0]


def describe_devices() -> str:
    devs = input_devices()
    if not devs:
        return "no input devices found"
    return ", ".join(f"[{d['index']}] {d['name']}" for d in devs)


def resolve_device(device: str | int | None) -> dict:
    """A device index, a (case-insensitive) part of its name, or None for the default input device."""
    sd = _sd()
    devs = input_devices()
    if not devs:
        raise AudioError(
            f"no microphone found (no input devices); try {command_hint('demo')}, --file PATH or --stdin"
        )
    if device is None or device == "":
        try:
            default = sd.default.device[0]
        except (TypeError, IndexError):
            default = -1
        for d in devs:
            if d["index"] == default:
                return d
        return devs[0]
    if isinstance(device, int) or str(device).isdigit():
        idx = int(device)
        for d in devs:
            if d["index"] == idx:
                return d
        raise AudioError(f"input device {idx} does not exist; input devices: {describe_devices()}")
    matches = [d for d in devs if str(device).lower() in d["name"].lower()]
    exact = [d for d in matches if d["name"].lower() == str(device).lower()]
    if exact:
        return exact[0]
    if not matches:
        raise AudioError(f"no input device matches {device!r}; input devices: {describe_devices()}")
    return matches[0]


class MicSource(Source):
    """A sounddevice InputStream whose callback only copies into the ring buffer.

    It opens the device at 16 kHz mono when the device accepts that, else at the device's default rate and
    a channel count it supports (the reader converts). If the stream dies (device unplugged), a watchdog
    reopens it every ``retry_s`` seconds until it comes back.
    """

    def __init__(self, device: str | int | None = None, block_ms: int = 20, ring_seconds: float = 20.0,
                 retry_s: float = 2.0) -> None:
        super().__init__(ring_seconds)
        self.device_spec = device
        self.block_ms = block_ms
        self.retry_s = retry_s
        info = resolve_device(device)
        self.device_index = int(info["index"])
        self.device_name = str(info["name"])
        self.rate, self.channels = self._choose_settings(info)
        self.description = f"{self.device_name} ({self.rate} Hz, {self.channels} ch)"
        self._stream: Any = None
        self._stopping = threading.Event()
        # Opening a stream (start, the watchdog's reopen) and stop() are mutually exclusive: a stream is only
        # opened under this lock after checking ``_stopped``, which stop() sets under it.
        self._lock = threading.Lock()
        self._stopped = False
        self._watchdog: threading.Thread | None = None
        self._status_overflows = 0
        self._reanchor: str | None = "start"  # anchor the clock at the next callback, for this reason
        self._adc_next = 0.0  # capture time (PortAudio's clock) the next block should start at
        # No callback for this long, counted only while the watchdog itself runs on time (a machine too busy
        # to schedule this process is not a lost device): the device is gone even if PortAudio says active.
        self.stall_s = 3.0
        self._callbacks = 0

    def _choose_settings(self, info: dict) -> tuple[int, int]:
        sd = _sd()
        candidates = [(PIPELINE_RATE, 1), (int(info["default_samplerate"]), 1)]
        max_ch = int(info["max_input_channels"])
        candidates += [(int(info["default_samplerate"]), min(2, max_ch)), (int(info["default_samplerate"]), max_ch)]
        for rate, ch in candidates:
            try:
                sd.check_input_settings(device=self.device_index, channels=ch, samplerate=rate, dtype="int16")
                return rate, ch
            except Exception:  # PortAudio raises PortAudioError or ValueError for unsupported settings
                continue
        raise AudioError(f"input device {self.device_name!r} accepts none of the usual formats (16-bit PCM)")

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._callbacks += 1
        adc, now = float(time_info.inputBufferAdcTime or 0.0), float(time_info.currentTime or 0.0)
        # How long ago this block's first sample was captured (late delivery after a busy spell is not loss).
        ago = now - adc if adc > 0 and 0 <= now - adc <= 30 else frames / self.rate
        if status.input_overflow:
            self._status_overflows += 1
            self._reanchor = "input overflow (the machine was too busy)"
        elif self._adc_next > 0 and adc - self._adc_next > ADC_JUMP_S:
            self._reanchor = "audio lost by the sound system"
        self._adc_next = adc + frames / self.rate if adc > 0 else 0.0
        if self._reanchor is not None:
            self._anchor_now(ago, self._reanchor)
            self._reanchor = None
        if not self.ring.write(indata):  # type: ignore[union-attr]  # copies; drops and counts when full
            self._reanchor = "buffer full (the pipeline fell behind)"

    def _open(self) -> None:
        sd = _sd()
        self._adc_next = 0.0
        self._stream = sd.InputStream(
            samplerate=self.rate,
            blocksize=int(self.rate * self.block_ms / 1000),
            device=self.device_index,
            channels=self.channels,
            dtype="int16",
            callback=self._callback,
        )
        self._stream.start()

    def start(self) -> None:
        self._make_ring()
        with self._lock:
            if self._stopped:
                raise AudioError(f"input device {self.device_name!r}: the source was stopped; make a new one")
            try:
                self._open()
            except Exception as exc:  # PortAudioError: device busy, vanished...
                raise AudioError(f"cannot open input device {self.device_name!r}: {exc}") from None
        self._watchdog = threading.Thread(target=self._watch, name="mic-watchdog", daemon=True)
        self._watchdog.start()

    def _take_stream(self) -> Any:
        with self._lock:
            stream, self._stream = self._stream, None
        return stream

    def _close_bounded(self, stream: Any) -> None:
        # A device that delivers no more callbacks can make PortAudio's stop hang: never wait long.
        closer = threading.Thread(target=self._close_stream, args=(stream,), daemon=True)
        closer.start()
        closer.join(2.0)

    def _stalled(self, tick_s: float = 0.5) -> Any:
        """A generator: each next() (one per watchdog tick) says whether the stream has stalled.

        Seconds without a callback count only for ticks that came on time: when the whole process was not
        scheduled (an overloaded machine, a suspended process), PortAudio keeps capturing and delivers the
        backlog afterwards, and closing the stream then would lose audio."""
        seen, quiet, last = self._callbacks, 0.0, time.monotonic()
        while True:
            now = time.monotonic()
            step, last = now - last, now
            if self._callbacks != seen:
                seen, quiet = self._callbacks, 0.0
            elif step <= 3 * tick_s:
                quiet += step
            yield quiet > self.stall_s

    def _watch(self) -> None:
        stalls = self._stalled()
        while not self._stopping.wait(0.5):
            stream = self._stream
            stalled = next(stalls)
            if stream is not None and stream.active and not stalled:
                continue
            if self._stopping.is_set():
                return  # stop() took or closed the stream (it sets _stopping first): not a lost microphone
            self.error = "microphone lost; reconnecting"
            stream = self._take_stream()
            if stream is not None:
                self._close_bounded(stream)
            if self._stopping.wait(self.retry_s):
                return
            with self._lock:  # stop() cannot run between the check and the open
                if self._stopped:
                    return
                try:
                    _sd()._terminate()
                    _sd()._initialize()
                    info = resolve_device(self.device_spec)
                    self.device_index = int(info["index"])
                    self._reanchor = "microphone lost"
                    self._open()
                except Exception:
                    continue
                stalls = self._stalled()
                self.reconnects += 1
                self.error = None

    def stop(self) -> None:
        """Close the stream and end the watchdog. When this returns no stream is open and none will be
        (a reopen in progress is waited for, then closed)."""
        self._stopping.set()
        with self._lock:
            self._stopped = True
            stream, self._stream = self._stream, None
        if stream is not None:
            self._close_bounded(stream)
        watchdog = self._watchdog
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join()  # its waits end at once on _stopping; a close it started is bounded (2 s)
        if self.ring is not None:
            self.ring.close()

    @staticmethod
    def _close_stream(stream: Any) -> None:
        try:
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)
        except Exception:
            pass

    @property
    def overflows(self) -> int:
        return self._status_overflows


class ThreadedSource(Source):
    """A source whose own thread reads (a file, a pipe) and writes into the ring until it ends."""

    thread_name = "source"

    def __init__(self, ring_seconds: float) -> None:
        super().__init__(ring_seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()

    def start(self) -> None:
        self._make_ring()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        if self.ring is not None:
            self.ring.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


# --- file -------------------------------------------------------------------------------------------


class FileSource(ThreadedSource):
    """Any file libsndfile reads, at any rate and channel count; paced in real time if asked."""

    thread_name = "file-source"

    def __init__(self, path: str | Path, realtime: bool = False, block_ms: int = 20, ring_seconds: float = 20.0,
                 loop: bool = False) -> None:
        import soundfile as sf

        super().__init__(ring_seconds)
        self.path = Path(path)
        self.realtime = realtime
        self.loop = loop
        try:
            kind = path_kind(self.path)
        except OSError as exc:
            raise AudioError(f"{self.path}: cannot access it: {access_problem(exc)}") from None
        if kind != FILE:
            what = {MISSING: "no such file", FOLDER: "is a folder, not an audio file"}.get(kind, "not a regular file")
            raise AudioError(f"{self.path}: {what}")
        try:
            with open(self.path, "rb"):  # libsndfile would only say "System error"
                pass
        except OSError as exc:
            raise AudioError(f"{self.path}: cannot read it: {access_problem(exc)}") from None
        self.media = False  # decoded by PyAV (monitor.audio.media): a format libsndfile does not read
        refused = None
        try:
            with sf.SoundFile(str(self.path)) as f:
                self.rate, self.channels, frames = int(f.samplerate), int(f.channels), f.frames
        except Exception as exc:
            refused = decode_problem(exc)
        if refused is not None:
            probe = media.open_refused(self.path, refused)
            probe.close()
            self.rate, self.channels, frames, self.media = probe.rate, probe.channels, -1, True
        if frames == 0:
            raise AudioError(f"{self.path}: the file holds no audio samples")
        self.block = max(1, int(self.rate * block_ms / 1000))
        self.description = f"file {self.path.name} ({self.rate} Hz, {self.channels} ch)"

    def _float_blocks(self) -> Iterator[np.ndarray]:
        """One pass over the file as float32 (frames, channels) blocks: libsndfile does not scale float or double
        files to int16, so they are read as float and scaled; PyAV's samples are float already."""
        if self.media:
            yield from media.MediaFile(self.path).blocks()
            return
        import soundfile as sf

        with sf.SoundFile(str(self.path)) as f:
            yield from f.blocks(blocksize=self.block, dtype="float32", always_2d=True)

    def _run(self) -> None:
        assert self.ring is not None
        try:
            t0 = time.monotonic()
            self._anchor_now()
            written = 0
            while not self._stop.is_set():
                for samples in self._float_blocks():
                    if self._stop.is_set():
                        break
                    block = float_to_int16(samples)
                    if self.realtime:
                        self.ring.write(block)
                        written += len(block)
                        delay = t0 + written / self.rate - time.monotonic()
                        if delay > 0:
                            self._stop.wait(delay)
                    else:
                        self.ring.write_wait(block)
                if not self.loop:
                    break
        except AudioError as exc:  # one line that names the file already
            self.error = str(exc)
        except Exception as exc:
            self.error = f"{self.path}: read error ({str(exc).splitlines()[0]})"
        finally:
            self.finished.set()
            self.ring.close()



# --- stdin ------------------------------------------------------------------------------------------


class StdinSource(ThreadedSource):
    """Raw signed 16-bit little-endian PCM on standard input (``arecord -f S16_LE -r 16000 -c 1 | ...``)."""

    thread_name = "stdin-source"

    def __init__(self, rate: int = PIPELINE_RATE, channels: int = 1, block_ms: int = 20,
                 ring_seconds: float = 20.0, stream: Any = None) -> None:
        super().__init__(ring_seconds)
        if rate <= 0 or channels <= 0:
            raise AudioError("stdin rate and channels must be positive")
        self.rate = rate
        self.channels = channels
        self._fd = _open_stdin(stream)
        # A pipe or a terminal delivers audio as it is captured; a file redirected to stdin can be read as
        # fast as the pipeline goes, without dropping windows (like --file).
        self.realtime = not stat.S_ISREG(os.fstat(self._fd).st_mode)
        self.block_bytes = max(2 * channels, int(rate * block_ms / 1000) * 2 * channels)
        self.description = f"stdin (s16le, {rate} Hz, {channels} ch)"

    def _run(self) -> None:
        assert self.ring is not None
        frame_bytes = 2 * self.channels
        rest = b""
        first = True
        try:
            while not self._stop.is_set():
                # Wait for data with a timeout and read the descriptor directly: a thread blocked in
                # sys.stdin.buffer.read() holds its lock and aborts the interpreter at exit (a quiet producer).
                if not select.select([self._fd], [], [], 0.2)[0]:
                    continue
                data = os.read(self._fd, self.block_bytes)
                if not data:
                    break
                data = rest + data
                usable = len(data) - len(data) % frame_bytes
                rest = data[usable:]
                block = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, self.channels)
                if first:
                    first = False
                    self._anchor_now(len(block) / self.rate)
                self.ring.write_wait(block)
        except (OSError, ValueError) as exc:
            self.error = f"stdin read error ({exc})"
        finally:
            self.finished.set()
            self.ring.close()


def _open_stdin(stream: Any) -> int:
    """The file descriptor of ``stream`` (default: standard input); a closed one is a one-line AudioError."""
    if stream is None:
        stream = sys.stdin
    try:
        fd = stream.fileno()
        os.fstat(fd)
    except (AttributeError, OSError, ValueError):
        raise AudioError(
            "standard input is closed: pipe raw s16le audio into --stdin "
            "(e.g. `arecord -f S16_LE -r 16000 -c 1 | voice-monitor --stdin`)"
        ) from None
    return fd
