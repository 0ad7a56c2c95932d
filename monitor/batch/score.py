"""Scoring one file with the live monitor's own stages.

the file read and converted block by block (monitor.batch.reader: bounded memory, the samples of
monitor.audio.convert.read_audio) -> Segmenter fed those blocks, as the live monitor feeds it -> WindowAnalyzer
(features + TFLite classifier) per window -> speaker turns per window (monitor.speakers, on by default; the
whole file clustered again at its end) -> optional transcriber on the segmenter's speech chunks -> words
aligned to windows (monitor.align) -> one :class:`FileResult` with the file's dominant emotion.

Nothing here reimplements a stage; it only drives them over a file. :class:`FileScorer` loads the classifier
(and transcriber) once and scores any number of files; ``score`` never raises for a bad file: the reason goes
into ``FileResult.error``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from monitor.align import dominant_emotion, words_in_window
from monitor.analysis import Measure, WindowAnalyzer
from monitor.batch.lifeline import ParentToken, die_with
from monitor.batch.reader import AudioBlocks
from monitor.batch.voices import parse_voice_group
from monitor.dsp.segmenter import Segmenter, SegmenterOptions, Window
from monitor.dsp.vad import SAMPLE_RATE
from monitor.dsp.voiced import speech_like
from monitor.errors import ConfigError, MonitorError
from monitor.events import Event, Word
from monitor.inference.baseline import Baseline, Moments
from monitor.inference.classifier import EmotionClassifier
from monitor.inference.normalise import SessionNormaliser
from monitor.speakers.cluster import SpeakerOptions
from monitor.speakers.encoder import SpeakerEncoder
from monitor.speakers.turns import SpeakerTurns

TRANSCRIBERS = ("none", "auto", "vosk", "pocketsphinx")
# A file whose every utterance is shorter than min_speech_s (a single word: TurEV's clips, a "yes" exported from a
# call) is read again with this minimum, so that it is judged on what it has rather than given no emotion (its
# voiced windows only, below).
SHORT_FILE_MIN_SPEECH_S = 0.25
SHORT_FILE_MAX_S = 10.0  # only files this short: a long recording of coughs and door knocks stays without speech
# A short file that still gave no window is read again with the noise-floor margin lowered to this: a clip
# that is speech from its first to its last sample, in a room or in noise, has no quiet frame, and its floor (its
# quietest frame) is speech under the noise, often less than the 9 dB below its syllables. Only windows voiced like
# speech are kept (``monitor.dsp.voiced``), since noise that passes the lower margin is rarely voiced like speech.
NOISY_FILE_MARGIN_DB = 3.0
# ... and, still without a window, a very last time with webrtcvad at this, its least aggressive mode (the same 3 dB
# margin): speech in noise at 5-10 dB SNR or in babble that webrtcvad's mode 2 does not hear is often still voiced.
# The margin stays: at 0 dB nearly every clip became windows, and the voicing check alone let engine-like gliding
# hum and rain-like noise through (a review's sounds).
LAST_READING_AGGRESSIVENESS = 0


@dataclass(frozen=True)
class ScoreOptions:
    """What every worker needs to build its pipeline. Picklable (sent to spawned workers)."""

    model_path: str | None = None  # None: the shipped models/emotion.tflite
    transcriber: str = "none"  # one of TRANSCRIBERS ("auto": Vosk if a model is found, else pocketsphinx)
    vosk_model_path: str | None = None
    segmenter: SegmenterOptions = field(default_factory=SegmenterOptions.monitor)
    block_s: float = 0.5  # the segmenter is fed blocks of this length, as the live monitor feeds it
    num_threads: int = 1  # TFLite threads per worker
    speakers: SpeakerOptions = field(default_factory=SpeakerOptions)  # speakers.enabled=False: no speaker turns
    normalise: bool = True  # normalise each file's windows against its voices (if the model has normalisation)
    voice_group: str = "file"  # which files share a voice (monitor.batch.voices): file | folder | re:PATTERN
    baseline: Baseline | None = None  # the run's lean, taken out of every window (monitor.inference.baseline)
    prosody: bool = True  # fuse the model's prosody head, if it has one (monitor.inference.prosody)
    max_windows: int = 0  # stop reading a file after this many windows (the baseline survey's); 0: read it all
    keep_measures: bool = False  # keep what each window's judgement is made from (the survey's: ``rejudge``)

    def validate(self) -> None:
        if self.transcriber not in TRANSCRIBERS:
            raise ConfigError(f"--transcriber must be one of {', '.join(TRANSCRIBERS)}, not {self.transcriber!r}")
        if self.block_s <= 0:
            raise ConfigError("block_s must be > 0")
        self.segmenter.validate()
        parse_voice_group(self.voice_group)
        try:
            self.speakers.validate()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


@dataclass
class FileResult:
    """The outcome for one file. ``failed``: it could not be scored (unreadable, corrupt, ...).

    A file that was read but holds no speech is not failed: it has no windows, an empty ``emotion`` and the
    reason in ``error``.
    """

    path: str
    duration_s: float | None = None
    speech_s: float = 0.0
    events: list[Event] = field(default_factory=list)
    emotion: str = ""
    confidence: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)  # mean over the speech windows
    arousal: float | None = None  # mean over the speech windows (None without windows)
    valence: float | None = None
    text: str = ""
    speakers: int | None = None  # speakers found (None: speaker turns off, or not scored)
    log_mean: tuple[float, ...] | None = None  # mean window log-probabilities before the baseline (the survey's)
    moments: Moments | None = None  # the windows' functionals, summed (the survey's; None without a prosody head)
    measures: tuple[Measure, ...] | None = None  # per window, with ``keep_measures`` and the whole file read
    error: str = ""
    failed: bool = False
    elapsed_s: float = 0.0  # wall time spent on the file in the worker
    worker_pid: int = 0
    worker_peak_rss: int = 0  # bytes

    @classmethod
    def failure(cls, path: str, error: str) -> FileResult:
        return cls(path=path, error=error, failed=True)


def one_line(exc: BaseException) -> str:
    """Our own messages whole, with a line break (from a file name) shown as \\n; a library's first line."""
    if isinstance(exc, MonitorError):
        text = str(exc).strip().replace("\r", "\\r").replace("\n", "\\n")
        return text or type(exc).__name__
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def make_transcriber(options: ScoreOptions) -> Any | None:
    """The transcriber for ``options.transcriber`` (None for "none"); MonitorError if it cannot be had."""
    if options.transcriber == "none":
        return None
    try:
        from monitor.transcription import make_transcriber as factory
    except ImportError:
        raise ConfigError(
            f"--transcriber {options.transcriber}: speech recognition is not available in this version "
            "(monitor.transcription is missing); use --transcriber none"
        ) from None
    transcriber, note = factory(options.transcriber, options.vosk_model_path)
    if transcriber is None:
        raise ConfigError(f"--transcriber {options.transcriber}: {note}")
    return transcriber


