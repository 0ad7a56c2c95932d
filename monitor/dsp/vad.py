"""Frame-level speech detection: webrtcvad gated by a noise-floor tracker.

webrtcvad alone finds speech well in quiet recordings (RAVDESS clips peaking below -30 dBFS), but it calls
steady broadband noise "speech" in every frame. So a frame counts as speech only when webrtcvad says so AND
its energy stands ``margin_db`` above the noise floor, the minimum frame energy over the last
``floor_window_s`` seconds (frames below ``min_level_dbfs`` are left out of it). Steady noise sits on its
own floor and is rejected; digital silence is below ``min_level_dbfs`` and is rejected. ``is_speech`` is
causal (the floor of the frames up to this one); ``judge_run`` judges a run of frames that begins in speech
(``begins_above_floor``) against the floor of all of them, which the segmenter uses for the start of a stream
(``SegmenterOptions.floor_warmup_s``). Both tests are
relative, and frames are scaled (up by at most ``max_gain_db``, down by at most ``max_cut_db``) so that the
loudest recent frame sits at ``target_dbfs`` before webrtcvad sees them: quiet and loud recordings of the
same speech are cut into the same windows. A voice much quieter than the one before it (``quiet_after_loud_db``)
is scaled for its own loudness once the loud one has been silent for ``recent_peak_s``.

A floor that dipped (a sound whose tail fell under the room's floor, a microphone unmuted or its automatic gain
recovering, a dithered lead-in, a noise that started) would leave the room tone after the dip standing above the
margin for the rest of ``floor_window_s``, and webrtcvad, hearing it scaled up, often calls it speech. So when
``steady_s`` of frames is steady (its 90th percentile frame within ``steady_db`` of its 10th), stands above the floor
(its 10th percentile at least ``margin_db - steady_db`` above it, 3 dB by default: its louder frames would pass the
floor gate) and is not voiced like speech (``monitor.dsp.voiced``: slow, even or compressed speech, a sad voice, can
be that steady), the floor history restarts at that stretch; ``steady_db`` 0: off, and it must stay below
``margin_db``. Most speech is not steady (its syllables and gaps span more), and speech in steady noise mostly does
not stand above the noise's floor; when it does (reverberant or compressed speech in noise, a sung note held for
over a second without vibrato, which is voiced but at one pitch) the floor rises to it and a window can end early.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import islice

import numpy as np

from monitor.dsp.voiced import speech_like

SAMPLE_RATE = 16000
STEADY_CHECK_EVERY = 4  # the steady-floor rule looks at every 4th frame (120 ms): a restart is that much later at most
STEADY_RECHECK_FRAMES = 2  # a steady stretch voiced like speech is checked again this many looks later
STEADY_DB = 6.0  # the monitor's ``VadOptions.steady_db`` (config ``[vad] steady_db``)
LEAD_MS = 90  # the start of a run that tells whether it begins in speech (``FrameVad.begins_above_floor``)


@dataclass(frozen=True)
class VadOptions:
    aggressiveness: int = 2  # webrtcvad mode 0 (least) .. 3 (most aggressive in rejecting non-speech)
    frame_ms: int = 30  # webrtcvad accepts 10, 20 or 30 ms frames
    margin_db: float = 9.0  # a speech frame must stand this far above the noise floor
    floor_window_s: float = 5.0  # the noise floor is the quietest frame of this many seconds
    min_level_dbfs: float = -100.0  # quieter frames (digital silence) are never speech nor noise floor
    target_dbfs: float = -30.0  # frames are scaled so the loudest recent frame sits here before webrtcvad
    max_gain_db: float = 40.0  # at most this much up (quiet input) ...
    max_cut_db: float = 40.0  # ... and this much down (loud input)
    # A frame this far under the loudest of the peak history, when the whole last ``recent_peak_s`` is too, is scaled
    # for that last stretch's loudest instead: a quiet voice after a loud one (a far speaker, the other side of a
    # call) would otherwise reach webrtcvad too quiet to be heard. 0 turns it off.
    quiet_after_loud_db: float = 20.0
    recent_peak_s: float = 1.0
    # A stretch of ``steady_s`` whose 10th to 90th percentile frames lie within ``steady_db`` (below ``margin_db``), its
    # 10th at least ``margin_db - steady_db`` above the floor, not voiced like speech, restarts the floor history there
    # (a floor that dipped). 0 turns it off, the default here: training cuts its windows without it; the monitor uses
    # STEADY_DB. A floor window no longer than ``steady_s`` has nothing to forget: the rule does nothing there.
    steady_db: float = 0.0
    steady_s: float = 1.0

    def validate(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ValueError("aggressiveness must be 0, 1, 2 or 3")
        if self.frame_ms not in (10, 20, 30):
            raise ValueError("frame_ms must be 10, 20 or 30")
        if self.margin_db < 0:
            raise ValueError("margin_db must be >= 0")
        if self.floor_window_s <= 0:
            raise ValueError("floor_window_s must be > 0")
        if self.quiet_after_loud_db < 0 or self.recent_peak_s <= 0:
            raise ValueError("quiet_after_loud_db must be >= 0 and recent_peak_s > 0")
        if self.steady_db < 0 or self.steady_s <= 0:
            raise ValueError("steady_db must be >= 0 (0 = off) and steady_s > 0")
        if 0 < self.steady_db >= self.margin_db:
            raise ValueError(f"steady_db ({self.steady_db:g}) must be below margin_db ({self.margin_db:g}), or 0 (off)")

    @property
    def frame_samples(self) -> int:
        return SAMPLE_RATE * self.frame_ms // 1000


def frame_levels_dbfs(frames: np.ndarray) -> list[float]:
    """RMS levels in dBFS of the rows of a (frames, samples) int16 array (-120 for digital silence), at once."""
    x = frames.astype(np.float64)
    power = np.einsum("ij,ij->i", x, x) / max(frames.shape[1], 1) / (32768.0**2)
    return [10.0 * float(np.log10(p)) if p > 1e-12 else -120.0 for p in power.tolist()]


def frame_level_dbfs(frame: np.ndarray) -> float:
    """RMS level of an int16 frame in dBFS (-120 for digital silence)."""
    return frame_levels_dbfs(np.asarray(frame).reshape(1, -1))[0]


class FrameVad:
    """Classifies consecutive int16 frames of ``options.frame_samples`` as speech or not (stateful)."""

    def __init__(self, options: VadOptions | None = None) -> None:
        import webrtcvad

        self.options = options or VadOptions()
        self.options.validate()
        self._vad = webrtcvad.Vad(self.options.aggressiveness)
        n_floor = max(1, int(round(self.options.floor_window_s * 1000 / self.options.frame_ms)))
        self._levels: deque[float] = deque(maxlen=n_floor)
        self._peaks: deque[float] = deque(maxlen=2 * n_floor)
        self._recent_frames = max(1, int(round(self.options.recent_peak_s * 1000 / self.options.frame_ms)))
        self._steady_frames = max(1, int(round(self.options.steady_s * 1000 / self.options.frame_ms)))
        self._steady_audio: deque[np.ndarray] = deque(maxlen=self._steady_frames)  # the frames of that stretch
        self._steady_wait = 0
        self.observed = 0  # frames observed so far
        # the (0-based) frames at which the floor restarted, in order; whoever reads it drops what it no longer needs
        # (``Segmenter._trim``)
        self.restarts: list[int] = []
        self.level_dbfs = -120.0
        self.noise_floor_dbfs = -120.0

    def measure(self, frame: np.ndarray, level: float | None = None) -> float:
        """A frame's level (``level`` if the caller measured it already), shown as ``level_dbfs``; not recorded in
        the floor or peak history."""
        self.level_dbfs = frame_level_dbfs(frame) if level is None else level
        return self.level_dbfs

    def observe(self, frame: np.ndarray, level: float | None = None, restart: bool = True) -> float:
        """Record a frame's level in the noise-floor and peak history; return the level. ``restart=False`` keeps
        the steady-floor rule out (``judge_run``: the floor of all the frames it is given)."""
        level = self.measure(frame, level)
        self.observed += 1
        if level >= self.options.min_level_dbfs:  # digital silence is neither speech nor noise floor
            self._levels.append(level)
            self._peaks.append(level)
            self.noise_floor_dbfs = min(self._levels)
            o = self.options
            if o.steady_db > 0:
                self._steady_audio.append(np.array(frame, dtype=np.int16))  # a copy: callers reuse buffers
                if (restart and self.observed % STEADY_CHECK_EVERY == 0
                        and level >= self.noise_floor_dbfs + o.margin_db - o.steady_db):
                    self._restart_floor_if_steady()
        return level

    def _restart_floor_if_steady(self) -> None:
        """Forget the floor history before the last ``steady_s`` when that stretch is steady sound standing above
        the floor (the floor dipped before it), and not voiced like speech: see the module's docstring. Steady and
        standing above are read from the stretch's 10th and 90th percentile frames, so that a noise whose level
        wanders (a fan, traffic) counts as steady, and the gaps of speech in steady noise keep it from counting."""
        o = self.options
        if len(self._levels) <= self._steady_frames:
            return
        recent = sorted(islice(reversed(self._levels), self._steady_frames))
        k = len(recent) // 10
        low, high = recent[k], recent[-1 - k]
        if low < self.noise_floor_dbfs + o.margin_db - o.steady_db or high - low > o.steady_db:
            self._steady_wait = 0
            return
        if self._steady_wait > 0:  # heard as speech a moment ago
            self._steady_wait -= 1
            return
        if speech_like(np.concatenate(self._steady_audio)):  # slow, even speech (a sad voice) is steady too
            self._steady_wait = STEADY_RECHECK_FRAMES
            return
        kept = list(islice(reversed(self._levels), self._steady_frames))
        self._levels.clear()
        self._levels.extend(reversed(kept))
        self.noise_floor_dbfs = recent[0]
        self.restarts.append(self.observed - 1)

    def peak_dbfs(self) -> float:
        """The loudest recorded frame of the peak history (-120 before any)."""
        return max(self._peaks) if self._peaks else -120.0

    def causal_peak_dbfs(self, level: float) -> float:
        """The loudest frame the gain of a frame just ``observe``d (at ``level``) is set from: the peak history's, or,
        when the frame and the whole last ``recent_peak_s`` lie ``quiet_after_loud_db`` under it, that last
        stretch's (a quiet voice after a loud one). While a voice goes on the last second holds a loud frame, so its
        quiet frames and tails are scaled as before; after a pause of a second or more a soft onset is heard sooner."""
        peak = self.peak_dbfs()
        drop = self.options.quiet_after_loud_db
        if drop > 0 and level < peak - drop and len(self._peaks) > self._recent_frames:
            recent = max(islice(reversed(self._peaks), self._recent_frames))
            if recent < peak - drop:
                return recent
        return peak

    def _gain_db(self, level: float, peak_dbfs: float) -> float | None:
        """The gain webrtcvad hears an ``observe``d frame at, or None when it is under the current floor (not
        speech). webrtcvad's decisions depend on the absolute level: every frame is scaled by the same rule (quiet
        speech up, loud speech down, for ``peak_dbfs``, the loudest frame up to it), so a recording decides the
        same at any level."""
        o = self.options
        if level < o.min_level_dbfs or level < self.noise_floor_dbfs + o.margin_db:
            return None
        return min(max(o.target_dbfs - peak_dbfs, -o.max_cut_db), o.max_gain_db)

    def _webrtc(self, frames: np.ndarray, gains_db: list[float]) -> list[bool]:
        """webrtcvad's decision on each row of ``frames``, scaled by its gain (the rows scaled in one numpy call)."""
        g = np.array(gains_db)
        scale = np.abs(g) > 0.01
        if scale.any():
            factors = np.array([np.float32(10 ** (v / 20)) for v in g[scale]], dtype=np.float32)
            frames = frames.copy()
            frames[scale] = np.clip(frames[scale].astype(np.float32) * factors[:, None], -32768, 32767).astype(np.int16)
        return [bool(self._vad.is_speech(row.tobytes(), SAMPLE_RATE)) for row in frames]

    def decide(self, frame: np.ndarray, level: float, peak_dbfs: float) -> bool:
        """Is a frame already ``observe``d speech: above the current floor, then webrtcvad on the frame scaled
        for ``peak_dbfs`` (the loudest frame up to it)?"""
        gain = self._gain_db(level, peak_dbfs)
        return gain is not None and self._webrtc(np.asarray(frame).reshape(1, -1), [gain])[0]

    def is_speech(self, frame: np.ndarray, level: float | None = None) -> bool:
        """Causal decision: the frame against the floor of the frames before it and itself."""
        level = self.observe(frame, level)
        return self.decide(frame, level, self.causal_peak_dbfs(level))

    def are_speech(self, frames: np.ndarray, levels: list[float]) -> list[bool]:
        """``is_speech`` of consecutive frames (rows of an int16 array, ``levels`` their dBFS), in order: the
        same decisions, with the frames webrtcvad hears scaled in one numpy call rather than one per frame."""
        heard: list[int] = []
        gains: list[float] = []
        for i, level in enumerate(levels):
            self.observe(frames[i], level)
            gain = self._gain_db(level, self.causal_peak_dbfs(level))
            if gain is not None:
                heard.append(i)
                gains.append(gain)
        out = [False] * len(levels)
        for i, speech in zip(heard, self._webrtc(frames[heard], gains), strict=True):
            out[i] = speech
        return out

    def begins_above_floor(self, frames: list[np.ndarray]) -> bool:
        """Do consecutive frames (the first seconds of a stream) begin in speech rather than at their noise floor:
        does a frame of their first ``LEAD_MS`` stand ``margin_db`` above their 10th-percentile frame (a floor that
        one odd quiet frame does not move)? Steady noise, hum and a quiet lead-in begin at their floor."""
        levels = frame_levels_dbfs(np.stack(frames)) if frames else []
        valid = [lv for lv in levels if lv >= self.options.min_level_dbfs]
        lead = valid[: max(1, LEAD_MS // self.options.frame_ms)]
        return bool(lead) and max(lead) >= float(np.percentile(valid, 10)) + self.options.margin_db

    def judge_run(self, frames: list[np.ndarray]) -> list[bool]:
        """Decisions for consecutive frames, every one against the floor (quietest frame) of all of them and
        scaled for webrtcvad by their loudest: for a stream that begins in speech, where the causal rule has
        nothing quieter to measure its first frames against."""
        measured = frame_levels_dbfs(np.stack(frames)) if frames else []
        levels = [self.observe(f, lv, restart=False) for f, lv in zip(frames, measured, strict=True)]
        peak = self.peak_dbfs()
        return [self.decide(f, level, peak) for f, level in zip(frames, levels, strict=True)]
