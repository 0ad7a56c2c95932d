"""``voice-monitor score --cluster``: a real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1
(and a LocalCluster) score real clips; the rows must be the local run's, row for row; a worker killed
mid-run, a client killed mid-run, a worker that cannot see the files and an unreachable scheduler."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dask_procs import DaskProcesses, free_port
from test_batch import MODEL_ARGS, build_corpus, clips, no_traceback, read_rows

REPO = Path(__file__).resolve().parents[1]


def score_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "monitor.cli", "score", *args, *MODEL_ARGS]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def run_score(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(score_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_env())


def copies(folder: Path, n: int) -> int:
    """``n`` copies of each test clip in ``folder``; returns the number of files."""
    folder.mkdir()
    for i in range(n):
        for c in clips():
            shutil.copy(c, folder / f"{i:02d}_{c.name}")
    return n * len(clips())


def by_path(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    out = {r["path"]: r for r in rows}
    assert len(out) == len(rows), "a path has two rows"
    return out


def same_as_original_clip(rows: list[dict[str, str]], reference: dict[str, dict[str, str]]) -> None:
    """Every row of a copy ``NN_<clip>`` equals the reference row of ``<clip>`` but for the path."""
    for r in rows:
        name = Path(r["path"]).name.split("_", 1)[1]
        ref = reference[name]
        assert {k: v for k, v in r.items() if k != "path"} == {k: v for k, v in ref.items() if k != "path"}, name


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    procs = DaskProcesses(tmp_path_factory.mktemp("dask_logs"))
    try:
        procs.start_scheduler()
        procs.start_worker()
        procs.start_worker()
        procs.wait_for_workers(2)
        yield procs
    finally:
        procs.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """The local run's rows for the test clips, by file name."""
    work = tmp_path_factory.mktemp("reference")
    proc = run_score(str(REPO / "tests" / "data"), "-o", "local.csv", "-j", "2", "--progress", "none",
                     "--baseline", "off", cwd=work)  # each file alone: the rows of a file do not depend on the run
    assert proc.returncode == 0, proc.stderr
    return {Path(r["path"]).name: r for r in read_rows(work / "local.csv")}


