"""``voice-monitor score PATH...``: emotion timelines for files and folders, in parallel, resumable.

The parent process finds the files, hands them to ``--jobs`` worker processes (forked from a clean
forkserver, or spawned; each loads the classifier once) or to a Dask cluster (``--cluster``:
monitor.batch.cluster; both are executors, monitor.batch.executor), and writes every row itself, whole and
flushed, in the order files finish. Exit status: 0 every file scored, 1 some files failed (each has a row with its
``error``), 2 usage, model or output error, 130 interrupted (the rows written so far are complete;
``--resume`` carries on).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from monitor.batch.discover import discover
from monitor.batch.executor import Executor
from monitor.batch.formats import FORMATS, check_target, done_paths, guess_format, keep_windows_of, open_writer
from monitor.batch.lifeline import parent_token
from monitor.batch.outputs import (
    check_overwrite,
    file_columns,
    file_row,
    window_columns,
    window_rows,
)
from monitor.batch.progress import ProgressReporter
from monitor.batch.score import (
    TRANSCRIBERS,
    FileResult,
    ScoreOptions,
    WorkerInitError,
    init_worker,
    one_line,
    rejudge,
    reusable,
    score_unit_in_worker,
)
from monitor.batch.voices import parse_voice_group, voice_units
from monitor.errors import CommandParser, ConfigError, ModelError, MonitorError, error_line
from monitor.inference.baseline import MODES, Baseline, BaselineOptions, Moments, survey_sample

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# One BLAS thread per worker: the workers are the parallelism. A threaded OpenBLAS makes the mel filterbank
# product several times slower when the cores are busy (measured: 2.8 ms vs 5.5-8.5 ms per window).
# Imported once by the forkserver before it forks workers (an ImportError there is ignored).
PRELOAD = ["monitor.batch.score", "ai_edge_litert.interpreter", "soundfile", "soxr", "webrtcvad"]
WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class RunOptions:
    paths: list[str]
    out: str = "-"
    windows: str | None = None
    fmt: str = "csv"  # of --out
    windows_fmt: str = "csv"
    jobs: int = 1
    resume: bool = False
    retry_failed: bool = False  # with resume: rows of unreadable files are dropped and those files rescored
    force: bool = False  # overwrite an --out/--windows file that score did not write
    progress: str = "auto"  # auto (bar on a terminal, plain lines otherwise) | plain | none
    config: str | None = None  # config.toml: VAD and window settings, model and Vosk model paths
    profile: str | None = None
    score: ScoreOptions = field(default_factory=ScoreOptions)
    speakers: str | None = None  # --speakers on|off; None: [speakers] enabled from the config
    normalise: str | None = None  # --normalise on|off; None: [model] normalise from the config
    baseline: str | None = None  # --baseline run|off; None: [model] baseline from the config
    cluster: str | None = None  # --cluster: a Dask scheduler address or local:N (monitor.batch.cluster)


@dataclass
class RunSummary:
    files: int = 0  # files found
    skipped: int = 0  # already in --out (--resume)
    scored: int = 0  # rows written this run
    failed: int = 0
    no_speech: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    interrupted: bool = False
    baseline_files: int = 0  # files the run's baseline was measured on (0: none taken out)
    baseline_voices: int = 0  # voices its files were grouped into (monitor.inference.run_voices; 0: not grouped)
    other_media: str = ""  # files in the folders of formats it cannot decode (Discovery.other_media_note)
    worker_peak_rss: dict[int, int] = field(default_factory=dict)  # pid -> bytes

    @property
    def exit_status(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.failed else EXIT_OK


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def build_parser(prog: str = "voice-monitor score") -> argparse.ArgumentParser:
    p = CommandParser(
        prog=prog,
        description="Score audio files and folders (recursively; globs allowed): one row per file with its\n"
        "dominant emotion, optionally one row per 3 s window. Same pipeline as the live monitor.",
        epilog="examples:\n"
        "  %(prog)s recordings/ -o scores.csv -w windows.csv\n"
        "  %(prog)s 'calls/**/*.wav' -o scores.jsonl --resume\n\n"
        "A file that cannot be read gets a row with its error and the run goes on; a file without speech\n"
        "gets an empty emotion and the reason in error. Rows are written as files finish, whole and flushed.\n"
        "Exit status: 0 all files scored, 1 some failed, 2 usage/model/output error, 130 interrupted\n"
        "(rerun with --resume to carry on).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders or glob patterns")
    p.add_argument("-o", "--out", default="-", metavar="FILE", help="per-file rows (default: stdout)")
    p.add_argument("-w", "--windows", metavar="FILE", help="also write one row per analysis window here")
    p.add_argument(
        "--format", choices=FORMATS,
        help="output format (default: by name: jsonl for .jsonl/.ndjson, parquet for .parquet (a folder), else csv)",
    )  # fmt: skip
    p.add_argument(
        "--transcriber",
        choices=TRANSCRIBERS,
        default="none",
        help="speech recognition for the text column (default: none: transcription runs near real time, "
        "hundreds of times slower than emotion scoring)",
    )
    p.add_argument("--vosk-model", metavar="DIR", help="Vosk model folder (default: [transcriber] vosk_model_path)")
    p.add_argument("--model", metavar="FILE", help="emotion model .tflite (default: [model] path, else shipped)")
    p.add_argument(
        "--speakers", choices=("on", "off"), help="speaker turns: a speakers count per file, a speaker per window "
        "(default: [speakers] enabled, on)",
    )  # fmt: skip
    p.add_argument("--normalise", choices=("on", "off"), help="judge each file's voices against what the file holds "
                   "of them, more as more is heard (default: [model] normalise, on)")
    p.add_argument(
        "--baseline", choices=MODES, help="run: first survey the run's files (at most 100) for the emotion they all "
        "lean to (a language, a microphone, a room the model never heard) and take 3/4 of that lean out of every "
        "file; off: judge every file alone, whatever else is in the run (default: [model] baseline, run)",
    )  # fmt: skip
    p.add_argument(
        "--voice-group", default="file", metavar="SPEC", help="which files hold the same voice, so that what one "
        "teaches the normalisation about it carries into the next: file (default: each file alone), folder (the "
        r"files of a folder: one speaker per folder), or re:PATTERN (the same text for the pattern's first group, "
        r"e.g. 're:Actor_(\d+)'); a group's files are scored in path order by one worker",
    )  # fmt: skip
    p.add_argument("--config", metavar="PATH", help="config file for VAD/window settings (default: ./config.toml)")
    p.add_argument("--profile", metavar="NAME", help="apply [profile.NAME] from the config")
    p.add_argument(
        "-j", "--jobs", type=int, default=default_jobs(), metavar="N", help="worker processes (default: cores)"
    )
    p.add_argument(
        "--cluster", metavar="ADDRESS", help="score on a Dask cluster: tcp://HOST:PORT of a running 'dask scheduler' "
        "(its workers must see the files at the same paths), or local:N worker processes here; needs the "
        "cluster extra (replaces --jobs)",
    )  # fmt: skip
    p.add_argument("--resume", action="store_true", help="skip files that already have a row in --out")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: drop the rows of files that could not be read and score them again",
    )
    p.add_argument(
        "--progress", choices=("auto", "plain", "none"), default="auto",
        help="progress on stderr: a bar on a terminal, plain lines otherwise (auto), or none",
    )  # fmt: skip
    p.add_argument(
        "--force", action="store_true", help="overwrite --out/--windows files that score did not write"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="same as --progress none, and no summary")
    return p


def parse_args(argv: Sequence[str], prog: str = "voice-monitor score") -> tuple[RunOptions, bool]:
    """Raises SystemExit (argparse) on a usage error or --help."""
    parser = build_parser(prog)
    a = parser.parse_args(list(argv))
    if a.jobs < 1:
        parser.error("--jobs must be at least 1")
    if a.retry_failed and not a.resume:
        parser.error("--retry-failed goes with --resume")
    if a.resume and a.out == "-":
        parser.error("--resume needs --out FILE (the rows already written are read from it)")
    if a.windows is not None and a.windows == a.out:
        parser.error("--windows and --out must be different files")
    if a.vosk_model and a.transcriber not in ("vosk", "auto"):
        parser.error("--vosk-model goes with --transcriber vosk or auto")
    fmt = a.format or guess_format(a.out if a.out != "-" else None)
    if fmt == "parquet" and a.out == "-":
        parser.error("--format parquet needs --out FOLDER (Parquet cannot go to stdout)")
    if a.windows and (fmt == "parquet") != ((a.format or guess_format(a.windows)) == "parquet"):
        parser.error("--out and --windows must both be Parquet or neither (name both .parquet, or use --format)")
    try:
        parse_voice_group(a.voice_group)
    except ConfigError as exc:
        parser.error(str(exc))
    score = ScoreOptions(model_path=a.model, transcriber=a.transcriber, vosk_model_path=a.vosk_model,
                         voice_group=a.voice_group)
    opts = RunOptions(
        speakers=a.speakers,
        normalise=a.normalise,
        baseline=a.baseline,
        config=a.config,
        profile=a.profile,
        paths=a.paths,
        out=a.out,
        windows=a.windows,
        fmt=fmt,
        windows_fmt=a.format or guess_format(a.windows),
        jobs=a.jobs,
        resume=a.resume,
        retry_failed=a.retry_failed,
        force=a.force,
        progress="none" if a.quiet else a.progress,
        score=score,
        cluster=a.cluster,
    )
    return opts, a.quiet


def model_metadata(model_path: str | None) -> tuple[tuple[str, ...], float]:
    """(labels, window seconds) from the model's metadata: the parent never loads the interpreter. The prosody
    and voice heads beside the model (numpy, cheap) are read too, so a broken one stops the command here with one
    line, as the workers (or the web page's first upload) would."""
    from monitor.dsp.features import FeatureParams
    from monitor.inference.classifier import DEFAULT_MODEL, check_model_path, load_prosody_head, read_metadata

    path = Path(model_path) if model_path else DEFAULT_MODEL
    check_model_path(path)
    meta = read_metadata(path)
    try:
        labels = tuple(str(x) for x in meta["labels"])
        window_s = FeatureParams.from_dict(meta["features"]).window_s
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: incomplete metadata ({exc}); re-export the model") from None
    for voice in (False, True):  # the classifier loads both, whether speaker turns are on or not
        load_prosody_head(path, labels, str(meta.get("tflite_sha256", "")), voice)
    return labels, window_s


def resolve(opts: RunOptions) -> tuple[ScoreOptions, tuple[str, ...]]:
    """Fill the worker options from config.toml (the live monitor's settings) and the model's metadata.

    Command-line flags win over the config. The transcriber is NOT taken from the config: batch scoring
    transcribes only when asked (--transcriber). TFLite runs one thread per worker; --jobs is the parallelism.
    """

    from monitor.config import load_config

    cfg = load_config(opts.config, opts.profile)
    model = opts.score.model_path or cfg.model.path or None
    labels, window_s = model_metadata(model)
    vosk = opts.score.vosk_model_path or cfg.transcriber.vosk_model_path or None
    speakers = cfg.speaker_options()
    if opts.speakers is not None:
        speakers = replace(speakers, enabled=opts.speakers == "on")
    normalise = cfg.model.normalise if opts.normalise is None else opts.normalise == "on"
    opts.baseline = opts.baseline or cfg.model.baseline
    score = replace(
        opts.score, model_path=model, vosk_model_path=vosk, segmenter=cfg.segmenter_options(window_s), num_threads=1,
        speakers=speakers, normalise=normalise, prosody=cfg.model.prosody,
    )
    score.validate()
    return score, labels


def check_transcriber(options: ScoreOptions) -> None:
    """Fail early, in the parent, when the chosen speech recogniser cannot be had at all."""
    if options.transcriber == "none":
        return
    import importlib.util

    try:
        available = importlib.util.find_spec("monitor.transcription.factory") is not None
    except ImportError:
        available = False
    if not available:
        raise ConfigError(
            f"--transcriber {options.transcriber}: speech recognition is not available in this version "
            "(monitor.transcription is missing); use --transcriber none"
        )
    if options.transcriber == "vosk":  # the model is loaded in each worker; its absence is known now
        try:
            from monitor.transcription.models import how_to_get_model, locate_vosk_model
        except ImportError:
            return  # the workers will report it
        if locate_vosk_model(options.vosk_model_path) is None:
            raise ConfigError(f"--transcriber vosk needs a Vosk model and none was found: {how_to_get_model()}")


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    """Set WORKER_ENV for the processes spawned inside the block (user settings win), then restore."""
    saved = {k: os.environ.get(k) for k in WORKER_ENV}
    for k, v in WORKER_ENV.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _StopFlag:
    """Set by SIGINT/SIGTERM while a run is in progress. The main loop checks it between rows, so a signal
    never lands in the middle of writing one (a KeyboardInterrupt could cut a large write short)."""

    def __init__(self) -> None:
        self.is_set = False

    def check(self) -> None:
        if self.is_set:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield  # signals cannot be caught here: Ctrl-C arrives as KeyboardInterrupt, still handled
            return

        def handler(signum: int, frame: object) -> None:
            self.is_set = True

        old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # Blocked first: a Ctrl-C while the workers start stays pending (Linux never discards a blocked signal, even
    # an ignored one) and reaches the restored handler when unblocked, instead of being lost (the run went on).
    # The processes started meanwhile inherit the mask as well as SIG_IGN; they ignore Ctrl-C anyway. The
    # resource tracker is started before: starting it unblocks SIGINT (multiprocessing.resource_tracker).
    from multiprocessing import resource_tracker

    mask = hasattr(signal, "pthread_sigmask")
    if mask:
        resource_tracker.ensure_running()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if mask:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class _Pool:
    """A process pool (forkserver, else spawn; never a plain fork) that is rebuilt after a worker crash."""

    def __init__(self, jobs: int, options: ScoreOptions) -> None:
        import multiprocessing

        self.jobs = jobs
        self.options = options
        # forkserver: one clean, single-threaded server imports the pipeline's modules once and forks the
        # workers from it (no fork after threads; less start-up CPU than importing in every spawned worker).
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        self.ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            self.ctx.set_forkserver_preload(PRELOAD)
        self.executor: ProcessPoolExecutor | None = None

    def get(self) -> ProcessPoolExecutor:
        if self.executor is None:
            # Workers start with SIGINT ignored (the forkserver, and a spawned Python, keep an inherited SIG_IGN),
            # so a Ctrl-C while they start cannot print their tracebacks; the parent alone handles it.
            with _worker_environment(), _sigint_ignored():
                ex = ProcessPoolExecutor(
                    self.jobs, mp_context=self.ctx, initializer=init_worker,
                    initargs=(self.options, parent_token()),
                )
                ex.submit(int)  # launches every worker now (non-fork contexts start all at the first submit)
            self.executor = ex
        return self.executor

    def discard(self, kill: bool = False) -> None:
        ex, self.executor = self.executor, None
        if ex is None:
            return
        manager = getattr(ex, "_executor_manager_thread", None)
        if kill:
            for proc in list(getattr(ex, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    proc.terminate()
        ex.shutdown(wait=not kill, cancel_futures=True)
        if kill and manager is not None:
            # Python 3.11's exit hook wakes the pool's manager thread without its lock; if that thread is still
            # closing its wake-up pipe at that moment, the hook prints an OSError traceback (Bad file descriptor).
            # The workers are terminated, so the thread ends at once: wait for it here, before the exit.
            manager.join(timeout=10)


def check_writable(target: str, flag: str, fmt: str = "csv") -> None:
    """Fail before any work if an output cannot be written (the file itself is opened at the first row)."""
    if target == "-" or check_target(target, flag, fmt):
        return
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise ConfigError(f"cannot write {flag} {target}: the folder {folder} does not exist")
    if os.path.isdir(target):
        raise ConfigError(f"cannot write {flag} {target}: it is a folder")
    if not os.access(target if os.path.exists(target) else folder, os.W_OK):
        raise ConfigError(f"cannot write {flag} {target}: permission denied")


class _Outputs:
    """The row writers, opened at the first row: a run that fails before scoring anything (a model or
    recogniser that cannot load in the workers) leaves an existing --out file as it was."""

    def __init__(self, opts: RunOptions, file_cols: list[str], window_cols: list[str]) -> None:
        self.opts = opts
        self.file_cols = file_cols
        self.window_cols = window_cols
        self.out: Any = None  # RowWriter or ParquetRowWriter (monitor.batch.formats)
        self.windows: Any = None

    def open(self) -> None:
        if self.out is not None:
            return
        o = self.opts
        self.out = open_writer(o.out, self.file_cols, o.fmt, append=o.resume)
        if o.windows:
            self.windows = open_writer(
                o.windows, self.window_cols, o.windows_fmt, append=o.resume, closes_before=self.out
            )

    def write(self, window_rows: list[dict], file_row: dict) -> None:
        """The file's windows first, then its row: a file row always has its windows written."""
        self.open()
        assert self.out is not None
        if self.windows is None:
            self.out.write([file_row])
            return
        rollback = getattr(self.windows, "rollback", None)  # CSV/JSONL; a Parquet part is whole or hidden
        before = self.windows.size if rollback else 0
        self.windows.write(window_rows)
        try:
            self.out.write([file_row])
        except MonitorError:  # e.g. the disk filled up: no window rows without their file row
            if rollback:
                rollback(before)
            raise

    def close(self) -> None:
        for w in (self.windows, self.out):
            if w is not None:
                w.close()


def run(opts: RunOptions, err: object = None) -> RunSummary:
    """Score everything ``opts`` names. Raises MonitorError for usage/model/output problems."""
    stream = err if err is not None else sys.stderr
    t0 = time.perf_counter()
    score, labels = resolve(opts)
    check_transcriber(score)
    on = score.speakers.enabled
    fcols, wcols = file_columns(labels, on), window_columns(labels, on)

    found = discover(opts.paths)
    summary = RunSummary(files=len(found.files) + len(found.missing), other_media=found.other_media_note())
    done: set[str] = set()
    if opts.resume:
        done = done_paths(opts.out, opts.fmt, fcols, retry_failed=opts.retry_failed)
        if opts.windows:
            keep_windows_of(opts.windows, opts.windows_fmt, wcols, done)
    done_abs = {os.path.abspath(p) for p in done}

    def is_done(path: str) -> bool:
        return path in done or os.path.abspath(path) in done_abs

    check_writable(opts.out, "--out", opts.fmt)
    if opts.windows:
        check_writable(opts.windows, "--windows", opts.windows_fmt)
    if not opts.resume:
        check_overwrite(opts.out, "--out", opts.force)
        if opts.windows:
            check_overwrite(opts.windows, "--windows", opts.force)
    todo = [f for f in found.files if not is_done(f)]
    missing = [m for m in found.missing if not is_done(m.path)]
    summary.skipped = summary.files - len(todo) - len(missing)

    outputs = _Outputs(opts, fcols, wcols)
    progress = ProgressReporter(opts.progress, len(todo) + len(missing), stream, start=t0)

    def emit(res: FileResult, timed: bool = True) -> None:
        outputs.write(window_rows(res, labels), file_row(res, labels))
        summary.scored += 1
        summary.audio_s += res.duration_s or 0.0
        if res.failed:
            summary.failed += 1
        elif not res.events:
            summary.no_speech += 1
        if res.worker_pid:
            summary.worker_peak_rss[res.worker_pid] = max(
                res.worker_peak_rss, summary.worker_peak_rss.get(res.worker_pid, 0)
            )
        progress.advance(res.duration_s or 0.0, res.failed, timed)

    surveyed = min(len(found.files), BaselineOptions().max_files) if opts.baseline == "run" else 0
    pool = _executor(opts, score, max(len(todo), surveyed), stream) if todo else None  # the survey's workers too
    stop = _StopFlag()
    judged: list[FileResult] = []  # files the survey read whole, judged again with the baseline (not read twice)
    try:
        if pool is not None and opts.baseline == "run":
            with stop.installed():
                quiet = opts.progress == "none" or opts.cluster  # a cluster says what it does itself
                # a local run keeps what the survey measured of each window: files it read whole are not scored
                # again when the scoring reads them as the survey does (monitor.batch.score.reusable)
                local = isinstance(pool, _LocalExecutor)
                base, read = survey_baseline(pool, score, found.files, stop, None if quiet else stream, local)
                judged = rejudged(read, todo, score, base)
                done = {r.path for r in judged}
                todo = [f for f in todo if f not in done]
                if todo:
                    # still under the handlers: the survey's workers are shut down here, and a SIGTERM meanwhile
                    # (default action) would end the run with 143 instead of 130
                    pool.use(replace(score, baseline=base))
            summary.baseline_files = base.files if base else 0
            summary.baseline_voices = len(base.voices.voices) if base and base.voices else 0
            if isinstance(pool, _LocalExecutor):  # no more scoring workers than files left (e.g. --resume)
                pool.pool.jobs = max(1, min(opts.jobs, len(todo)))
            # rates and ETA from here (emit reads this one): the survey's time is not the scoring's
            progress = ProgressReporter(opts.progress, len(todo) + len(judged) + len(missing), stream)
        with stop.installed(), progress:
            for m in missing:
                stop.check()
                emit(FileResult.failure(m.path, f"{m.path}: {m.error}"))
            for r in judged:
                stop.check()
                emit(r, timed=False)  # judged at once: not a file scored in no time (rates, ETA)
            if pool is not None and todo:
                pool.run(todo, emit, stop)
        outputs.open()  # nothing to score: the outputs still get their header
    except KeyboardInterrupt:
        summary.interrupted = True
        if pool is not None:
            pool.close(kill=True)
    finally:
        if pool is not None:
            pool.close()
        outputs.close()
    summary.wall_s = time.perf_counter() - t0
    return summary


def survey_baseline(executor: Executor, score: ScoreOptions, files: list[str], stop: _StopFlag,
                    stream: object | None, keep: bool = False) -> tuple[Baseline | None, list[FileResult]]:
    """The run's baseline (``monitor.inference.baseline``) from a survey of its files by ``executor``, before
    anything is written: no words, the first ``max_windows`` windows, each file or voice group as the scoring
    will judge it. With speaker turns when the scoring has them and something reads them: the run's voices
    (``[speakers] run_voices`` in the speaker space, ``lda``: the files grouped by voice,
    ``monitor.inference.run_voices``), or the scoring judging the files the survey read whole again; otherwise
    without. The whole run's files are surveyed (or the same fixed sample of them), also on --resume: a resumed
    run takes out the same baseline as the run it continues. None for fewer than two files with speech.
    ``stream``: where to say that the survey runs (None: nowhere). ``keep``: also return the surveyed files read
    whole, with what each window's judgement is made from (``rejudged``), when the scoring would read them as the
    survey does."""
    options = BaselineOptions()
    sample = survey_sample(files, options.max_files)
    if len(sample) < 2:
        return None, []
    plain = replace(score, transcriber="none", baseline=None, max_windows=options.max_windows)
    voices = score.speakers.enabled and score.speakers.run_voices and score.speakers.lda
    reuse = keep and reusable(plain, score)
    if score.speakers.enabled and not (voices or reuse):  # nothing would read what the speaker encoder gives
        plain = replace(plain, speakers=replace(score.speakers, enabled=False))
    plain = replace(plain, keep_measures=reuse)
    if stream is not None:
        print(f"surveying {len(sample)} files for the run's baseline (--baseline off skips this)", file=stream,
              flush=True)  # type: ignore[call-overload]
    # each file's measure in the sample's order, not in the order the workers finish them: the grouping of the
    # run's voices (its ties, the order of its groups) and the sums must not depend on which worker was faster
    # (the same baseline on --resume, on a cluster, with any --jobs)
    order = {path: i for i, path in enumerate(sample)}
    got: dict[int, tuple[np.ndarray | None, Moments | None]] = {}
    read: list[FileResult] = []

    def collect(res: FileResult) -> None:
        got[order.get(res.path, len(order) + len(got))] = (
            None if res.log_mean is None else np.asarray(res.log_mean), res.moments)
        if res.measures is not None and not res.failed:
            read.append(res)

    executor.use(plain, "surveying")
    executor.run(sample, collect, stop)
    means = [got[i][0] for i in sorted(got)]
    moments = [got[i][1] for i in sorted(got)]
    return Baseline.from_survey(means, moments, options, voices), read


def rejudged(read: list[FileResult], todo: list[str], score: ScoreOptions, base: Baseline | None) -> list[FileResult]:
    """The surveyed files still to score that the survey read whole, judged with the run's baseline as scoring
    them would (``monitor.batch.score.rejudge``: the same rows, without reading and analysing them again), in
    the order of ``todo``."""
    order = {path: i for i, path in enumerate(todo)}
    read = sorted((r for r in read if r.path in order), key=lambda r: order[r.path])
    if not read:
        return []
    from monitor.inference.classifier import EmotionClassifier

    classifier = EmotionClassifier(score.model_path, score.num_threads)
    scoring = replace(score, baseline=base)
    return [rejudge(r, classifier, scoring) for r in read]


class _LocalExecutor:
    """The local process pool as an :class:`~monitor.batch.executor.Executor`."""

    def __init__(self, jobs: int, options: ScoreOptions) -> None:
        self.pool = _Pool(jobs, options)

    def run(self, todo: list[str], emit: Callable[[FileResult], None], stop: _StopFlag) -> None:
        _drive(self.pool, todo, emit, stop)

    def use(self, options: ScoreOptions, verb: str = "scoring") -> None:
        """Score with ``options`` from now on (the workers are started again with them, if they differ)."""
        if options != self.pool.options:
            self.pool.discard()
            self.pool.options = options

    def close(self, kill: bool = False) -> None:
        self.pool.discard(kill=kill)


def _executor(opts: RunOptions, score: ScoreOptions, files: int, stream: object) -> Executor:
    if opts.cluster:
        from monitor.batch.cluster import DaskExecutor, parse_cluster

        def notify(message: str) -> None:
            if opts.progress != "none":
                print(message, file=stream, flush=True)  # type: ignore[call-overload]

        return DaskExecutor(parse_cluster(opts.cluster), score, notify)
    return _LocalExecutor(max(1, min(opts.jobs, files)), score)


def _drive(pool: _Pool, todo: list[str], emit: Callable[[FileResult], None], stop: _StopFlag) -> None:
    """Keep every worker busy with units of work (a file, or the files of one ``--voice-group`` group in order);
    after a crash, rerun the files that were in flight one by one to find the culprit, which gets an error row;
    the others are scored normally (alone: a rerun file of a group no longer learns from the group's others).
    Raises KeyboardInterrupt on ``stop``."""
    pending: deque[list[str]] = deque(voice_units(todo, pool.options.voice_group))
    suspects: deque[str] = deque()
    inflight: dict[Future[list[FileResult]], list[str]] = {}
    isolated: Future[list[FileResult]] | None = None
    limit = 2 * pool.jobs
    while pending or suspects or inflight:
        stop.check()
        ex = pool.get()
        if suspects:
            if not inflight:
                unit = [suspects.popleft()]
                isolated = ex.submit(score_unit_in_worker, unit)
                inflight[isolated] = unit
        else:
            while pending and len(inflight) < limit:
                unit = pending.popleft()
                inflight[ex.submit(score_unit_in_worker, unit)] = unit
        finished, _ = wait(list(inflight), timeout=0.25, return_when=FIRST_COMPLETED)
        broken = False
        for fut in finished:
            stop.check()
            unit = inflight.pop(fut)
            try:
                results = fut.result()
            except BrokenProcessPool:
                broken = True
                if fut is not isolated:
                    suspects.extend(unit)
                    continue
                results = [FileResult.failure(p, f"{p}: the scoring process crashed on this file") for p in unit]
            except WorkerInitError:
                raise
            except MonitorError as exc:
                results = [FileResult.failure(p, one_line(exc)) for p in unit]
            except Exception as exc:  # e.g. a result that could not be sent back: costs this unit only
                results = [FileResult.failure(p, f"{p}: internal error ({type(exc).__name__}: {one_line(exc)})")
                           for p in unit]
            for result in results:
                emit(result)  # outside the try: an output error must stop the run, not become a row
        if broken:
            for fut, unit in list(inflight.items()):
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    for result in fut.result():
                        emit(result)
                else:
                    suspects.extend(unit)
            inflight.clear()
            isolated = None
            pool.discard(kill=True)


def _format_summary(s: RunSummary) -> str:
    rate = s.audio_s / s.wall_s if s.wall_s > 0 else 0.0
    parts = [f"{s.scored} file{'s' if s.scored != 1 else ''} scored"]
    if s.failed:
        parts.append(f"{s.failed} failed")
    if s.no_speech:
        parts.append(f"{s.no_speech} without speech")
    if s.skipped:
        parts.append(f"{s.skipped} already done (--resume)")
    line = ", ".join(parts)
    if s.audio_s > 0:
        line += f"; {s.audio_s:.1f} s of audio in {s.wall_s:.2f} s ({rate:.0f}x real time)"
    if s.baseline_files:
        line += f"; baseline of {s.baseline_files} files taken out"
        if s.baseline_voices:
            line += f", files judged against {s.baseline_voices} voice group{'s' * (s.baseline_voices != 1)}"
    if s.worker_peak_rss:
        peak = max(s.worker_peak_rss.values()) / 2**20
        n = len(s.worker_peak_rss)
        # processes, not --jobs: the survey's workers are started afresh for the scoring
        line += f"; peak worker memory {peak:.0f} MB ({n} worker process{'es' if n != 1 else ''} in the run)"
    if s.files == 0:
        line = "no audio files found in the given paths (folders are searched for audio file extensions)"
    if s.other_media:
        line += f"; {s.other_media}"
    if s.interrupted and not s.scored and not s.skipped:
        # e.g. during the survey: an --out left by an earlier run is untouched, and --resume would keep its rows
        line = "interrupted before any row was written: run the same command again"
    elif s.interrupted:
        line = "interrupted: " + line + "; rerun with --resume to carry on"
    return line


def main_score(argv: list[str], prog: str = "voice-monitor score") -> int:
    """Entry point for ``voice-monitor score``; returns the exit status, never raises (Ctrl-C included)."""
    try:
        opts, quiet = parse_args(argv, prog)
    except SystemExit as exc:  # argparse: usage error (2) or --help (0)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        summary = run(opts)
    except WorkerInitError as exc:
        print(error_line(str(exc)), file=sys.stderr)
        return EXIT_USAGE
    except MonitorError as exc:
        print(error_line(one_line(exc)), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): stop quietly
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:  # a bug: still one line (set VOICE_MONITOR_DEBUG=1 for the traceback)
        if os.environ.get("VOICE_MONITOR_DEBUG"):
            raise
        print(error_line(f"internal error ({type(exc).__name__}: {one_line(exc)}); please report it"), file=sys.stderr)
        return EXIT_USAGE
    if not quiet:
        print(_format_summary(summary), file=sys.stderr)
    return summary.exit_status
