"""Measures this machine's speed and memory for the monitor in one command (run it with the runtime venv's python).

    .venv/bin/python scripts/bench.py [--model PATH] [--transcriber] [--live] [--device NAME] [--json FILE]

Prints a plain table: machine, import and model load time; per-stage timings on the clips of tests/data joined into
one 16 kHz stream with 1 s silences between them (capture/conversion of 20 ms blocks of 48 kHz stereo, ring buffer,
VAD + segmenter, features and model per 3 s window at 1 and 2 threads, the prosody head), each as median/p95 per
unit and as a share of real time; the real-time factor of the whole emotion path, the offline throughput over
tests/data, this process's CPU time and peak memory. Options add: --transcriber pocketsphinx's (and Vosk's, if a
model is found) real-time factor on the stream's utterances; --live the CPU share and peak memory of the real-time
demo (``voice-monitor demo --no-dashboard --profile pi``, 39 s); --device a real capture from a sound device for
--seconds, counting callbacks and overruns. --json FILE saves the figures. Nothing is asserted on time.
The figures feed the table in docs/pi.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RATE = 16000
BLOCK_MS = 20
GAP_S = 1.0  # silence between the clips: longer than the segmenter's hangover, so each clip is one utterance
MIC_RATE = 48000


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "?"
    for key in ("Model", "model name"):
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return "?"


def stats(values: list[float]) -> dict[str, float]:
    """Median and p95 in seconds of per-unit timings."""
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return {"median_s": statistics.median(values), "p95_s": p95, "n": len(values)}


def fmt_t(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


class Report:
    """Rows of the printed table and the figures of --json."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []
        self.figures: dict[str, object] = {}

    def section(self, title: str) -> None:
        self.rows.append(("#", title))

    def line(self, name: str, value: str, key: str | None = None, figure: object = None) -> None:
        self.rows.append((name, value))
        if key is not None:
            self.figures[key] = figure

    def stage(self, key: str, name: str, unit: str, times: list[float], total_s: float, audio_s: float) -> None:
        """One stage: per-unit median/p95, and its share of real time (stage time over the stream / its length)."""
        s = stats(times)
        share = total_s / audio_s
        self.rows.append(("|", name, unit, fmt_t(s["median_s"]), fmt_t(s["p95_s"]), f"{100 * share:.3f} %"))
        self.figures[key] = {**s, "unit": unit, "total_s": total_s, "share_of_real_time": share}

    def print(self) -> None:
        width = max(len(r[1]) if r[0] == "|" else len(r[0]) for r in self.rows if r[0] != "#")
        head = ("|", "stage", "per", "median", "p95", "of real time")
        cols = [max(len(r[i]) for r in [head] + [r for r in self.rows if r[0] == "|"]) for i in range(2, 6)]
        in_stages = False
        for r in self.rows:
            if r[0] == "#":
                print(f"\n{r[1]}")
                print("-" * len(r[1]))
                in_stages = False
            elif r[0] == "|":
                if not in_stages:
                    rows = [head, ("|", "-" * width, *("-" * c for c in cols))]
                else:
                    rows = []
                rows.append(r)
                for x in rows:
                    cells = [f"{x[2]:<{cols[0]}}"] + [f"{v:>{c}}" for v, c in zip(x[3:], cols[1:], strict=True)]
                    print(f"{x[1]:<{width}}  " + "  ".join(cells))
                in_stages = True
            else:
                print(f"{r[0]:<{width}}  {r[1]}")
                in_stages = False


def build_stream(clips: list[Path]):
    """The clips as one 16 kHz int16 stream with GAP_S of silence before, between and after them."""
    import numpy as np

    from monitor.audio.convert import read_audio

    gap = np.zeros(int(GAP_S * RATE), dtype=np.int16)
    parts = [gap]
    for clip in clips:
        audio, _ = read_audio(clip)
        parts += [audio, gap]
    return np.concatenate(parts)


def as_mic_blocks(stream, rate: int = MIC_RATE) -> list:
    """The stream as a USB microphone would deliver it: int16 stereo at ``rate``, 20 ms blocks."""
    import numpy as np
    import soxr

    hi = soxr.resample(stream.astype(np.float32) / 32768.0, RATE, rate, quality="HQ")
    hi = np.clip(np.rint(hi * 32768.0), -32768, 32767).astype(np.int16)
    stereo = np.stack([hi, hi], axis=1)
    n = rate * BLOCK_MS // 1000
    return [stereo[i : i + n] for i in range(0, len(stereo) - n + 1, n)]


