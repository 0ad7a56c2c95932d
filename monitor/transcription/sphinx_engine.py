"""PocketSphinx fallback: English, offline, needs no download (the model ships inside the pocketsphinx wheel).

Less accurate than Vosk but always available. Word times come from ``seg()`` in frames (``frate`` per second,
100 by default) from the start of the utterance, converted to stream seconds. Fillers (``<s>``, ``</s>``,
``<sil>``, ``[NOISE]``, ``++...++``) are dropped and pronunciation variants (``him(2)``) are folded to the word.

Modes (``mode=``), measured on 40 RAVDESS clips through the segmenter (see tests/test_transcription_sphinx.py):

- ``"stream"``: one decoder fed with ``process_raw`` as audio arrives; partial text while speaking; the final
  text is that decoder's. Cepstral mean normalisation (CMN) can only use past audio ("live" CMN), which starts
  from a prior that fits quiet recordings badly: most word errors of the three.
- ``"batch"`` (default): the utterance's audio is kept and decoded once it ends, in one
  ``process_raw(full_utt=True)`` call, so CMN uses the whole utterance. No partial text, the fewest errors.
  Utterances below HIGH_F0 are decoded twice, at warps 1.2 and 1.0, by two decoders (the warp search, see
  ALT_WARP; ``warp_search=False`` turns it off and halves their CPU and the model memory). The final text comes
  when that decoding ends (about 0.4 s per second of speech on a desktop core with the warp search); emotion
  events that wait for their words wait at most ``[transcriber] text_wait_s``.
- ``"hybrid"``: "stream" on one decoder for the partial text, "batch" on others for the final text: the
  accuracy of "batch" with live partials, for the CPU of both (too much for a loaded Raspberry Pi).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from monitor.errors import TranscriberError
from monitor.events import Word
from monitor.transcription.base import SAMPLE_RATE, Transcript, as_int16, monotonic_words
from monitor.transcription.sphinx_features import FeatureOptions, frame_shift, mfcc

MODES = ("hybrid", "batch", "stream")
# Frequency warp factor (inverse_linear). Chosen on RAVDESS actors 01-10 (80 clips, 60 normal + 20 strong
# intensity, through the segmenter): WER 0.358 unwarped, 0.325 at 1.1, 0.300 at 1.2, 0.312 at 1.25, 0.315 at 1.3;
# male voices 0.242 -> 0.263, female voices 0.475 -> 0.338. Same CPU cost. A warp chosen per utterance from the
# median pitch on a continuous scale gained nothing significant over this fixed one (but see HIGH_F0 below for
# strong-intensity speech); level normalisation, wider beams, topn 8, other
# lw / wip values and a second decoding pass did not help either.
WARP = "1.2"
# Utterances whose median pitch is above HIGH_F0 Hz (mostly raised or shouted voices, and high female voices) are
# decoded from features computed here (sphinx_features.py) instead of pocketsphinx's front end: warp HIGH_WARP
# instead of WARP (shouting raises F0 and the formants), the power spectrum smoothed over SMOOTH x F0 (so that the
# sparse harmonics of a high voice read as the envelope the model knows), HIGH_FRATE frames per second instead of
# 100 (shouted and emotional speech is drawn out), and no noise removal (it takes the loud, flat stretches of
# shouted vowels partly for noise). Chosen on actors 01-10, checked on 11-20 (monitor/transcription/README.md):
# on high-pitched clips of 01-10 the own features took WER from 0.616 to 0.504 (11-20: 0.562 -> 0.545), and
# lowering the threshold from 240 to 220 Hz took every other clip of 01-10 from 0.384 to 0.370 (11-20: 0.361 ->
# 0.349; 200, 210 and 230 Hz did worse on 01-10). Earlier, with pocketsphinx's front end: the warp alone took strong
# clips from 0.628 to 0.556 (actors 01-10, 30 clips), fixed de-emphasis gained less, and a lower upperf (5500 Hz)
# was much worse.
HIGH_F0 = 220.0
HIGH_WARP = 1.3
HIGH_FRATE = 90
SMOOTH = 0.7
# Filler (noise / breath) insertion probability, 1e-8 by default: with 0.01 breaths and clicks between words decode
# as fillers (dropped) instead of short words. Actors 01-10: strong 0.622 -> 0.588, normal 0.271 -> 0.265; 0.1 and
# 0.001 about the same.
FILLPROB = 0.01
# Warp search for the other utterances (VTLN-style, by likelihood): in `batch` (and `hybrid`'s final) decoding a
# second decoder at warp ALT_WARP decodes the same audio, and the hypothesis with the better decoder score (acoustic
# and language model) is kept. Warp 1.2 suits most voices; deep voices (around 100 Hz) want less. Measured on
# every third clip of actors 01-20 below 220 Hz, pocketsphinx front end: 0.259 -> 0.227 (212 clips), held-out
# offset: 0.277 -> 0.260 (203 clips); actor 09, the deepest voice (about 100 Hz), 16 normal clips: 0.844 -> 0.625
# (tests/test_transcription_sphinx.py). Of 0.85, 1.0, 1.1 and 1.3 as the second warp, 1.0 did best; a third
# decoder gained nothing more; the hypothesis chosen per speaker instead of per utterance did worse (0.252); own
# features at 1.0 on the one decoder (no second model in memory) only 0.244 against 0.249. Cost: twice the CPU for
# these utterances and a second model in memory (+91 MiB).
ALT_WARP = "1.0"
# Decoder options that our own features (sphinx_features.py) follow or replace; given any of them, the pitch rule
# is off and every utterance goes through pocketsphinx's front end.
_FRONT_END_KEYS = frozenset({"hmm", "featparams", "warp_type", "warp_params", "frate", "wlen", "nfft", "nfilt",
                             "lowerf", "upperf", "alpha", "ncep", "lifter", "transform", "samprate"})
_VARIANT = re.compile(r"\(\d+\)$")


def is_filler(word: str) -> bool:
    return not word or word[0] in "<[+" or word.upper() in {"SIL", "NOISE"}


def clean_word(word: str) -> str:
    return _VARIANT.sub("", word)


def median_f0(x: np.ndarray, fmin: float = 60.0, fmax: float = 400.0) -> float:
    """Median pitch (Hz) of the voiced loud frames of int16 audio by autocorrelation; 0.0 if too few are voiced."""
    frame, hop = 640, 160
    x = x.astype(np.float32)
    if len(x) < frame:
        return 0.0
    n = 1 + (len(x) - frame) // hop
    fr = x[np.arange(frame)[None, :] + hop * np.arange(n)[:, None]]
    fr = fr - fr.mean(axis=1, keepdims=True)
    e = (fr ** 2).sum(axis=1)
    fr = fr[e > 0.1 * np.percentile(e, 95)] * np.hanning(frame)[None, :]
    if not len(fr):
        return 0.0
    nfft = 2048
    ac = np.fft.irfft(np.abs(np.fft.rfft(fr, nfft)) ** 2, nfft)[:, :frame]
    ac = ac / np.maximum(ac[:, :1], 1e-9)
    lo, hi = int(SAMPLE_RATE / fmax), int(SAMPLE_RATE / fmin)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    ok = ac[np.arange(len(ac)), lag] > 0.5
    if ok.sum() < 3:
        return 0.0
    return float(np.median(SAMPLE_RATE / lag[ok]))


def _decode_raw(dec: Any, audio: np.ndarray) -> None:
    """One whole utterance of int16 audio through the decoder's own front end (CMN over the whole of it)."""
    dec.start_utt()
    if len(audio):
        dec.process_raw(audio.tobytes(), False, True)
    dec.end_utt()