def test_cluster_rows_equal_local_rows(cluster: DaskProcesses, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    expected = build_corpus(root)  # good clips in several formats, unreadable files, a silent file
    local = run_score(str(root), "-o", "local.csv", "-w", "local_w.csv", "-j", "2", "--progress", "none",
                      cwd=tmp_path)  # fmt: skip
    dist = run_score(str(root), "-o", "dist.csv", "-w", "dist_w.csv", "--cluster", cluster.address,
                     "--progress", "plain", cwd=tmp_path)  # fmt: skip
    no_traceback(dist.stderr)
    assert local.returncode == dist.returncode == 1, (local.stderr, dist.stderr)  # the corpus has bad files
    assert "same paths" in dist.stderr and "shared filesystem" in dist.stderr, dist.stderr
    lrows, drows = by_path(read_rows(tmp_path / "local.csv")), by_path(read_rows(tmp_path / "dist.csv"))
    assert len(drows) == len(expected)
    assert drows == lrows  # same emotions, probabilities, errors: row for row
    assert sum(1 for r in drows.values() if r["emotion"]) == sum(k == "good" for k in expected.values())
    key = lambda r: (r["path"], float(r["start_s"]))  # noqa: E731
    assert sorted(read_rows(tmp_path / "dist_w.csv"), key=key) == sorted(read_rows(tmp_path / "local_w.csv"), key=key)

    # the pipeline was built once per worker and options, not per file: the baseline's survey (no words, the
    # scoring's speaker turns) and the scoring (with the baseline) share one, at most two
    from distributed import Client

    from monitor.batch.cluster_task import pipeline_loads

    with Client(cluster.address, timeout=30) as client:
        loads = client.run(pipeline_loads)
    assert len(loads) == 2 and all(n <= 2 for n in loads.values()) and sum(loads.values()) >= 2, loads


def test_relative_paths_and_resume_on_the_cluster(cluster: DaskProcesses, tmp_path: Path, reference) -> None:
    """Workers get absolute paths; the rows keep the paths as given (relative here), and --resume works."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for c in clips()[:4]:
        shutil.copy(c, folder / c.name)
    first = run_score("clips", "-o", "out.csv", "--cluster", cluster.address, "--progress", "none",
                      "--baseline", "off", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    for c in clips()[4:]:
        shutil.copy(c, folder / c.name)
    again = run_score("clips", "-o", "out.csv", "--cluster", cluster.address, "--resume", "--baseline", "off",
                      cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "4 files scored" in again.stderr and "4 already done" in again.stderr, again.stderr
    rows = read_rows(tmp_path / "out.csv")
    assert sorted(r["path"] for r in rows) == sorted(f"clips/{c.name}" for c in clips())
    for r in rows:
        ref = reference[Path(r["path"]).name]
        assert {k: v for k, v in r.items() if k != "path"} == {k: v for k, v in ref.items() if k != "path"}


def test_client_killed_mid_run_leaves_whole_rows_and_resume_finishes(cluster, tmp_path: Path, reference) -> None:
    total = copies(tmp_path / "many", 30)
    args = ["many", "-o", "out.csv", "-w", "win.csv", "--cluster", cluster.address, "--progress", "none",
            "--baseline", "off"]
    proc = subprocess.Popen(score_cmd(*args), cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True)
    out = tmp_path / "out.csv"
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if out.exists() and len(out.read_text().splitlines()) > 20:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed: give it more files"
    proc.kill()  # SIGKILL: no clean-up at all
    proc.communicate(timeout=30)
    rows = read_rows(out)
    assert 0 < len(rows) < total
    same_as_original_clip(rows, reference)  # only whole rows

    again = run_score(*args, "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    rows = read_rows(out)
    assert len(rows) == total and len(by_path(rows)) == total
    same_as_original_clip(rows, reference)
    wrows = read_rows(tmp_path / "win.csv")
    assert len(wrows) == sum(int(r["windows"]) for r in rows), "window rows of unfinished files were dropped"


def test_waits_for_a_worker_and_survives_a_worker_killed_mid_run(tmp_path: Path, reference) -> None:
    total = copies(tmp_path / "many", 40)
    procs = DaskProcesses(tmp_path)
    try:
        procs.start_scheduler()
        args = ["many", "-o", "out.csv", "--cluster", procs.address, "--progress", "plain", "--baseline", "off"]
        client = subprocess.Popen(score_cmd(*args), cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True)
        assert client.stderr is not None
        first = client.stderr.readline()
        assert first.startswith("waiting for a Dask worker"), first  # no worker yet: it waits and says so
        assert client.poll() is None
        victim = procs.start_worker()
        procs.start_worker()
        out = tmp_path / "out.csv"
        deadline = time.monotonic() + 180
        while client.poll() is None and time.monotonic() < deadline:
            if out.exists() and len(out.read_text().splitlines()) > 20:
                break
            time.sleep(0.02)
        assert client.poll() is None, "the run finished before a worker could be killed: give it more files"
        procs.kill(victim)  # its nanny and worker process, mid-run
        _, err = client.communicate(timeout=300)
    finally:
        procs.close()
    no_traceback(err)
    assert client.returncode == 0, err
    rows = read_rows(out)
    assert len(rows) == total and len(by_path(rows)) == total  # every file exactly once
    assert all(r["error"] == "" for r in rows), [r["error"] for r in rows if r["error"]]
    same_as_original_clip(rows, reference)


def test_worker_that_cannot_see_the_files_gives_error_rows(tmp_path: Path) -> None:
    """A worker whose filesystem lacks the folder (a tmpfs mounted over it in its own mount namespace)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("needs unshare -m (root) to give a worker a filesystem without the files")
    folder = tmp_path / "clips"
    folder.mkdir()
    for c in clips()[:3]:
        shutil.copy(c, folder / c.name)
    procs = DaskProcesses(tmp_path)
    try:
        procs.start_scheduler()
        hide = f'mount -t tmpfs none {folder} && exec "$0" "$@"'
        procs.start_worker(prefix=["unshare", "-m", "sh", "-c", hide])
        procs.wait_for_workers(1)
        proc = run_score(str(folder), "-o", "out.csv", "--cluster", procs.address, "--progress", "none",
                         cwd=tmp_path)  # fmt: skip
    finally:
        procs.close()
    no_traceback(proc.stderr)
    assert proc.returncode == 1, proc.stderr
    rows = read_rows(tmp_path / "out.csv")
    assert sorted(r["path"] for r in rows) == sorted(str(folder / c.name) for c in clips()[:3])
    for r in rows:
        assert r["emotion"] == "" and "cannot see this file" in r["error"] and "same path" in r["error"], r


def test_local_cluster_rows_equal_local_rows(tmp_path: Path) -> None:
    """With every setting at its default (the run's baseline surveyed on the cluster too)."""
    data = str(REPO / "tests" / "data")
    proc = run_score(data, "-o", "out.csv", "--cluster", "local:2", "--progress", "none", cwd=tmp_path)
    no_traceback(proc.stderr)
    assert proc.returncode == 0, proc.stderr
    local = run_score(data, "-o", "local.csv", "-j", "2", "--progress", "none", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    assert "baseline of 31 files taken out" in local.stderr and "baseline of 31 files taken out" in proc.stderr
    rows, expected = read_rows(tmp_path / "out.csv"), read_rows(tmp_path / "local.csv")
    assert {Path(r["path"]).name: r for r in rows} == {Path(r["path"]).name: r for r in expected}


@pytest.mark.parametrize("address", ["refused", "tcp://no-such-host.invalid:8786", "local:0", "nonsense"])
def test_bad_or_unreachable_scheduler_is_a_one_line_error(tmp_path: Path, address: str) -> None:
    if address == "refused":
        address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    (tmp_path / "out.csv").write_text("kept\n")
    proc = run_score(str(REPO / "tests" / "data"), "-o", "out.csv", "--cluster", address, "--force", cwd=tmp_path,
                     timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("voice-monitor: error: ") and address in lines[0], proc.stderr
    assert (tmp_path / "out.csv").read_text() == "kept\n"


def test_interrupt_on_the_cluster_exits_130_and_resume_finishes(cluster, tmp_path: Path) -> None:
    total = copies(tmp_path / "many", 40)
    args = ["many", "-o", "out.csv", "--cluster", cluster.address, "--progress", "none"]
    proc = subprocess.Popen(score_cmd(*args), cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True)
    out = tmp_path / "out.csv"
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if out.exists() and len(out.read_text().splitlines()) > 10:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    no_traceback(err)
    assert proc.returncode == 130 and "--resume" in err, err
    again = run_score(*args, "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(by_path(read_rows(out))) == total


def test_parquet_on_the_cluster_client_killed_then_resume(cluster, tmp_path: Path) -> None:
    """Long enough files that the run outlasts the first row-group flush (5 s), then SIGKILL and --resume."""
    pd = pytest.importorskip("pandas", reason="pandas reads the Parquet output (pip install pandas)")
    import numpy as np
    import soundfile as sf

    speech = np.concatenate([sf.read(c, dtype="int16")[0] for c in clips()] * 4)  # ~2 min of 16 kHz speech
    folder = tmp_path / "long"
    folder.mkdir()
    total = 100  # 200 min of audio: tens of seconds of scoring, well past the first flush on any machine
    sf.write(folder / "00.flac", speech, 16000)
    for i in range(1, total):
        os.link(folder / "00.flac", folder / f"{i:02d}.flac")  # hard links: other paths, no disk
    args = ["long", "-o", "out.parquet", "-w", "win.parquet", "--cluster", cluster.address, "--progress", "none"]
    proc = subprocess.Popen(score_cmd(*args), cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True)
    out = tmp_path / "out.parquet"
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:  # a row group is on disk in the open part
        if out.is_dir() and any(n.endswith(".inprogress") for n in os.listdir(out)):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed: give it more files"
    proc.kill()
    proc.communicate(timeout=30)
    assert all(n.startswith(".") for n in os.listdir(out))  # no part was closed: readers see no half rows
    again = run_score(*args, "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    frame = pd.read_parquet(out)
    assert len(frame) == total and frame["path"].is_unique
    first = frame.drop(columns="path").iloc[0].to_dict()
    assert first["emotion"] and first["windows"] > 10
    for r in frame.drop(columns="path").to_dict("records"):  # the same audio: the same row
        assert r == first
    assert len(pd.read_parquet(tmp_path / "win.parquet")) == frame["windows"].sum()
    assert not [n for n in os.listdir(out) if n.startswith(".")]


def test_voice_groups_of_one_file_on_the_cluster_are_not_chunked_into_one_voice(tmp_path: Path) -> None:
    """``--voice-group folder`` with one file per folder: the cluster still sends several files per task (they
    are not one group), and each must be scored alone, as the local run scores it; a chunk scored with one
    normaliser would carry one speaker's voice into another's file."""
    for i, c in enumerate(clips()):
        (tmp_path / "in" / f"actor{i}").mkdir(parents=True)
        shutil.copy(c, tmp_path / "in" / f"actor{i}" / c.name)
    common = ["--voice-group", "folder", "--speakers", "off", "--progress", "none"]
    local = run_score("in", "-o", "local.csv", "-j", "1", *common, cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    proc = run_score("in", "-o", "cluster.csv", "--cluster", "local:1", *common, cwd=tmp_path)
    no_traceback(proc.stderr)
    assert proc.returncode == 0, proc.stderr
    assert by_path(read_rows(tmp_path / "cluster.csv")) == by_path(read_rows(tmp_path / "local.csv"))


def test_a_long_lived_worker_keeps_one_pipeline_whatever_each_runs_baseline(tmp_path: Path) -> None:
    """Every run takes out its own baseline; a worker that serves run after run must not build (and keep) one
    more pipeline for each of them: the baseline travels with the task and changes nothing the pipeline loads."""
    from distributed import Client

    from monitor.batch.cluster_task import pipeline_loads

    runs = {"a": clips(), "b": sorted((REPO / "tests" / "data" / "speakers").glob("*.flac"))}
    for name, files in runs.items():
        (tmp_path / name).mkdir()
        for c in files:
            shutil.copy(c, tmp_path / name / c.name)
    procs = DaskProcesses(tmp_path)
    try:
        procs.start_scheduler()
        procs.start_worker()
        procs.wait_for_workers(1)
        for name in runs:
            dist = run_score(name, "-o", f"{name}.csv", "--cluster", procs.address, "--progress", "none",
                             cwd=tmp_path)
            assert dist.returncode == 0, dist.stderr
            assert f"baseline of {len(runs[name])} files taken out" in dist.stderr, dist.stderr
        with Client(procs.address, timeout=30) as client:
            loads = client.run(pipeline_loads)
    finally:
        procs.close()
    # the survey reads as the scoring does (speaker turns, no words: `score` transcribes only when asked), so one
    # pipeline serves both, for the first run and every run after it
    assert list(loads.values()) == [1], loads
    for name in runs:  # and the baseline each task carried is the one taken out: the local run's rows
        local = run_score(name, "-o", f"{name}-local.csv", "-j", "2", "--progress", "none", cwd=tmp_path)
        assert local.returncode == 0, local.stderr
        drop = lambda rows: {r["path"]: {k: v for k, v in r.items() if k != "elapsed_s"} for r in rows}  # noqa: E731
        assert drop(read_rows(tmp_path / f"{name}.csv")) == drop(read_rows(tmp_path / f"{name}-local.csv"))