def bench_capture(rep: Report, stream, audio_s: float, passes: int) -> None:
    from monitor.audio.convert import StreamConverter
    from monitor.audio.ringbuffer import RingBuffer

    blocks = as_mic_blocks(stream)
    conv_t: list[float] = []
    ring_t: list[float] = []
    for _ in range(passes):
        conv = StreamConverter(MIC_RATE)
        ring = RingBuffer(int(MIC_RATE * 20.0), 2)
        for b in blocks:
            t = time.perf_counter()
            ring.write(b)
            got = ring.read(len(b))
            t1 = time.perf_counter()
            conv.process(got)
            t2 = time.perf_counter()
            ring_t.append(t1 - t)
            conv_t.append(t2 - t1)
    rep.stage("capture_convert", "1. convert 48 kHz stereo -> 16 kHz mono", "20 ms block", conv_t,
              sum(conv_t) / passes, audio_s)
    rep.stage("capture_ring", "1. ring buffer write + read (48 kHz stereo)", "20 ms block", ring_t,
              sum(ring_t) / passes, audio_s)


def bench_device(rep: Report, device: str, seconds: float) -> None:
    from monitor.audio.ringbuffer import RingBuffer
    from monitor.errors import AudioError

    try:
        from monitor.audio.sources import _sd, resolve_device

        sd = _sd()
        info = resolve_device(None if device.lower() == "default" else device)
    except (AudioError, ImportError) as exc:
        rep.line("real capture", f"skipped: {exc}", "device_capture", None)
        return
    rate = int(info["default_samplerate"])
    channels = min(2, int(info["max_input_channels"]))
    ring = RingBuffer(int(rate * 20.0), channels)
    counts = {"callbacks": 0, "overflows": 0, "frames": 0}

    def callback(indata, frames, time_info, status) -> None:
        counts["callbacks"] += 1
        counts["frames"] += frames
        if status.input_overflow:
            counts["overflows"] += 1
        ring.write(indata)
        ring.read(frames)

    try:
        with sd.InputStream(samplerate=rate, blocksize=rate * BLOCK_MS // 1000, device=int(info["index"]),
                            channels=channels, dtype="int16", callback=callback):
            time.sleep(seconds)
    except Exception as exc:  # PortAudioError and friends: one line, the rest of the benchmark goes on
        rep.line("real capture", f"failed on {info['name']!r}: {exc}", "device_capture", None)
        return
    expected = seconds * 1000 / BLOCK_MS
    rep.line(
        "real capture",
        f"{info['name']} at {rate} Hz, {channels} ch, {seconds:.0f} s: {counts['callbacks']} callbacks "
        f"(~{expected:.0f} expected), {counts['overflows']} input overflows, {ring.dropped_blocks} ring drops",
        "device_capture",
        {"device": info["name"], "rate": rate, "channels": channels, "seconds": seconds, **counts,
         "ring_drops": ring.dropped_blocks},
    )


def bench_transcribers(rep: Report, stream, audio_s: float) -> None:
    from monitor.dsp.segmenter import Segmenter
    from monitor.errors import TranscriberError
    from monitor.transcription.factory import make_transcriber
    from monitor.transcription.models import locate_vosk_model

    seg = Segmenter(speech_chunks=True)
    n = RATE * BLOCK_MS // 1000
    utts: dict[int, list] = {}
    starts: dict[int, int] = {}
    for i in range(0, len(stream), n):
        seg.feed(stream[i : i + n])
        for c in seg.take_speech():
            starts.setdefault(c.utterance, c.start_sample)
            utts.setdefault(c.utterance, []).append(c.audio)
    seg.flush()
    for c in seg.take_speech():
        starts.setdefault(c.utterance, c.start_sample)
        utts.setdefault(c.utterance, []).append(c.audio)
    import numpy as np

    speech = [(u, starts[u], np.concatenate(parts)) for u, parts in sorted(utts.items())]
    speech = [s for s in speech if len(s[2])]
    speech_s = sum(len(a) for _, _, a in speech) / RATE

    def run(key: str, name: str, engine: str, model: Path | None = None) -> None:
        t = time.perf_counter()
        tr, _note = make_transcriber(engine, model)
        load = time.perf_counter() - t
        per: list[float] = []
        texts = []
        for u, start, audio in speech:
            t = time.perf_counter()
            tr.start_utterance(u, start)
            tr.accept(audio)
            texts.append(tr.end_utterance().text)
            per.append((time.perf_counter() - t) / (len(audio) / RATE))
        total = sum(p * len(a) / RATE for p, (_, _, a) in zip(per, speech, strict=True))
        rtf = total / speech_s
        s = stats(per)
        rep.line(
            f"{name}: real-time factor",
            f"{rtf:.2f} ({speech_s:.1f} s of speech in {len(speech)} utterances took {total:.2f} s; per utterance "
            f"median {s['median_s']:.2f}, p95 {s['p95_s']:.2f}) = {100 * total / audio_s:.1f} % of the stream's time",
            key,
            {"utterances": len(speech), "speech_s": speech_s, "total_s": total, "real_time_factor": rtf,
             "rtf_per_utterance": s, "share_of_real_time": total / audio_s, "load_s": load, "texts": texts},
        )
        rep.line(f"{name}: load", f"{load:.2f} s")
        rep.line(f"{name}: first utterance", repr(texts[0]))

    run("pocketsphinx", "pocketsphinx (batch)", "pocketsphinx")
    try:
        loc = locate_vosk_model()
    except TranscriberError as exc:
        rep.line("vosk", f"skipped: {exc}", "vosk", None)
        return
    if loc is None:
        rep.line("vosk", "skipped: no Vosk model found (`voice-monitor models fetch`)", "vosk", None)
        return
    try:
        run("vosk", f"vosk ({loc.path.name})", "vosk", loc.path)
    except (TranscriberError, ImportError) as exc:
        rep.line("vosk", f"skipped: {exc}", "vosk", None)


