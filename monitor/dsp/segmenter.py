"""Speech segmentation: 16 kHz int16 audio in blocks of any size -> utterances -> 3 s analysis windows.

``Segmenter`` is the streaming form (``feed`` blocks as they arrive, ``flush`` at the end); ``segment_audio``
is the offline form over the same logic. Frames sit at fixed positions from the start of the stream, so the
windows do not depend on how the audio was chunked.

An utterance starts when ``onset_frames`` of the last ``onset_frames + 2`` frames are speech; it begins
``pre_pad_ms`` before its first speech frame, so word onsets are kept. It ends after ``hangover_ms`` of
non-speech and keeps ``post_pad_ms`` after its last speech frame. Windows:

- while speech goes on, a full window is emitted as soon as ``window_s`` of audio has arrived, then one
  every ``hop_s``;
- when the utterance ends: an utterance shorter than a window becomes one short window (the features
  centre it, zero-padded) if its speech (first to last speech frame) lasts at least ``min_speech_s``, or at
  least ``short_speech_s`` when its audio is voiced like speech (``monitor.dsp.voiced``: a "yes", a name; a
  click, a cough or a knock of that length is not); otherwise, if at least ``min_speech_s`` of it is not yet
  covered, a last full window ending at the utterance's end. An utterance shorter than a window during which the
  VAD's noise floor restarted (it had dipped: ``VadOptions.steady_db``) gives a window only if voiced like speech:
  room tone after an unmuted microphone was speech against the dipped floor until the floor came back.

The start of a stream: a frame is speech only when it stands above the noise floor (``monitor.dsp.vad``), and a
stream that is speech from its first sample (a clip cut to its speech) has no quieter frame before it to
measure against. So every frame is decided as it arrives, as always, but the windows and speech of the first
``floor_warmup_s`` are held back until that much audio (or the whole stream, if shorter) has arrived. Then, if
the stream began above its floor (``FrameVad.begins_above_floor``), those seconds are segmented again from the
start with every frame judged against the floor of all of them (``FrameVad.judge_run``), and what that gives
replaces what was held; else what was held is released unchanged. Live, this delays only the windows of what
ends in the first ``floor_warmup_s`` (a full window cannot be cut before ``window_s`` anyway); the level and
speech state shown move as before.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from monitor.dsp.vad import SAMPLE_RATE, STEADY_DB, FrameVad, VadOptions, frame_level_dbfs, frame_levels_dbfs
from monitor.dsp.voiced import speech_like

METER_HOLD_S = 1.0  # the level meter holds the loudest speech frame this long while in an utterance
METER_HOLD = int(METER_HOLD_S * SAMPLE_RATE)
# The monitor's ``short_speech_s`` (config ``[windows]``, ``SegmenterOptions.monitor``); ``SegmenterOptions``
# itself defaults to 0, the windows the emotion model was trained and evaluated on (training/ cuts them bare).
SHORT_SPEECH_S = 0.25


@dataclass(frozen=True)
class SegmenterOptions:
    vad: VadOptions = field(default_factory=VadOptions)
    window_s: float = 3.0
    hop_s: float = 3.0
    min_speech_s: float = 0.6
    # a shorter utterance whose speech lasts this long still gives a window if voiced like speech; 0 = off (the
    # default here, so training and its evaluation cut windows as before; the monitor uses SHORT_SPEECH_S)
    short_speech_s: float = 0.0
    pre_pad_ms: int = 240
    speech_pre_pad_ms: int = 400  # the transcriber's audio starts this far before the first speech frame
    post_pad_ms: int = 240
    hangover_ms: int = 450
    onset_frames: int = 3
    max_utterance_s: float = 30.0  # a longer utterance is closed and a new one started
    floor_warmup_s: float = 3.0  # the stream's first frames are judged against the floor of this much audio

    @classmethod
    def monitor(cls) -> SegmenterOptions:
        """The monitor's windows without a config (short voiced words too, a dipped noise floor restarted), as
        config.toml's defaults give them."""
        return cls(vad=VadOptions(steady_db=STEADY_DB), short_speech_s=SHORT_SPEECH_S)

    def validate(self) -> None:
        self.vad.validate()
        if self.window_s <= 0 or self.hop_s <= 0:
            raise ValueError("window_s and hop_s must be > 0")
        if not 0 < self.min_speech_s <= self.window_s:
            raise ValueError("min_speech_s must be > 0 and <= window_s")
        if not 0 <= self.short_speech_s <= self.min_speech_s:
            raise ValueError("short_speech_s must be >= 0 (0 = off) and <= min_speech_s")
        if self.post_pad_ms > self.hangover_ms:
            raise ValueError("post_pad_ms must not exceed hangover_ms")
        if self.onset_frames < 1:
            raise ValueError("onset_frames must be >= 1")
        if self.max_utterance_s < self.window_s:
            raise ValueError("max_utterance_s must be >= window_s")
        if not 0 <= self.floor_warmup_s <= self.vad.floor_window_s:
            raise ValueError("floor_warmup_s must be >= 0 and <= the VAD's floor_window_s")


