"""Cluster vs local batch scoring, in one run, on the same files (prints; asserts nothing on time).

    nice -n 10 .venv/bin/python benchmarks/bench_cluster.py                  # both inputs
    nice -n 10 .venv/bin/python benchmarks/bench_cluster.py --long-files 0   # the short clips only

Inputs: ``--clips`` RAVDESS clips (3-5 s each, default 240, every n-th of the sorted corpus so all actors
appear) and ``--long-files`` files of ``--long-minutes`` (default 20 of 10 minutes: RAVDESS clips concatenated
with 0.3 s pauses into 16 kHz FLACs in a temporary folder).

For each input and pass (``--repeat``, default 2, ``--long-repeat``, default 1: the best of each configuration
counts, as the machine's load varies), in this order: one file scored alone by each path (its start-up cost:
imports, which for the cluster client include dask.distributed, the pool or the connection, the model load),
then local ``--jobs 1``, cluster with 1 worker, local ``--jobs 2``, cluster with 2 workers, each the whole
command (``python -m monitor.cli score FILES -o out.csv``) timed from launch to exit. A cluster is a real
``dask scheduler`` and ``dask worker --nthreads 1`` processes on 127.0.0.1, started fresh for each cluster run
and connected before the clock starts (a cluster is a standing service); their model is loaded at the first
file, inside the timed run, as the local pool's is. CPU seconds count every process of a path: the command and
its pool workers, or the client, the scheduler, the nannies and the workers.

Printed: wall time, audio seconds per wall second, files per second, CPU seconds and audio seconds per CPU
second (which a loaded machine disturbs less), the 2-process/1-process ratio of each path, the cluster's
throughput against the local path's at the same number of processes (within 20 %?), and its overhead per file
(each path's time less its start-up cost, the difference divided by the number of files), in wall and CPU
milliseconds; after the long files, Dask's own CPU while idle (scheduler, nanny, worker over 30 s) and the
thread CPU of scoring two long files inside a Dask worker and in a plain process. Every cluster run's rows are
checked against the local run's (same paths, emotions and probabilities).
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


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process in the trees rooted at ``pids`` (children not included)."""
    import psutil

    out: dict[int, float] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in tree:
            try:
                t = proc.cpu_times()
                out[proc.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return out


def score(files: list[Path], out: Path, extra: list[str], standing: list[int] | None = None) -> tuple[float, float]:
    """(wall s, CPU s) of one whole ``voice-monitor score`` command. CPU: the command (exact, from wait4), its
    descendants (sampled every 0.1 s while they live: a pool worker's last 0.1 s may be missed) and the
    ``standing`` processes' trees (the Dask scheduler and workers: exact, before and after)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "monitor.cli", "score", *map(str, files), "-o", str(out), "--progress", "none"]
    before = _cpu_by_pid(standing or [])
    err = out.with_suffix(".err")
    t0 = time.perf_counter()
    with open(err, "wb") as stderr:
        proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    seen: dict[int, float] = {}
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        seen.update(_cpu_by_pid([proc.pid]))
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(extra)}: exit {proc.returncode}: {err.read_text().strip()[-500:]}")
    after = _cpu_by_pid(standing or [])
    cpu = usage.ru_utime + usage.ru_stime + sum(v for p, v in seen.items() if p != proc.pid)
    cpu += sum(v - before.get(p, 0.0) for p, v in after.items())
    return wall, cpu


def rows(path: Path) -> dict[str, tuple[str, ...]]:
    """path -> (emotion, probabilities) of a run's CSV."""
    with open(path, newline="") as f:
        return {r["path"]: tuple(v for k, v in r.items() if k == "emotion" or k[:2] == "p_") for r in csv.DictReader(f)}


def cluster_run(files: list[Path], out: Path, workers: int, logs: Path) -> tuple[float, float]:
    procs = DaskProcesses(logs)
    try:
        procs.start_scheduler()
        for _ in range(workers):
            procs.start_worker()
        procs.wait_for_workers(workers)
        assert procs.scheduler is not None
        standing = [procs.scheduler.pid, *(w.pid for w in procs.workers)]
        return score(files, out, ["--cluster", procs.address], standing)
    finally:
        procs.close()


def bench(name: str, files: list[Path], work: Path, repeat: int) -> None:
    audio_s = sum(sf.info(str(f)).duration for f in files)
    print(f"\n{name}: {len(files)} files, {audio_s / 60:.1f} min of audio; best of {repeat} passes", flush=True)
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
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
        done = ", ".join(f"{k}/{p} {v[-1][0]:.1f} s ({v[-1][1]:.1f} CPU s)" for (k, p), v in runs.items())
        print(f"  pass {rep + 1}: {done}", flush=True)
    wall = {k: min(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: min(c for _, c in v) for k, v in runs.items()}
    print(
        f"  start-up (one file, whole command): local {wall['local', 0]:.1f} s ({cpu['local', 0]:.1f} CPU s), "
        f"cluster {wall['cluster', 0]:.1f} s ({cpu['cluster', 0]:.1f} CPU s, scheduler and workers included)"
    )
    print(f"  {'path':<10}{'procs':>6}{'wall s':>9}{'audio s/s':>11}{'files/s':>9}{'CPU s':>9}{'audio s/CPU s':>15}")
    for kind in ("local", "cluster"):
        for procs in (1, 2):
            w, c = wall[kind, procs], cpu[kind, procs]
            rates = f"{audio_s / w:>11.0f}{len(files) / w:>9.2f}{c:>9.1f}{audio_s / c:>15.0f}"
            print(f"  {kind:<10}{procs:>6}{w:>9.1f}{rates}")
    for kind in ("local", "cluster"):
        print(f"  {kind}: 2 processes / 1 process throughput = {wall[kind, 1] / wall[kind, 2]:.2f}x")
    for procs in (1, 2):
        ratio = wall["local", procs] / wall["cluster", procs]
        over_wall = (wall["cluster", procs] - wall["cluster", 0]) - (wall["local", procs] - wall["local", 0])
        over_cpu = (cpu["cluster", procs] - cpu["cluster", 0]) - (cpu["local", procs] - cpu["local", 0])
        print(
            f"  {procs} process{'es' if procs > 1 else ''}: cluster throughput = {ratio:.2f} x local "
            f"(within 20 %: {'yes' if ratio >= 0.8 else 'NO'}); overhead per file, start-up taken out: "
            f"{over_wall / len(files) * 1000:+.1f} ms wall, {over_cpu / len(files) * 1000:+.1f} ms CPU"
        )


def task_cpu(paths: list[str]) -> float:
    """Thread CPU seconds of scoring ``paths`` with the cluster task's cached pipeline (loaded beforehand)."""
    from monitor.batch.cli import RunOptions, resolve
    from monitor.batch.cluster_task import _scorer

    scorer = _scorer(resolve(RunOptions(paths=[]))[0])
    scorer.score(paths[0])  # warm
    t0 = time.thread_time()
    for p in paths:
        scorer.score(p)
    return time.thread_time() - t0


def dask_costs(files: list[Path], work: Path, idle_s: float = 30.0) -> None:
    """Where the cluster's extra CPU goes: Dask's processes idle, and one task in a worker vs in a process."""
    paths = [str(f) for f in files]
    procs = DaskProcesses(work)
    try:
        procs.start_scheduler()
        procs.start_worker()
        procs.wait_for_workers(1)
        assert procs.scheduler is not None
        pids = [procs.scheduler.pid, procs.workers[0].pid]
        time.sleep(3)
        before = _cpu_by_pid(pids)
        time.sleep(idle_s)
        idle = sum(_cpu_by_pid(pids).values()) - sum(before.values())
        from distributed import Client

        with Client(procs.address, timeout=30) as client:
            in_worker = [client.submit(task_cpu, paths, pure=False).result() for _ in range(2)]
    finally:
        procs.close()
    plain = [task_cpu(paths) for _ in range(2)]
    print(f"\ndask's own CPU, idle (scheduler + nanny + worker): {idle:.2f} CPU s in {idle_s:.0f} s")
    print(
        f"scoring {len(paths)} long files, thread CPU s: in a dask worker {min(in_worker):.2f} (runs "
        f"{', '.join(f'{x:.2f}' for x in in_worker)}), in a plain process {min(plain):.2f} "
        f"({', '.join(f'{x:.2f}' for x in plain)})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("RAVDESS_DIR", DEFAULT_DATA)))
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--long-files", type=int, default=20)
    ap.add_argument("--long-minutes", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=2, help="passes over the clips' configurations; the best counts")
    ap.add_argument("--long-repeat", type=int, default=1, help="passes over the long files' configurations")
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
            bench("long files", files, work, a.long_repeat)
            dask_costs(files[:2], work)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