def _score(dec: Any) -> float:
    """The decoder's score for its best hypothesis (higher is better; -inf without one). Python's ``best_score``
    is ``base ** score`` for the integer log score, so comparing it compares the scores."""
    hyp = dec.hyp()
    return float(hyp.best_score) if hyp is not None else float("-inf")


def _decoder(config: dict[str, Any]) -> Any:
    try:
        from pocketsphinx import Decoder
    except ImportError as e:
        raise TranscriberError(f"the pocketsphinx package is not installed ({e}): pip install pocketsphinx, "
                               f"or set [transcriber] engine = \"none\"") from e
    # dither: digital silence (all zeros) otherwise gives log(0) features that decode as "it" / "i'm".
    # warp: frequency warping (VTLN-style) by 1/1.2 (inverse_linear, f' = f / 1.2) before the mel filters. The
    # model fits low (male) voices much better than higher ones; the warp moves higher formants down to where the
    # model expects them, and costs low voices little (see WARP below and tests/test_transcription_sphinx.py).
    options: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": "FATAL", "dither": True,
                               "warp_type": "inverse_linear", "warp_params": WARP, "fillprob": FILLPROB}
    options.update(config)
    try:
        return Decoder(**options)
    except (RuntimeError, ValueError, KeyError) as e:
        raise TranscriberError(f"pocketsphinx cannot start ({e}): reinstall it (pip install --force-reinstall "
                               f"pocketsphinx) or set [transcriber] engine = \"none\"") from e