@dataclass
class Window:
    """One analysis window. ``audio`` is the speech it covers (shorter than a window if padded)."""

    index: int
    start_sample: int
    end_sample: int
    audio: np.ndarray
    utterance: int
    final: bool  # the last window of its utterance

    @property
    def start_s(self) -> float:
        return self.start_sample / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end_sample / SAMPLE_RATE


@dataclass
class SpeechChunk:
    """Audio of a running utterance, in order, for the transcriber. ``end`` closes the utterance."""

    utterance: int
    start_sample: int
    audio: np.ndarray
    end: bool = False


@dataclass
class Utterance:
    """A finished stretch of speech (start and end in samples from the start of the stream)."""

    index: int
    start_sample: int
    end_sample: int


class Segmenter:
    """Streaming segmenter. With ``speech_chunks=True`` it also keeps the utterances' audio as it arrives
    (``take_speech``), which the transcriber consumes."""

    def __init__(self, options: SegmenterOptions | None = None, speech_chunks: bool = False) -> None:
        self.options = options or SegmenterOptions()
        self._keep_speech = speech_chunks
        self._speech: list[SpeechChunk] = []
        self._speech_sent_until = 0
        self.options.validate()
        o = self.options
        self.vad = FrameVad(o.vad)
        self.frame = o.vad.frame_samples
        self.window = int(round(o.window_s * SAMPLE_RATE))
        self.hop = int(round(o.hop_s * SAMPLE_RATE))
        self.min_speech = int(round(o.min_speech_s * SAMPLE_RATE))
        self.short_speech = int(round(o.short_speech_s * SAMPLE_RATE))
        self.pre_pad = SAMPLE_RATE * o.pre_pad_ms // 1000
        # The recogniser does better with a little more silence before the first word than the model needs.
        self.speech_pre_pad = SAMPLE_RATE * o.speech_pre_pad_ms // 1000 if speech_chunks else 0
        self.post_pad = SAMPLE_RATE * o.post_pad_ms // 1000
        self.hangover_frames = max(1, -(-o.hangover_ms // o.vad.frame_ms))
        self.max_utt = int(round(o.max_utterance_s * SAMPLE_RATE))
        self._pending = np.zeros(0, dtype=np.int16)  # samples not yet forming a whole frame
        self._warmup_frames = int(round(o.floor_warmup_s * SAMPLE_RATE)) // self.frame
        self._warming = self._warmup_frames > 0
        self._warm_frames: list[np.ndarray] = []  # the frames of the warm-up, for a second pass
        self._warm_windows: list[Window] = []  # the windows of the warm-up, held back
        self._pos = 0  # stream position (samples) of the next frame
        # Audio kept: everything from _buf_start on, at least pre_pad back, the whole utterance while in one.
        self._buf = np.zeros(0, dtype=np.int16)
        self._buf_start = 0
        self._recent: deque[tuple[int, bool]] = deque(maxlen=o.onset_frames + 2)
        self._in_speech = False
        self._utt_start = 0
        self._first_speech = 0
        self._last_speech_end = 0
        self._silent_frames = 0
        self._next_window_start = 0
        self._covered_until = 0
        self._windows_in_utt = 0
        self._n_windows = 0
        self._n_utts = 0
        self.utterances: list[Utterance] = []
        self.dropped_short = 0  # utterances shorter than min_speech_s (and not short voiced words)
        # (level dBFS, in speech) for a level meter, one tuple so a reader on another thread sees a matching pair.
        # In an utterance the level shown is the loudest frame the VAD called speech in the last METER_HOLD_S:
        # a pause within the hangover must not show "SPEECH" beside the level of the silence.
        # (stream position, level) of the last speech frames; at most one hold's worth of frames
        self._voiced_levels: deque[tuple[int, float]] = deque(maxlen=-(-METER_HOLD // self.frame))
        self.meter: tuple[float, bool] = (-120.0, False)

    # --- state for dashboards -------------------------------------------------------------------
    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def level_dbfs(self) -> float:
        return self.vad.level_dbfs

    @property
    def position_s(self) -> float:
        return self._pos / SAMPLE_RATE

    # --- streaming ------------------------------------------------------------------------------
    def feed(self, block: np.ndarray) -> list[Window]:
        """Feed int16 mono 16 kHz samples (any count); return the windows completed by them."""
        block = np.asarray(block, dtype=np.int16).reshape(-1)
        data = np.concatenate([self._pending, block]) if len(self._pending) else block
        n_frames = len(data) // self.frame
        used = n_frames * self.frame
        self._pending = data[used:].copy()
        if n_frames == 0:
            return []
        self._buf = np.concatenate([self._buf, data[:used]])
        out: list[Window] = []
        frames = data[:used].reshape(n_frames, self.frame)
        levels = frame_levels_dbfs(frames)  # one numpy call per block
        i = 0
        while i < n_frames:
            # the frames up to the end of the warm-up (which may hand over to another VAD), or all the rest
            n = min(n_frames - i, self._warmup_frames - len(self._warm_frames)) if self._warming else n_frames - i
            speech = self.vad.are_speech(frames[i : i + n], levels[i : i + n])
            for frame, is_speech, level in zip(frames[i : i + n], speech, levels[i : i + n], strict=True):
                if not self._warming:
                    self._step(frame, is_speech, out, level)
                else:
                    self._warm_frames.append(frame.copy())
                    self._step(frame, is_speech, self._warm_windows, level)
            if self._warming and len(self._warm_frames) >= self._warmup_frames:
                self._end_warmup(out)
            i += n
        self._update_meter()  # as after the block's last frame (a reader sees the meter between blocks)
        self._trim()
        return out

    def take_speech(self) -> list[SpeechChunk]:
        """The speech audio produced since the last call, merged into one chunk per utterance and call."""
        if self._warming:
            return []  # held back with the warm-up's windows
        groups: list[tuple[SpeechChunk, list[np.ndarray]]] = []
        for c in self._speech:
            if groups and groups[-1][0].utterance == c.utterance and not groups[-1][0].end:
                groups[-1][1].append(c.audio)
                groups[-1][0].end = c.end
            else:
                groups.append((SpeechChunk(c.utterance, c.start_sample, c.audio, c.end), [c.audio]))
        self._speech = []
        for chunk, parts in groups:
            if len(parts) > 1:
                chunk.audio = np.concatenate(parts)
        return [chunk for chunk, _ in groups]

    def flush(self) -> list[Window]:
        """End of stream: close an open utterance and return its last windows."""
        out: list[Window] = []
        if self._warming:
            self._end_warmup(out)
        if self._in_speech:
            self._close(min(self._last_speech_end + self.post_pad, self._pos), out)
        return out

    # --- internals ------------------------------------------------------------------------------
    def _audio(self, start: int, end: int) -> np.ndarray:
        return self._buf[start - self._buf_start : end - self._buf_start].copy()

    def _emit(self, start: int, end: int, final: bool, out: list[Window]) -> None:
        out.append(Window(self._n_windows, start, end, self._audio(start, end), self._n_utts, final))
        self._n_windows += 1
        self._windows_in_utt += 1
        self._covered_until = max(self._covered_until, end)

    def _end_warmup(self, out: list[Window]) -> None:
        frames, held = self._warm_frames, self._warm_windows
        self._warming, self._warm_frames, self._warm_windows = False, [], []
        vad = FrameVad(self.options.vad)
        if not vad.begins_above_floor(frames):
            out.extend(held)
            return
        # Segment the warm-up again from the start of the stream, every frame against the floor of all of them;
        # that state then carries on. Nothing was trimmed from the buffer during the warm-up.
        again = Segmenter(replace(self.options, floor_warmup_s=0.0), speech_chunks=self._keep_speech)
        again.vad = vad
        again._buf, again._buf_start = self._buf, self._buf_start
        for frame, speech in zip(frames, vad.judge_run(frames), strict=True):
            again._step(frame, speech, out)
        options, pending = self.options, self._pending
        self.__dict__.update(again.__dict__)
        self.options, self._pending = options, pending

    def _step(self, frame: np.ndarray, speech: bool, out: list[Window], level: float | None = None) -> None:
        start = self._pos
        self._pos += self.frame
        if speech:
            self._voiced_levels.append((start, frame_level_dbfs(frame) if level is None else level))
        self._recent.append((start, speech))
        if not self._in_speech:
            voiced = [s for s, v in self._recent if v]
            if speech and len(voiced) >= self.options.onset_frames:
                self._in_speech = True
                self._utt_start = max(voiced[0] - self.pre_pad, self._buf_start, 0)
                self._first_speech = voiced[0]
                self._next_window_start = self._utt_start
                self._covered_until = self._utt_start
                self._windows_in_utt = 0
                self._last_speech_end = self._pos
                self._silent_frames = 0
                if self._keep_speech:
                    # Never overlap the audio already sent for the previous utterance.
                    first = min(voiced[0] - self.speech_pre_pad, self._utt_start)
                    first = max(first, self._buf_start, self._speech_sent_until)
                    self._speech.append(SpeechChunk(self._n_utts, first, self._audio(first, self._pos)))
                self._emit_full(out)
            return
        if self._keep_speech:
            self._speech.append(SpeechChunk(self._n_utts, start, frame.copy()))
        if speech:
            self._last_speech_end = self._pos
            self._silent_frames = 0
        else:
            self._silent_frames += 1
        if self._silent_frames >= self.hangover_frames:
            self._close(self._last_speech_end + self.post_pad, out)
            return
        self._emit_full(out)
        if self._pos - self._utt_start >= self.max_utt:
            self._close(self._pos, out)

    def _update_meter(self) -> None:
        if not self._in_speech:
            self.meter = (self.vad.level_dbfs, False)
            return
        since = self._pos - METER_HOLD
        held = [level for pos, level in self._voiced_levels if pos >= since]
        self.meter = (max(held), True) if held else (self.vad.level_dbfs, True)

    def _emit_full(self, out: list[Window]) -> None:
        while self._next_window_start + self.window <= self._pos:
            s = self._next_window_start
            self._emit(s, s + self.window, False, out)
            self._next_window_start += self.hop

    def _close(self, end: int, out: list[Window]) -> None:
        start = self._utt_start
        if self._windows_in_utt == 0:
            speech = self._last_speech_end - self._first_speech
            restarted = self._floor_restarted()
            short = 0 < self.short_speech <= speech < self.min_speech
            voiced = (restarted or short) and speech_like(self._audio(self._first_speech, self._last_speech_end))
            if restarted and not voiced:  # heard against a floor that had dipped, and not voiced: the room's tone
                pass
            elif speech >= self.min_speech or (short and voiced):
                self._emit(start, end, True, out)
            else:
                self.dropped_short += 1
        elif end - self._covered_until >= self.min_speech:
            self._emit(max(start, end - self.window), end, True, out)
        elif out and out[-1].utterance == self._n_utts:
            out[-1].final = True
        if self._keep_speech:
            self._speech.append(SpeechChunk(self._n_utts, end, np.zeros(0, dtype=np.int16), end=True))
            self._speech_sent_until = self._pos
        if self._windows_in_utt:
            self.utterances.append(Utterance(self._n_utts, start, end))
        self._n_utts += 1
        self._in_speech = False
        self._recent.clear()

    def _floor_restarted(self) -> bool:
        """Did the VAD's noise floor restart (``VadOptions.steady_db``: it had dipped) since this utterance's first
        speech frame? Its frames before then were judged against the dipped floor."""
        restarts = self.vad.restarts
        i = bisect_left(restarts, self._first_speech // self.frame)
        return i < len(restarts) and restarts[i] < self._pos // self.frame

    def _trim(self) -> None:
        if self._warming:
            return  # a second pass over the warm-up needs all of it
        if self._in_speech:
            # Needed: the next full window, and a last window ending up to a hangover before now.
            tail = self._pos - self.window - self.hangover_frames * self.frame
            keep_from = max(self._utt_start, min(self._next_window_start, tail))
        else:
            pre = max(self.pre_pad, self.speech_pre_pad)
            keep_from = self._pos - pre - (self.options.onset_frames + 2) * self.frame
        keep_from = max(keep_from, self._buf_start)
        # the floor's restarts before the audio kept are no utterance's to look at (``_floor_restarted``)
        del self.vad.restarts[: bisect_left(self.vad.restarts, keep_from // self.frame)]
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start :]
            self._buf_start = keep_from


def segment_audio(audio: np.ndarray, options: SegmenterOptions | None = None) -> list[Window]:
    """Offline segmentation of a whole 16 kHz mono int16 signal (same logic as streaming)."""
    seg = Segmenter(options)
    return seg.feed(audio) + seg.flush()
