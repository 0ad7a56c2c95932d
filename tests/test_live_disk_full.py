"""Fault suite: the live CSV on a disk that is full, or fills up, or gets space back (issue 18, defects 2, 3).

The disk is a real 64 KiB tmpfs mounted for the test (the tests run as root in CI); a filler file leaves
one page free. Audio comes through a pipe on --stdin, so the test can watch the monitor while it runs.
"""

from __future__ import annotations

import csv
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import VOICE_MONITOR, load_clip

PAGE = 4096


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs in CI (it runs as root): {proc.stderr.strip()}")
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """A filler file that leaves ``leave`` bytes free."""
    st = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - leave))
    return filler


def speech(clips, times: int = 1) -> bytes:
    parts = []
    for _ in range(times):
        for c in clips:
            parts += [load_clip(c), np.zeros(8000, np.int16)]
    return np.concatenate(parts).astype("<i2").tobytes()


class Live:
    """The live command reading --stdin from a pipe, its stderr lines collected as they come."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            VOICE_MONITOR + ["live", "--stdin", "--no-dashboard", "--transcriber", "none", "--hop", "0.5"] + args,
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=False)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def feed(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_for(self, text: str, timeout: float = 90) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in ln for ln in self.lines):
                return True
            time.sleep(0.1)
        return False

    def finish(self) -> int:
        self.proc.stdin.close()
        code = self.proc.wait(timeout=120)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def whole_rows(path: Path) -> list[list[str]]:
    """The CSV's rows, checking that every line is a whole row (the header's field count)."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), "the file ends inside a row"
    rows = list(csv.reader(raw.decode("utf-8").splitlines()))
    assert all(len(r) == len(rows[0]) for r in rows), [r for r in rows if len(r) != len(rows[0])]
    return rows


def summary_rows(lines: list[str]) -> int:
    line = next(ln for ln in lines if ln.startswith("CSV timeline: "))
    return int(line.split("(")[1].split(" rows")[0])


def fill_up(disk: Path, clips, model_path) -> tuple[Live, Path]:
    """A monitor writing t.csv on ``disk`` (one free page), fed more rows than fit, waiting for 'disk is full'."""
    out = disk / "t.csv"
    # speaker turns off: stdin arrives faster than real time, and the disk (not the worker) is under test
    live = Live(["--csv", str(out), "--model", str(model_path), "--speakers", "off"])
    live.feed(speech(clips, times=8))  # 72 rows: far more than the free page holds
    live.wait_for("disk is full")
    return live, out


def test_disk_full_mid_run_is_reported_at_once_and_counted_honestly(small_disk, clips, model_path):
    fill(small_disk, PAGE)
    live, out = fill_up(small_disk, clips, model_path)
    try:
        assert live.proc.poll() is None, "the monitor ended"
        assert any("disk is full" in ln for ln in live.lines), "no line while running: " + "\n".join(live.lines)
        code = live.finish()
    finally:
        live.kill()
    err = "\n".join(live.lines)
    assert code == 1, err
    rows = whole_rows(out)[1:]
    assert summary_rows(live.lines) == len(rows), err
    assert "rows lost: the disk is full" in err and "Traceback" not in err, err


def test_rows_waiting_for_space_are_written_when_it_comes_back(small_disk, clips, model_path):
    filler = fill(small_disk, PAGE)
    live, out = fill_up(small_disk, clips, model_path)
    try:
        assert any("disk is full" in ln for ln in live.lines), "\n".join(live.lines)
        filler.unlink()
        live.feed(speech(clips[:2]))
        assert live.wait_for("writing again"), "\n".join(live.lines)
        code = live.finish()
    finally:
        live.kill()
    err = "\n".join(live.lines)
    assert code == 0, err
    rows = whole_rows(out)[1:]
    windows = int(next(ln for ln in live.lines if ln.startswith("done after")).split(": ")[1].split(" windows")[0])
    assert summary_rows(live.lines) == len(rows) == windows, err
    assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows), "rows out of order"


def test_csv_dir_on_a_full_disk_is_a_one_line_error(small_disk, clips, model_path):
    folder = small_disk / "csv"
    folder.mkdir()
    fill(small_disk, 0)
    proc = subprocess.run(VOICE_MONITOR + ["live", "--file", str(clips[0]), "--no-dashboard", "--transcriber",
                                           "none", "--csv-dir", str(folder), "--model", str(model_path)],
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "disk is full" in lines[0] and str(folder) in lines[0], lines[0]
    assert list(folder.iterdir()) == [], "an empty CSV was left behind"


def test_the_dashboard_shows_a_full_disk_while_rows_wait(small_disk):
    from rich.console import Console

    from monitor.audio.sources import Source
    from monitor.events import Event
    from monitor.health import HealthWatcher
    from monitor.labels import LABELS
    from monitor.sinks.csv_timeline import CsvTimeline
    from monitor.sinks.dashboard import Dashboard, Status

    sink = CsvTimeline(small_disk / "t.csv", LABELS)
    fill(small_disk, 0)
    probs = {lab: 1 / len(LABELS) for lab in LABELS}
    sink.handle(Event(0, 0, 0.0, 3.0, time.time(), "calm", 0.125, probs, text="x" * 5000))
    health = HealthWatcher(Source(), [sink])
    dash = Dashboard(LABELS, "stdin", "m", "off", lambda: Status(message=health.current()))
    console = Console(record=True, width=200)
    console.print(dash.render())
    assert "the disk is full; 1 rows wait for space" in console.export_text()
    sink.close()
    assert sink.state().lost == 1 and sink.rows == 0
