"""What the run's voices cost (``monitor.inference.run_voices``): the whole ``score`` command on the same short
clips with the defaults (speaker turns and the run's voices), with ``[speakers] run_voices = false`` and with
``--speakers off``, alternating (prints; asserts nothing on time).

    nice .venv/bin/python benchmarks/bench_run_voices.py [--files 150] [--repeat 3] [--data ../shared/data]
    nice .venv/bin/python benchmarks/bench_run_voices.py --repo /path/to/a/checkout/of/an/earlier/commit

With the run's voices the survey reads each surveyed file with speaker turns (the speaker encoder, ~17 ms per
window), as the scoring does; a file it read whole is then judged again, not read again (before, the survey read
without speaker turns, so every file was read twice when speaker turns were on). Wall time from launch to exit,
``--jobs 1``, every process pinned to one CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(repo: Path, folder: Path, out: Path, extra: list[str]) -> float:
    """Wall seconds of one whole command, run from the checkout ``repo``."""
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "monitor.cli", "score", str(folder), "-o", str(out),
           "--jobs", "1", "--progress", "none", "--force", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                               "PYTHONPATH": str(repo)})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    print("   ", proc.stderr.strip().splitlines()[-1])
    return wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--files", type=int, default=150, help="RAVDESS clips drawn (fixed seed)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--repo", type=Path, default=REPO, help="run the command of this checkout (e.g. a worktree of an "
                    "earlier commit, to compare)")
    a = ap.parse_args(argv)
    clips = sorted((a.data / "ravdess16k").glob("Actor_*/*.flac"))
    if not clips:
        print(f"no RAVDESS clips under {a.data}/ravdess16k: pass --data")
        return 2
    chosen = random.Random(0).sample(clips, min(a.files, len(clips)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        folder.mkdir()
        for c in chosen:
            os.symlink(c, folder / c.name)
        off = Path(tmp) / "off.toml"
        off.write_text("[speakers]\nrun_voices = false\n")
        variants = {"the defaults": [],
                    "[speakers] run_voices = false": ["--config", str(off)], "--speakers off": ["--speakers", "off"]}
        if not (a.repo / "monitor" / "inference" / "run_voices.py").exists():  # an earlier checkout
            del variants["[speakers] run_voices = false"]
        times: dict[str, list[float]] = {name: [] for name in variants}
        for i in range(a.repeat):
            for name in variants if i % 2 == 0 else reversed(variants):
                print(f"run {i + 1}: {name}")
                times[name].append(run(a.repo, folder, Path(tmp) / "out.csv", variants[name]))
    audio = sum(_duration(c) for c in chosen)
    print(f"\n{a.repo}: {len(chosen)} files, {audio:.0f} s of audio, whole command --jobs 1 pinned to one CPU, "
          f"median of {a.repeat}:")
    for name, rows in times.items():
        wall = sorted(rows)[len(rows) // 2]
        print(f"  {name:32s} {wall:6.1f} s wall ({audio / wall:5.0f}x real time)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


def _duration(path: Path) -> float:
    import soundfile as sf

    return float(sf.info(str(path)).duration)


if __name__ == "__main__":
    raise SystemExit(main())
