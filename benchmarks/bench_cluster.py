"""Cluster vs local batch scoring, in one run, on the same files (prints; asserts nothing on time).

    nice -n 10 .venv/bin/python benchmarks/bench_cluster.py                  # both inputs
    nice -n 10 .venv/bin/python benchmarks/bench_cluster.py --long-files 0   # the short clips only

Inputs: ``--clips`` RAVDESS clips (3-5 s each, default 240, every n-th of the sorted corpus so all actors
appear) and ``--long-files`` files of ``--long-minutes`` (default 20 of 10 minutes: RAVDESS clips concatenated
with 0.3 s pauses into 16 kHz FLACs in a temporary folder).

For each input and pass (``--repeat``, default 2; the best wall time of each configuration counts, as the
machine's load varies), in this order: one file scored alone by each path (its start-up cost: imports, which
for the cluster client include dask.distributed, the pool or the connection, the model load), then local
``--jobs 1``, cluster with 1 worker, local ``--jobs 2``, cluster with 2 workers, each the whole command
(``python -m monitor.cli score FILES -o out.csv``) timed from launch to exit. A cluster is a real ``dask
scheduler`` and ``dask worker --nthreads 1`` processes on 127.0.0.1, started fresh for each cluster run and
connected before the clock starts (a cluster is a standing service); their model is loaded at the first
file, inside the timed run, as the local pool's is. Printed: audio seconds per wall second, files per second,
the 2-process/1-process ratio of each path, the cluster's throughput against the local path's at the same
number of processes (within 20 %?), and its overhead per file (each path's wall time less its start-up cost,
the difference divided by the number of files). Every cluster run's rows are checked against the local run's (same paths, emotions and probabilities).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from dask_procs import DaskProcesses  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "ravdess16k"


def pick_clips(data: Path, n: int) -> list[Path]:
    every = sorted(data.glob("Actor_*/*.flac"))
    if len(every) < n:
        raise SystemExit(f"{data}: {len(every)} clips, {n} wanted (set --data to a ravdess16k folder)")
    step = len(every) / n
    return [every[int(i * step)] for i in range(n)]


def make_long_files(data: Path, folder: Path, count: int, minutes: float) -> list[Path]:
    """``count`` files of ``minutes``: RAVDESS clips (each file its own order) with 0.3 s pauses."""
    clips = sorted(data.glob("Actor_*/*.flac"))
    rng = np.random.default_rng(0)
    pause = np.zeros(int(0.3 * 16000), dtype=np.int16)
    out = []
    for i in range(count):
        parts, total = [], 0
        for k in rng.permutation(len(clips)):
            audio, rate = sf.read(clips[k], dtype="int16")
            assert rate == 16000 and audio.ndim == 1, clips[k]
            parts += [audio, pause]
            total += len(audio) + len(pause)
            if total >= minutes * 60 * 16000:
                break
        path = folder / f"long_{i:02d}.flac"
        sf.write(path, np.concatenate(parts)[: int(minutes * 60 * 16000)], 16000)
        out.append(path)
    return out


def score(files: list[Path], out: Path, extra: list[str]) -> float:
    """Wall seconds of one whole ``voice-monitor score`` command."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "monitor.cli", "score", *map(str, files), "-o", str(out), "--progress", "none"]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, *extra], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(extra)}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return wall


def rows(path: Path) -> dict[str, tuple[str, ...]]:
    """path -> (emotion, probabilities) of a run's CSV."""
    with open(path, newline="") as f:
        return {r["path"]: tuple(v for k, v in r.items() if k == "emotion" or k[:2] == "p_") for r in csv.DictReader(f)}


def cluster_run(files: list[Path], out: Path, workers: int, logs: Path) -> float:
    procs = DaskProcesses(logs)
    try:
        procs.start_scheduler()
        for _ in range(workers):
            procs.start_worker()
        procs.wait_for_workers(workers)
        return score(files, out, ["--cluster", procs.address])
    finally:
        procs.close()


def bench(name: str, files: list[Path], work: Path, repeat: int) -> None:
    audio_s = sum(sf.info(str(f)).duration for f in files)
    print(f"\n{name}: {len(files)} files, {audio_s / 60:.1f} min of audio; best of {repeat} passes", flush=True)
    runs: dict[tuple[str, int], list[float]] = {}
    for rep in range(repeat):
        # fixed start-up cost of each path (imports, pool or connection, model load): one file, 1 process
        runs.setdefault(("local", 0), []).append(score(files[:1], work / "fixed_local.csv", ["--jobs", "1"]))
        runs.setdefault(("cluster", 0), []).append(cluster_run(files[:1], work / "fixed_cluster.csv", 1, work))
        for procs in (1, 2):
            local_out = work / f"{name}_local{procs}.csv"
            runs.setdefault(("local", procs), []).append(score(files, local_out, ["--jobs", str(procs)]))
            cluster_out = work / f"{name}_cluster{procs}.csv"
            runs.setdefault(("cluster", procs), []).append(cluster_run(files, cluster_out, procs, work))
            assert rows(cluster_out) == rows(local_out), "the cluster's rows differ from the local run's"
        print(f"  pass {rep + 1}: " + ", ".join(f"{k}/{p} {v[-1]:.1f} s" for (k, p), v in runs.items()), flush=True)
    best = {k: min(v) for k, v in runs.items()}
    print(f"  start-up (one file, whole command): local {best['local', 0]:.1f} s, cluster {best['cluster', 0]:.1f} s")
    print(f"  {'path':<10}{'procs':>6}{'wall s':>9}{'audio s/s':>11}{'files/s':>9}")
    for kind in ("local", "cluster"):
        for procs in (1, 2):
            wall = best[kind, procs]
            print(f"  {kind:<10}{procs:>6}{wall:>9.1f}{audio_s / wall:>11.0f}{len(files) / wall:>9.2f}")
    for kind in ("local", "cluster"):
        print(f"  {kind}: 2 processes / 1 process throughput = {best[kind, 1] / best[kind, 2]:.2f}x")
    for procs in (1, 2):
        net = {k: best[k, procs] - best[k, 0] for k in ("local", "cluster")}
        over = (net["cluster"] - net["local"]) / len(files)
        ratio = best["local", procs] / best["cluster", procs]
        print(
            f"  {procs} process{'es' if procs > 1 else ''}: cluster throughput = {ratio:.2f} x local "
            f"(within 20 %: {'yes' if ratio >= 0.8 else 'NO'}); overhead per file {over * 1000:+.1f} ms "
            "(start-up taken out)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("RAVDESS_DIR", DEFAULT_DATA)))
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--long-files", type=int, default=20)
    ap.add_argument("--long-minutes", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=2, help="passes over every configuration; the best counts")
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_cluster_") as tmp:
        work = Path(tmp)
        if a.clips:
            bench("short clips", pick_clips(a.data, a.clips), work, a.repeat)
        if a.long_files:
            folder = work / "long"
            folder.mkdir()
            t0 = time.perf_counter()
            files = make_long_files(a.data, folder, a.long_files, a.long_minutes)
            print(f"\n(made {len(files)} files of {a.long_minutes:g} min in {time.perf_counter() - t0:.0f} s)")
            bench("long files", files, work, a.repeat)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