@dataclass
class Analysis:
    """What the pipeline makes of one signal."""

    events: list[Event]
    speech_s: float
    text: str
    speakers: int | None = None
    log_mean: tuple[float, ...] | None = None
    dropped_short: int = 0  # utterances the segmenter dropped as shorter than min_speech_s
    moments: Moments | None = None
    measures: tuple[Measure, ...] | None = None


class FileScorer:
    """Loads the classifier (and transcriber) once; scores files one after another."""

    def __init__(self, options: ScoreOptions | None = None, classifier: EmotionClassifier | None = None) -> None:
        self.options = options or ScoreOptions()
        self.options.validate()
        self.classifier = classifier or EmotionClassifier(self.options.model_path, self.options.num_threads)
        speakers = self.options.speakers
        self.encoder = SpeakerEncoder(lda=speakers.lda) if speakers.enabled else None
        self.transcriber = make_transcriber(self.options)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    def analyze(self, audio: np.ndarray) -> Analysis:
        """16 kHz mono int16 audio -> events, fed to the segmenter in ``block_s`` blocks like a live stream."""
        block = max(1, int(round(self.options.block_s * SAMPLE_RATE)))
        return self.analyze_blocks(audio[i : i + block] for i in range(0, len(audio) + 1, block))

    def analyze_blocks(self, blocks: Iterable[np.ndarray], voice: SessionNormaliser | None = None,
                       segmenter: SegmenterOptions | None = None, voiced_only: bool = False) -> Analysis:
        """16 kHz mono int16 blocks of any size, as they are read -> events. Nothing but the segmenter's own
        (trimmed) buffer is kept, so memory does not grow with the length of the stream. ``voice``: the
        normaliser of a voice group this file belongs to (``score_group``); None: the file is its own session.
        ``segmenter``: other segmenter options than the run's (the later readings of a short file without
        windows, ``readings_again``); ``voiced_only``: judge only the windows with a voiced stretch."""
        seg = Segmenter(segmenter or self.options.segmenter, speech_chunks=self.transcriber is not None)
        feeder = None
        if self.transcriber is not None:
            from monitor.transcription.feeder import SpeechFeeder

            feeder = SpeechFeeder(self.transcriber)
        events: list[Event] = []
        turns = None if self.encoder is None else SpeakerTurns(self.encoder, self.options.speakers, whole_file=True)
        analyzer = WindowAnalyzer(self.classifier, normalise=self.options.normalise, voice=voice,
                                  baseline=self.options.baseline, prosody=self.options.prosody,
                                  keep_measures=self.options.keep_measures, embeddings=turns is not None)
        whole = True  # the file read to its end (not cut at max_windows)
        kept: set[int] = set()  # voiced_only: the utterances with a window kept

        def step(block: np.ndarray, last: bool) -> None:
            windows = seg.feed(block)
            if last:
                windows += seg.flush()
            if voiced_only:
                windows = [w for w in windows if is_voiced(w)]
                kept.update(w.utterance for w in windows)
            for w in windows:
                speaker = turns.label(w.audio) if turns is not None else ""
                event = analyzer.analyze(w, speaker=speaker, states=None if turns is None else turns.states,
                                         vector=None if turns is None else turns.vector)
                events.append(event if turns is None else event.with_speaker(speaker))
            if feeder is not None:
                feeder.feed(seg.take_speech())

        try:
            held: np.ndarray | None = None  # one block behind: the last one is fed with the flush
            for block in blocks:
                if held is not None:
                    step(held, last=False)
                held = block
                if self.options.max_windows and analyzer.windows >= self.options.max_windows:
                    whole = False
                    break
            step(held if held is not None else np.zeros(0, dtype=np.int16), last=True)
        except BaseException:
            if feeder is not None:  # leave the recogniser ready for the next file
                with contextlib.suppress(Exception):
                    feeder.finish()
            raise
        text = ""
        if feeder is not None:
            feeder.finish()
            words: list[Word] = [w for t in feeder.transcripts for w in t.words]
            events = [e.with_words(words_in_window(words, e.start_s, e.end_s)) for e in events]
            text = " ".join(t.text.strip() for t in feeder.transcripts if t.text.strip())
            if voiced_only:  # the words of the voiced windows only, not those heard in noise it passed over
                text = " ".join(w.text for w in words if any(e.start_s <= w.mid_s < e.end_s for e in events))
        utterances = [u for u in seg.utterances if not voiced_only or u.index in kept]
        speech_s = sum(u.end_sample - u.start_sample for u in utterances) / SAMPLE_RATE
        log_mean, moments = None, None
        if analyzer.windows:
            log_mean = tuple(float(v) for v in analyzer.log_sum / analyzer.windows)
            if analyzer.functional_sum is not None and analyzer.functional_sq is not None:
                voice = () if analyzer.voice_sum is None else tuple(map(float, analyzer.voice_sum))
                moments = Moments(analyzer.windows, tuple(map(float, analyzer.functional_sum)),
                                  tuple(map(float, analyzer.functional_sq)), voice)
        measures = tuple(analyzer.measures) if analyzer.measures is not None and whole else None
        if turns is None:
            return Analysis(events, speech_s, text, log_mean=log_mean, dropped_short=seg.dropped_short,
                            moments=moments, measures=measures)
        return Analysis(turns.relabel(events), speech_s, text, turns.count, log_mean, seg.dropped_short, moments,
                        measures)

    def score_group(self, paths: list[str]) -> list[FileResult]:
        """The files of one voice group (``monitor.batch.voices.voice_units``) in order: with ``voice_group``
        other than ``file``, one normaliser learns the voice across them; otherwise each file alone. A group of
        one file (a path the pattern does not match, a file rerun alone after a crash) is a file alone, keyed by
        its speaker labels, as the cluster path scores it."""
        norm = self.classifier.norm if self.options.normalise else None
        if norm is None or len(paths) < 2 or not parse_voice_group(self.options.voice_group).shared:
            return [self.score(p) for p in paths]
        voice = SessionNormaliser(norm)
        return [self.score(p, voice) for p in paths]

    def score(self, path: str, voice: SessionNormaliser | None = None) -> FileResult:
        """Never raises for a bad file: unreadable, corrupt or empty files get ``failed`` and ``error``."""
        t0 = time.perf_counter()
        try:
            reader = AudioBlocks(path, self.options.block_s)
            analysis = self.analyze_blocks(reader.blocks(), voice)
            again = self.readings_again(analysis) if reader.duration_s <= SHORT_FILE_MAX_S else []
            for segmenter in again:  # a short file without windows: read again, voiced windows only, until one is found
                reread = self.analyze_blocks(AudioBlocks(path, self.options.block_s).blocks(), voice, segmenter,
                                             voiced_only=True)
                if reread.events:
                    analysis = reread
                    break
            result = self.summarize(path, reader.duration_s, analysis)
        except MonitorError as exc:
            result = FileResult.failure(path, one_line(exc))
        except MemoryError:
            result = FileResult.failure(path, f"{path}: not enough memory to score this file")
        except Exception as exc:  # a bug must cost one file, not the run
            result = FileResult.failure(path, f"{path}: internal error ({type(exc).__name__}: {one_line(exc)})")
        result.elapsed_s = time.perf_counter() - t0
        result.worker_pid = os.getpid()
        result.worker_peak_rss = peak_rss_bytes()
        return result

    def readings_again(self, analysis: Analysis) -> list[SegmenterOptions]:
        """How to read a short file again that gave no window, in order (segmenter options):
        its words shorter than ``min_speech_s`` (``short_words``), then with the noise-floor margin lowered to
        ``NOISY_FILE_MARGIN_DB`` and the short minimum (speech in noise or a room, from its first sample; the
        VAD's steady-floor rule off, which is for dips of a long stream's floor, not a short file's noise), then
        the same with webrtcvad at ``LAST_READING_AGGRESSIVENESS``. All
        keep voiced windows only: a door, a cough or a swell of noise of a word's length is not voiced. Empty for
        a file with windows."""
        if analysis.events:
            return []
        seg = self.options.segmenter
        again: list[SegmenterOptions] = []
        short = self.short_words(analysis)
        if short is not None:
            again.append(short)
        if seg.vad.margin_db > NOISY_FILE_MARGIN_DB:
            noisy = with_min_speech(replace(seg, vad=replace(seg.vad, margin_db=NOISY_FILE_MARGIN_DB, steady_db=0.0)),
                                    min(seg.min_speech_s, SHORT_FILE_MIN_SPEECH_S))
            again.append(noisy)
            if noisy.vad.aggressiveness > LAST_READING_AGGRESSIVENESS:
                again.append(replace(noisy, vad=replace(noisy.vad, aggressiveness=LAST_READING_AGGRESSIVENESS)))
        return again

    def short_words(self, analysis: Analysis) -> SegmenterOptions | None:
        """The segmenter options for reading a file again when it gave no window but dropped utterances as too
        short (None otherwise, or when the run's minimum is already as low)."""
        seg = self.options.segmenter
        if analysis.events or not analysis.dropped_short or seg.min_speech_s <= SHORT_FILE_MIN_SPEECH_S:
            return None
        if 0 < seg.short_speech_s <= SHORT_FILE_MIN_SPEECH_S:
            return None  # the first reading already kept its voiced words of that length
        return with_min_speech(seg, SHORT_FILE_MIN_SPEECH_S)

    def summarize(self, path: str, duration_s: float, analysis: Analysis) -> FileResult:
        return summarize(path, duration_s, analysis, self.labels)


