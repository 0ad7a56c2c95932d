"""Command line: ``voice-monitor [COMMAND] ...`` (the commands are listed in monitor/commands.py).

Every user error (bad config, missing device, unwritable CSV, missing model) is one line on stderr and
exit status 2, checked before anything starts.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor import __version__
from monitor.commands import COMMANDS, help_text, split, unknown_command
from monitor.config import Config, load_config, override
from monitor.errors import AudioError, CommandParser, MonitorError, error_line
from monitor.invocation import command_hint

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_FILE = ASSETS / "demo.flac"
SUBCOMMANDS = tuple(c.name for c in COMMANDS)


def _live_parser(prog: str, demo: bool = False) -> argparse.ArgumentParser:
    p = CommandParser(
        prog=prog,
        description="Stream the shipped sample recording through the live pipeline in real time."
        if demo
        else "Listen, show how the speakers feel and what they say, and log a CSV timeline.",
    )
    p.add_argument("--config", metavar="PATH", help="config file (default: ./config.toml or the repository's)")
    p.add_argument("--profile", metavar="NAME", help="apply [profile.NAME] from the config (e.g. pi)")
    if not demo:
        src = p.add_mutually_exclusive_group()
        src.add_argument("--device", metavar="NAME|INDEX", help="input device: part of its name or its index")
        src.add_argument("--file", metavar="PATH", help="read a recording instead of the microphone")
        src.add_argument("--stdin", action="store_true", help="read raw s16le PCM from standard input")
        p.add_argument("--realtime", action="store_true", help="with --file: pace the file in real time")
        p.add_argument("--stdin-rate", type=int, metavar="HZ", help="sample rate of --stdin (default 16000)")
        p.add_argument("--stdin-channels", type=int, metavar="N", help="channels of --stdin (default 1)")
    p.add_argument("--csv", metavar="PATH", help="append the emotion timeline to this CSV file")
    p.add_argument("--csv-dir", metavar="DIR", help="write one CSV per day into DIR (emotions-YYYY-MM-DD.csv)")
    p.add_argument("--no-dashboard", action="store_true", help="headless: one plain line per window")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument("--model", metavar="PATH", help="emotion model .tflite (metadata .json beside it)")
    p.add_argument("--threads", type=int, metavar="N", help="TFLite interpreter threads")
    p.add_argument("--transcriber", choices=["auto", "vosk", "pocketsphinx", "none"], help="speech-to-text engine")
    p.add_argument("--vosk-model", metavar="DIR", help="Vosk model folder")
    p.add_argument("--start-anyway", action="store_true", help="if the transcriber cannot start, go on without text")
    p.add_argument("--vad-mode", type=int, choices=[0, 1, 2, 3], help="webrtcvad aggressiveness")
    p.add_argument("--hop", type=float, metavar="SECONDS", help="hop between windows in long speech")
    p.add_argument("--speakers", choices=["on", "off"], help="speaker turns (S1, S2, ...; default: [speakers] enabled)")
    p.add_argument("--normalise", choices=["on", "off"],
                   help="judge each voice against what the session has heard of it (default: [model] normalise)")
    p.add_argument("--version", action="version", version=f"voice-monitor {__version__}")
    return p


def _configure(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config, args.profile)
    cfg = override(cfg, "audio", device=getattr(args, "device", None),
                   stdin_rate=getattr(args, "stdin_rate", None), stdin_channels=getattr(args, "stdin_channels", None))
    csv_path, csv_dir = args.csv, args.csv_dir
    if csv_path is not None or csv_dir is not None:
        cfg = override(cfg, "output", csv=csv_path or "", csv_dir=csv_dir or "")
    cfg = override(cfg, "output", dashboard=False if args.no_dashboard else None)
    cfg = override(cfg, "model", path=args.model, threads=args.threads,
                   normalise=None if args.normalise is None else args.normalise == "on")
    cfg = override(cfg, "transcriber", engine=args.transcriber, vosk_model_path=args.vosk_model)
    cfg = override(cfg, "vad", aggressiveness=args.vad_mode)
    cfg = override(cfg, "windows", hop_s=args.hop)
    cfg = override(cfg, "speakers", enabled=None if args.speakers is None else args.speakers == "on")
    if args.duration is not None and not (0 < args.duration < float("inf")):
        raise MonitorError("--duration must be a positive number of seconds")
    return cfg


def _make_sinks(cfg: Config, labels: Sequence[str], headless: bool) -> list[Any]:
    from monitor.sinks.console import ConsoleLines
    from monitor.sinks.csv_timeline import CsvTimeline, DailyCsvTimeline

    sinks: list[Any] = []
    speakers = cfg.speakers.enabled
    if cfg.output.csv:
        sinks.append(CsvTimeline(cfg.output.csv, labels, speakers=speakers))
    elif cfg.output.csv_dir:
        sinks.append(DailyCsvTimeline(cfg.output.csv_dir, labels, speakers=speakers))
    if headless:
        sinks.append(ConsoleLines())
    return sinks


def _transcript_file(cfg: Config) -> Any:
    """The transcript beside the CSV (every utterance's words, also those that came after their rows)."""
    from monitor.sinks import transcript_file as tf

    if cfg.output.csv:
        path = tf.transcript_path_for_csv(cfg.output.csv)
        return tf.TranscriptFile(lambda wall: path)
    if cfg.output.csv_dir:
        return tf.TranscriptFile(tf.daily_transcript_path(cfg.output.csv_dir), fsync=True)
    return None


def _make_source(cfg: Config, args: argparse.Namespace, demo: bool) -> Any:
    from monitor.audio import sources

    a = cfg.audio
    if demo:
        return sources.FileSource(DEMO_FILE, realtime=True, block_ms=a.block_ms, ring_seconds=a.ring_seconds)
    if args.file:
        return sources.FileSource(args.file, realtime=args.realtime, block_ms=a.block_ms, ring_seconds=a.ring_seconds)
    if args.stdin:
        return sources.StdinSource(a.stdin_rate, a.stdin_channels, a.block_ms, a.ring_seconds)
    try:
        return sources.MicSource(a.device or None, block_ms=a.block_ms, ring_seconds=a.ring_seconds)
    except AudioError as exc:
        if "no microphone" in str(exc):
            raise AudioError(
                f"no microphone found on this machine; run {command_hint('demo')} to see the monitor on a sample "
                "recording, or use --file PATH / --stdin"
            ) from None
        raise


def _make_transcription(cfg: Config, start_anyway: bool, realtime: bool = True) -> tuple[Any, str]:
    t = cfg.transcriber
    if t.engine == "none":
        return None, "off"
    try:
        from monitor.transcription.isolated import IsolatedTranscriber
        from monitor.transcription.worker import TranscriptionWorker

        # The engine runs in its own process: a GIL-holding decoder must not stall capture or emotion.
        engine = IsolatedTranscriber(t.engine, t.vosk_model_path or None, sphinx_warp_search=t.sphinx_warp_search)
    except MonitorError as exc:
        if not start_anyway:
            raise MonitorError(f"{exc} (or pass --start-anyway to run without text)") from None
        print(f"voice-monitor: {exc}; going on without text", file=sys.stderr)
        return None, "off (transcriber failed to start)"
    if not engine.enabled:
        return None, engine.note or "off"
    note = engine.note
    # A file read faster than real time must not lose utterances: its backlog is unbounded.
    backlog = t.max_backlog_s if realtime else 1e7
    worker = TranscriptionWorker(engine, max_backlog_s=backlog)
    worker.engine = engine  # closed after the pipeline stops
    return worker, note or engine.name


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _ignore_signals() -> None:
    """Shutting down: a second Ctrl-C or a SIGTERM must not cut the drain and lose rows."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run_live(argv: Sequence[str], demo: bool = False) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # systemd stop: same clean shutdown as Ctrl-C
    args = _live_parser("voice-monitor demo" if demo else "voice-monitor live", demo).parse_args(argv)
    if demo:
        args.file, args.stdin, args.realtime, args.device = None, False, True, None
    cfg = _configure(args)
    from monitor.inference.classifier import EmotionClassifier

    # Everything that can fail on bad input is checked before anything starts.
    source = _make_source(cfg, args, demo)
    classifier = EmotionClassifier(cfg.model.path or None, num_threads=cfg.model.threads)
    speakers = None
    if cfg.speakers.enabled:
        from monitor.speakers.encoder import SpeakerEncoder
        from monitor.speakers.turns import SpeakerTurns

        speakers = SpeakerTurns(SpeakerEncoder(lda=cfg.speakers.lda), cfg.speaker_options())
    headless = not cfg.output.dashboard
    sinks = _make_sinks(cfg, classifier.labels, headless)
    transcription = None
    try:
        transcription, text_note = _make_transcription(cfg, args.start_anyway, source.realtime)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise

    from monitor.health import HealthWatcher
    from monitor.pipeline import Pipeline

    dashboard = None
    if not headless:
        from monitor.sinks.dashboard import Dashboard

        dashboard = Dashboard(classifier.labels, source.description, classifier.info.path.name, text_note,
                              history=cfg.output.history)
    pipeline = Pipeline(
        source,
        classifier,
        cfg.segmenter_options(classifier.features.window_s),
        sinks=sinks,
        transcription=transcription,
        on_event=dashboard.on_event if dashboard else None,
        on_transcript=dashboard.on_transcript if dashboard else None,
        queue_windows=cfg.pipeline.queue_windows,
        text_wait_s=cfg.transcriber.text_wait_s,
        speakers=speakers,
        transcript_file=_transcript_file(cfg) if transcription is not None else None,
        normalise=cfg.model.normalise,
        prosody=cfg.model.prosody,
    )
    # Headless: a line at once when the microphone is lost or back, audio is missing, or the CSV cannot be written.
    files = sinks + ([pipeline.transcript_file] if pipeline.transcript_file is not None else [])
    health = HealthWatcher(source, files, emit=_stderr_line if headless else None)
    if dashboard is not None:
        dashboard.status = lambda: _status(pipeline, health)
        if speakers is not None:
            dashboard.resolve = speakers.resolve
    started = time.monotonic()
    interrupted = False
    try:
        pipeline.start()
        health.start()
        if headless:
            print(f"listening: {source.description}; model {classifier.info.path.name} ({classifier.info.runtime}); "
                  f"text: {text_note}", file=sys.stderr, flush=True)
        else:
            dashboard.start(refresh_hz=cfg.output.refresh_hz)
        pipeline.wait(args.duration)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        _ignore_signals()
        if dashboard is not None:
            dashboard.stop()
        pipeline.stop(interrupted=interrupted)
        health.stop()
        if transcription is not None:
            transcription.engine.close()
    _summary(pipeline, sinks, time.monotonic() - started, interrupted)
    lost_rows = sum(s.state().lost for s in files if hasattr(s, "state"))
    if pipeline.error or source.error or lost_rows:
        problem = pipeline.error or source.error or f"{lost_rows} rows could not be written (see above)"
        print(error_line(str(problem)), file=sys.stderr)
        return 1
    return 0


def _stderr_line(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _status(pipeline: Any, health: Any) -> Any:
    from monitor.sinks.dashboard import Status

    med, p95 = pipeline.stats.latency_summary()
    t = pipeline.transcription
    message = health.current()
    level_dbfs, in_speech = pipeline.meter
    return Status(
        level_dbfs=level_dbfs,
        in_speech=in_speech,
        position_s=pipeline.position_s,
        windows=pipeline.stats.events,
        dropped_blocks=pipeline.dropped_blocks,
        dropped_windows=pipeline.stats.dropped_windows,
        latency_median_ms=med,
        latency_p95_ms=p95,
        transcriber_lag_s=t.lag_s if t is not None else 0.0,
        skipped_utterances=t.skipped_utterances if t is not None else 0,
        partial=t.partial if t is not None else "",
        message=message,
    )


def _summary(pipeline: Any, sinks: Sequence[Any], elapsed: float, interrupted: bool) -> None:
    st = pipeline.stats
    med, p95 = st.latency_summary()
    top = ", ".join(f"{k} {v}" for k, v in st.emotions.most_common()) or "none"
    lines = [
        f"{'stopped' if interrupted else 'done'} after {elapsed:.1f} s: {st.events} windows ({top})",
        f"audio {pipeline.position_s:.1f} s; dropped blocks {pipeline.dropped_blocks}, dropped windows "
        f"{st.dropped_windows}; latency median {med:.0f} ms, p95 {p95:.0f} ms",
    ]
    if pipeline.speakers is not None:
        found = pipeline.speaker_summary.lines(pipeline.speakers.resolve)
        lines.append(f"speakers: {len(found)}" + "".join(f"\n  {line}" for line in found))
    if pipeline.source.reconnects:
        lines.append(f"microphone reconnected {pipeline.source.reconnects} times")
    if pipeline.transcription is not None:
        tfile = pipeline.transcript_file
        lines.append(f"transcription: skipped utterances {pipeline.transcription.skipped_utterances}, "
                     f"rows written without waiting for text {st.rows_without_text}; utterances whose words came "
                     f"after their rows {st.late_transcripts}" + (" (kept in the transcript file)" if tfile else ""))
        if tfile is not None:
            out = tfile.state()
            lost = f"; {out.lost} rows lost: {out.last_problem}" if out.lost else ""
            lines.append(f"transcript: {tfile.path} ({out.written} utterances, {tfile.late} of them late{lost})")
    clock = pipeline.source.clock
    if clock.gaps:
        lines.append(f"audio lost {clock.lost_s:.1f} s in {len(clock.gaps)} gaps (marked in the CSV)")
    for s in sinks:
        if hasattr(s, "state"):
            out = s.state()
            lost = f"; {out.lost} rows lost: {out.last_problem}" if out.lost else ""
            lines.append(f"CSV timeline: {s.path} ({out.written} rows written{lost})")
    for e in st.sink_errors[:3]:
        lines.append(f"output error: {e}")
    print("\n".join(lines), file=sys.stderr)


def run_devices(argv: Sequence[str]) -> int:
    CommandParser(prog="voice-monitor devices", description="List audio input devices.").parse_args(argv)
    from monitor.audio.sources import input_devices

    devs = input_devices()
    if not devs:
        print(f"no input devices found (no sound card or microphone); try {command_hint('demo')}")
        return 1
    for d in devs:
        print(f"[{d['index']:>2}] {d['name']}  ({d['max_input_channels']} ch, {int(d['default_samplerate'])} Hz)")
    return 0


def run_demo(argv: Sequence[str]) -> int:
    return run_live(argv, demo=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(help_text(), end="")
        return 0
    try:
        if (typo := unknown_command(argv)) is not None:
            raise MonitorError(f"unknown command '{typo}'; the commands are {', '.join(SUBCOMMANDS)} "
                               "(voice-monitor --help says what each does)")
        command, rest = split(argv)
        if command.name == "live" and "--web" in rest:  # the live session on the web page: serve --mic
            from monitor.web.cli import main_serve

            return main_serve(["--mic", *(a for a in rest if a != "--web")], prog="voice-monitor live --web")
        return command.load()(rest)
    except MonitorError as exc:
        print(error_line(str(exc)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("voice-monitor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