def bench_live(rep: Report, model: Path) -> bool:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "monitor.cli", "demo", "--no-dashboard", "--profile", "pi", "--model", str(model)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_kb = 0
    while proc.poll() is None:  # VmHWM: the child's own peak resident memory (ru_maxrss counts the fork)
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    stderr = proc.stderr.read() if proc.stderr else ""
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        rep.line("live demo", f"failed ({proc.returncode}): {stderr.strip()[-300:]}", "live", None)
        return False
    rep.line(
        "live demo (--profile pi, real time)",
        f"{wall:.1f} s wall, {cpu:.1f} s CPU = {100 * cpu / wall:.0f}% of one core; "
        f"peak memory {peak_kb / 1024:.0f} MB",
        "live",
        {"wall_s": wall, "cpu_s": cpu, "cpu_share": cpu / wall, "peak_rss_mb": peak_kb / 1024},
    )
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "emotion.tflite")
    ap.add_argument("--repeat", type=int, default=20, help="passes over the stream's windows for features and model")
    ap.add_argument("--passes", type=int, default=3, help="passes over the stream for capture and segmenter")
    ap.add_argument("--transcriber", action="store_true", help="also time pocketsphinx (and Vosk if a model is found)")
    ap.add_argument("--live", action="store_true", help="also run the 39 s real-time demo and report its CPU share")
    ap.add_argument("--device", metavar="NAME", help="also capture from this input device (index, part of its name, "
                    "or 'default') for --seconds, counting callbacks and overruns")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the --device capture")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also save the figures as JSON")
    args = ap.parse_args(argv)
    rep = Report()

    t0 = time.perf_counter()
    from monitor.audio.convert import read_audio
    from monitor.dsp.features import log_mel
    from monitor.dsp.segmenter import Segmenter, segment_audio
    from monitor.inference.classifier import EmotionClassifier

    import_s = time.perf_counter() - t0

    clips = sorted((REPO / "tests" / "data").glob("*.flac"))
    rep.section("machine")
    machine = f"{platform.machine()}, {cpu_name()}, {os.cpu_count()} cores; python {platform.python_version()}"
    rep.line("machine", machine, "machine", machine)
    rep.line("import of the runtime stack", f"{import_s:.2f} s", "import_s", import_s)
    t0 = time.perf_counter()
    clf = EmotionClassifier(args.model, num_threads=1)
    load_s = time.perf_counter() - t0
    rep.line(f"model load ({clf.info.runtime})", f"{load_s:.2f} s", "model_load_s", load_s)

    stream = build_stream(clips)
    audio_s = len(stream) / RATE
    rep.section(f"stages, on tests/data as one stream: {len(clips)} clips + {GAP_S:.0f} s silences = {audio_s:.1f} s")
    rep.figures["stream_s"] = audio_s

    # 1. capture / conversion (and a real device if asked)
    bench_capture(rep, stream, audio_s, args.passes)

    # 2. VAD + segmenter
    n = RATE * BLOCK_MS // 1000
    seg_t: list[float] = []
    windows = []
    for p in range(args.passes):
        seg = Segmenter()
        for i in range(0, len(stream), n):
            t = time.perf_counter()
            out = seg.feed(stream[i : i + n])
            seg_t.append(time.perf_counter() - t)
            if p == 0:
                windows += [w.audio for w in out]
        if p == 0:
            windows += [w.audio for w in seg.flush()]
    rep.stage("vad_segmenter", "2. VAD + segmenter (Segmenter.feed)", "20 ms block", seg_t,
              sum(seg_t) / args.passes, audio_s)

    # 3. features, 4. model
    feat_t: list[float] = []
    for _ in range(args.repeat):
        for a in windows:
            t = time.perf_counter()
            log_mel(a, clf.features)
            feat_t.append(time.perf_counter() - t)
    feats = [log_mel(a, clf.features) for a in windows]
    rep.stage("features", f"3. features (log_mel), {len(windows)} windows", "3 s window", feat_t,
              sum(feat_t) / args.repeat, audio_s)
    for threads in (1, 2):
        c = clf if threads == 1 else EmotionClassifier(args.model, num_threads=threads)
        inv_t: list[float] = []
        for _ in range(args.repeat):
            for f in feats:
                t = time.perf_counter()
                c.probabilities(f)
                inv_t.append(time.perf_counter() - t)
        rep.stage(f"model_{threads}_threads", f"4. model (probabilities), {threads} thread(s)", "3 s window", inv_t,
                  sum(inv_t) / args.repeat, audio_s)
    if clf.prosody is not None:  # 5. the prosody head beside the CNN (monitor.inference.prosody)
        from monitor.dsp.functionals import functionals
        from monitor.inference.prosody import fuse

        head = clf.prosody
        p_cnn = [clf.probabilities(f) for f in feats]
        head_t: list[float] = []
        for _ in range(args.repeat):
            for a, p in zip(windows, p_cnn, strict=True):
                t = time.perf_counter()
                fuse(p, head.log_probs(functionals(a), head.mean, head.std), head.weight_alone, head.temperature_alone)
                head_t.append(time.perf_counter() - t)
        rep.stage("prosody_head", "5. prosody head (functionals, regression, fusion)", "3 s window", head_t,
                  sum(head_t) / args.repeat, audio_s)

    # 6. overall: the whole emotion path, block by block as the live monitor runs it (the analyzer: features,
    # normalisation, model and the prosody head)
    from monitor.analysis import WindowAnalyzer
    from monitor.audio.convert import StreamConverter
    from monitor.audio.ringbuffer import RingBuffer

    blocks = as_mic_blocks(stream)
    path_t: list[float] = []
    for _ in range(args.passes):
        conv = StreamConverter(MIC_RATE)
        ring = RingBuffer(int(MIC_RATE * 20.0), 2)
        seg = Segmenter()
        analyzer = WindowAnalyzer(clf)
        t = time.perf_counter()
        for b in blocks:
            ring.write(b)
            for w in seg.feed(conv.process(ring.read(len(b)))):
                analyzer.analyze(w)
        for w in seg.flush():
            analyzer.analyze(w)
        path_t.append(time.perf_counter() - t)
    rep.section("overall emotion path")
    rtf = statistics.median(path_t) / audio_s
    rep.line(
        "stages 1-5 block by block, 1 thread (the live monitor's analyzer)",
        f"{fmt_t(statistics.median(path_t))} for {audio_s:.1f} s: real-time factor {rtf:.4f} "
        f"({1 / rtf:.0f}x real time)",
        "emotion_path",
        {"median_s": statistics.median(path_t), "real_time_factor": rtf},
    )

    offline_s = 0.0
    t0 = time.perf_counter()
    for clip in clips:
        audio, duration = read_audio(clip)
        offline_s += duration
        analyzer = WindowAnalyzer(clf)  # each clip a file, as `score` judges it alone
        for w in segment_audio(audio):
            analyzer.analyze(w)
    wall = time.perf_counter() - t0
    rep.line(
        "offline read + segment + classify of tests/data (each clip alone, with the prosody head)",
        f"{offline_s:.1f} s of audio in {wall:.2f} s ({offline_s / wall:.0f}x real time)",
        "offline",
        {"audio_s": offline_s, "wall_s": wall, "speed": offline_s / wall},
    )

    emotion_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rep.line("peak memory so far (max RSS)", f"{emotion_rss_mb:.0f} MB", "emotion_peak_rss_mb", emotion_rss_mb)

    if args.device is not None:
        rep.section(f"real capture from a sound device (--device, {args.seconds:.0f} s)")
        bench_device(rep, args.device, args.seconds)

    if args.transcriber:
        rep.section("transcription, on the stream's utterances (Segmenter(speech_chunks=True))")
        bench_transcribers(rep, stream, audio_s)

    ok = True
    if args.live:
        rep.section("live")
        ok = bench_live(rep, args.model)

    rep.section("this process, all of the above")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    rep.line("CPU time (user + system)", f"{ru.ru_utime + ru.ru_stime:.1f} s", "process_cpu_s",
             ru.ru_utime + ru.ru_stime)
    rss_mb = ru.ru_maxrss / 1024
    rep.line("peak memory (max RSS)", f"{rss_mb:.0f} MB", "peak_rss_mb", rss_mb)
    rep.print()
    if args.json:
        args.json.write_text(json.dumps(rep.figures, indent=2) + "\n")
        print(f"\nfigures saved to {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