def with_min_speech(seg: SegmenterOptions, min_speech_s: float) -> SegmenterOptions:
    """``seg`` with a lower ``min_speech_s``; its ``short_speech_s`` (a voiced word's minimum) never above it."""
    return replace(seg, min_speech_s=min_speech_s, short_speech_s=min(seg.short_speech_s, min_speech_s))


def is_voiced(window: Window) -> bool:
    """Is a window voiced like speech (``monitor.dsp.voiced.speech_like``)?"""
    return speech_like(window.audio)


def summarize(path: str, duration_s: float, analysis: Analysis, labels: tuple[str, ...]) -> FileResult:
    events = analysis.events
    result = FileResult(path, duration_s, analysis.speech_s, events, text=analysis.text, speakers=analysis.speakers,
                        log_mean=analysis.log_mean, moments=analysis.moments, measures=analysis.measures)
    dominant = dominant_emotion(events)
    if dominant is None:
        result.error = f"no speech found in {duration_s:.1f} s of audio"
        return result
    result.emotion, result.confidence = dominant
    result.probabilities = {lab: float(np.mean([e.probabilities[lab] for e in events])) for lab in labels}
    result.arousal = float(np.mean([e.arousal for e in events]))
    result.valence = float(np.mean([e.valence for e in events]))
    return result