class SphinxTranscriber:
    """PocketSphinx recogniser with word times in stream seconds. Use from one thread."""

    name = "pocketsphinx"
    label = "pocketsphinx (English model from the pocketsphinx package)"

    def __init__(self, mode: str = "batch", warp_search: bool = True, **config: Any) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self.mode = mode
        self._live = _decoder(config) if mode in ("stream", "hybrid") else None
        self._final = _decoder(config) if mode in ("batch", "hybrid") else None
        any_dec = self._live if self._live is not None else self._final
        self._frate = float(any_dec.config["frate"] or 100)
        self._buf: list[np.ndarray] = []
        self._utt: int | None = None
        self._start_sample = 0
        self._n = 0  # samples of the current utterance
        self._partial = ""
        # the pitch rule for the batch decoder (high voices from our own features), unless the caller changed the
        # acoustic model or the front end, which our features would no longer match
        self._pitch_rule = not (_FRONT_END_KEYS & set(config))
        # the second decoder of the warp search (ALT_WARP), under the same condition; its noise estimate stays warm
        # because it hears every utterance the first one decodes from raw audio
        self._alt = (_decoder({**config, "warp_params": ALT_WARP})
                     if warp_search and self._final is not None and self._pitch_rule else None)
        self._rng = np.random.default_rng(0)  # dither for our own features: the same audio, the same words

    def start_utterance(self, utterance: int, start_sample: int) -> None:
        if self._utt is not None:
            self.end_utterance()
        self._utt = utterance
        self._start_sample = int(start_sample)
        self._n = 0
        self._buf = []
        self._partial = ""
        if self._live is not None:
            self._live.start_utt()

    def accept(self, audio_int16: np.ndarray) -> str:
        if self._utt is None:
            raise RuntimeError("accept() before start_utterance()")
        data = as_int16(audio_int16)
        if not len(data):
            return self._partial
        self._n += len(data)
        if self._final is not None:
            self._buf.append(data)
        if self._live is not None:
            self._live.process_raw(data.tobytes(), False, False)
            hyp = self._live.hyp()
            self._partial = " ".join(clean_word(w) for w in hyp.hypstr.split()) if hyp is not None else ""
        return self._partial

    def end_utterance(self) -> Transcript:
        if self._utt is None:
            raise RuntimeError("end_utterance() before start_utterance()")
        if self._live is not None:
            self._live.end_utt()
        dec = self._live
        frame_s = 1.0 / self._frate
        if self._final is not None:
            dec = self._final
            audio = np.concatenate(self._buf) if self._n else np.zeros(0, np.int16)
            f0 = median_f0(audio) if self._pitch_rule else 0.0
            if f0 > HIGH_F0:
                opts = FeatureOptions(warp=HIGH_WARP, frate=HIGH_FRATE, smooth_hz=SMOOTH * f0)
                dec.start_utt()
                dec.process_cep(mfcc(audio, opts, self._rng).tobytes(), False, True)
                dec.end_utt()
                frame_s = frame_shift(HIGH_FRATE) / SAMPLE_RATE
            else:
                _decode_raw(dec, audio)
                if self._alt is not None and self._n:
                    _decode_raw(self._alt, audio)
                    if _score(self._alt) > _score(dec):
                        dec = self._alt
        start_s = self._start_sample / SAMPLE_RATE
        end_s = start_s + self._n / SAMPLE_RATE
        words = []
        for seg in dec.seg():
            if is_filler(seg.word):
                continue
            conf = float(getattr(seg, "prob", 1.0))
            words.append(Word(clean_word(seg.word), start_s + seg.start_frame * frame_s,
                              start_s + (seg.end_frame + 1) * frame_s, conf))
        ws = monotonic_words(words, start_s, end_s)
        t = Transcript(self._utt, start_s, end_s, " ".join(w.text for w in ws), ws)
        self._utt = None
        self._buf = []
        self._partial = ""
        return t
