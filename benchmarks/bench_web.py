"""The web server's costs, measured in one run (prints; asserts nothing on time).

    nice .venv/bin/python benchmarks/bench_web.py [--rounds 3]

- start-up: launch of ``voice-monitor serve --port 0 --transcriber none`` to the first 200 from /api/health;
- resident memory of the server process (psutil): idle, and after scoring (one scorer per used slot);
- ``POST /api/score`` of each tests/data clip, one at a time, ``--rounds`` times: median request time, against
  ``FileScorer.score`` on the same files in this process (the work the request does): the ratio is the
  server's overhead (upload, temp file, HTTP, JSON);
- the 8 clips sent at once with ``[web] max_parallel`` 1 and 2: wall time of the batch.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


def start(tmp: Path, parallel: int) -> tuple[subprocess.Popen, str, float]:
    cfg = tmp / f"config{parallel}.toml"
    cfg.write_text(f"[web]\nmax_parallel = {parallel}\n")
    log = tmp / f"server{parallel}.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "serve", "--port", "0", "--config", str(cfg),
                                 "--transcriber", "none"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = ""
    while time.perf_counter() - t0 < 60:
        if not url and (m := re.search(r"open (http://\S+)", log.read_text())):
            url = m.group(1)
        if url:
            try:
                if httpx.get(url + "api/health", timeout=2).status_code == 200:
                    return proc, url, time.perf_counter() - t0
            except httpx.TransportError:
                pass
        time.sleep(0.02)
    proc.kill()
    raise SystemExit(f"the server did not start:\n{log.read_text()}")


CLIENT = httpx.Client(timeout=300)  # one client: a new one per request costs ~40 ms of its own (SSL context)


def post(url: str, path: Path) -> float:
    data = path.read_bytes()
    t0 = time.perf_counter()
    r = CLIENT.post(url + "api/score", files={"file": (path.name, data)})
    assert r.status_code == 200, r.text
    return time.perf_counter() - t0


def burst(url: str, clips: list[Path]) -> float:
    t0 = time.perf_counter()
    threads = [threading.Thread(target=post, args=(url, p)) for p in clips]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from monitor.batch.score import FileScorer

    clips = sorted(DATA.glob("*.flac"))
    scorer = FileScorer()
    scorer.score(str(clips[0]))  # warm
    direct = []
    for _ in range(a.rounds):
        for p in clips:
            t0 = time.perf_counter()
            scorer.score(str(p))
            direct.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, url, startup = start(tmp, 1)
        rss_idle = psutil.Process(proc.pid).memory_info().rss
        post(url, clips[0])  # warm: the slot's scorer is made at its first use
        requests = [post(url, p) for _ in range(a.rounds) for p in clips]
        rss_after = psutil.Process(proc.pid).memory_info().rss
        one = burst(url, clips)
        proc.terminate()
        proc.wait(20)
        proc2, url2, _ = start(tmp, 2)
        burst(url2, clips[:2])  # warm both slots
        two = burst(url2, clips)
        rss_two = psutil.Process(proc2.pid).memory_info().rss
        proc2.terminate()
        proc2.wait(20)
    med_direct, med_req = statistics.median(direct), statistics.median(requests)
    print(f"start-up to first /api/health 200: {startup:.2f} s")
    print(f"server RSS: idle {rss_idle / 2**20:.0f} MiB, after scoring (1 slot) {rss_after / 2**20:.0f} MiB, "
          f"2 slots used {rss_two / 2**20:.0f} MiB")
    print(f"one clip (3.3-4.3 s of audio), median of {len(requests)}: POST /api/score {1000 * med_req:.1f} ms, "
          f"FileScorer.score in-process {1000 * med_direct:.1f} ms (ratio {med_req / med_direct:.2f})")
    print(f"8 clips sent at once: max_parallel 1 {one:.2f} s, max_parallel 2 {two:.2f} s (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