def reusable(surveyed: ScoreOptions, scoring: ScoreOptions) -> bool:
    """Whether a file the survey read whole (``surveyed``: its options) is judged by ``scoring`` from the same
    windows and CNN outputs, so that ``rejudge`` gives what scoring it again would: the same options but for the
    baseline and the window limit (the survey reads no words, so a run with words reads its files again), each
    file its own voice."""
    return (
        not parse_voice_group(scoring.voice_group).shared
        and replace(surveyed, baseline=None, max_windows=0, keep_measures=False)
        == replace(scoring, baseline=None, max_windows=0, keep_measures=False)
    )


def rejudge(result: FileResult, classifier: EmotionClassifier, options: ScoreOptions) -> FileResult:
    """A file the survey read whole (``result.measures``) judged as scoring it with ``options`` would (the run's
    baseline), from its windows' CNN outputs and functionals, without reading it again."""
    if result.measures is None:
        raise ValueError(f"{result.path}: no measures to judge again")
    analyzer = WindowAnalyzer(classifier, normalise=options.normalise, baseline=options.baseline,
                              prosody=options.prosody, embeddings=options.speakers.enabled)
    events = [analyzer.rejudge(e, m) for e, m in zip(result.events, result.measures, strict=True)]
    analysis = Analysis(events, result.speech_s, result.text, result.speakers, result.log_mean, 0, result.moments)
    out = summarize(result.path, result.duration_s or 0.0, analysis, classifier.labels)
    out.elapsed_s, out.worker_pid, out.worker_peak_rss = result.elapsed_s, result.worker_pid, result.worker_peak_rss
    return out


# --- worker-process side (multiprocessing: forkserver or spawn) -------------------------------------------
_SCORER: FileScorer | None = None
_INIT_ERROR: str = ""


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what native libraries print on fd 2 (LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate")
    while the pipeline is built in a worker; Python errors are raised, not printed, so none is lost."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _silence_native_stderr() -> None:
    """Send the worker's fd 2 to /dev/null for good: decoders such as libmpg123 print their complaints about
    a damaged file there ("Note: Illegal Audio-MPEG-Header ..."), over the progress bar and through ``-q``.
    Whatever a worker has to say reaches the parent as a result or an exception; VOICE_MONITOR_DEBUG=1 keeps
    the worker's stderr."""
    if os.environ.get("VOICE_MONITOR_DEBUG"):
        return
    with contextlib.suppress(OSError), open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)


def init_worker(options: ScoreOptions, parent: ParentToken | None = None) -> None:
    """Pool initializer: die with the scoring process (``parent``), build the pipeline once per worker.
    Ctrl-C is the parent's business."""
    import signal

    global _SCORER, _INIT_ERROR
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with(parent)
    try:
        with _native_stderr_silenced():
            _SCORER = FileScorer(options)
    except MonitorError as exc:
        _INIT_ERROR = one_line(exc)
    except Exception as exc:
        _INIT_ERROR = f"could not start a worker ({type(exc).__name__}: {one_line(exc)})"
    _silence_native_stderr()


class WorkerInitError(MonitorError):
    """The pipeline could not be built in a worker (bad model, missing transcriber): stops the run."""


def score_in_worker(path: str) -> FileResult:
    if _SCORER is None:
        raise WorkerInitError(_INIT_ERROR or "worker not initialised")
    return _SCORER.score(path)


def score_unit_in_worker(paths: list[str]) -> list[FileResult]:
    """One unit of work: a file, or the files of one voice group in order."""
    if _SCORER is None:
        raise WorkerInitError(_INIT_ERROR or "worker not initialised")
    return _SCORER.score_group(paths)
