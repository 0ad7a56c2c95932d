"""``voice-monitor report``: a self-contained HTML file from the CSV the live monitor writes and from the CSV
``score --windows`` writes, drawn by a real headless Chromium from file:// (no server). Also: the report and
``monitor`` itself work without the web extra, and ``serve`` then says in one line how to get it."""

from __future__ import annotations

import csv
import os
import re
import subprocess

import numpy as np
import pytest
import soundfile as sf
from browser import chromium, console_errors, screenshot, wait_for
from conftest import DATA, REPO, VOICE_MONITOR, load_clip
from selenium.webdriver.common.by import By


def run(*args: str, cwd=REPO, code: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    cmd = [VOICE_MONITOR[0], "-c", code, *args] if code else [*VOICE_MONITOR, *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def live_csv(tmp_path_factory):
    """A CSV timeline written by the live monitor itself (--file, pocketsphinx words)."""
    tmp = tmp_path_factory.mktemp("live")
    gap = np.zeros(16000, dtype=np.int16)
    audio = np.concatenate([gap, *[np.concatenate([load_clip(p), gap]) for p in sorted(DATA.glob("*.flac"))[:3]]])
    wav = tmp / "three.wav"
    sf.write(wav, audio, 16000, subtype="PCM_16")
    out = tmp / "timeline.csv"
    proc = run("live", "--file", str(wav), "--csv", str(out), "--no-dashboard", "--transcriber", "pocketsphinx")
    assert proc.returncode == 0, proc.stderr
    return out


def open_report(tmp_path, html):
    driver = chromium(tmp_path / "profile")
    driver.get(html.as_uri())
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "svg.vm-chart"), 30, "the report drew no chart")
    return driver


def test_report_from_the_live_monitor_csv(live_csv, tmp_path):
    rows = list(csv.DictReader(live_csv.open()))
    assert len(rows) >= 3 and any(r["text"] for r in rows)
    out = tmp_path / "report.html"
    proc = run("report", str(live_csv), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"{out} ({len(rows)} windows)" in proc.stdout
    text = out.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text), "the report loads something from outside"
    chart_js = (REPO / "monitor" / "web" / "static" / "chart.js").read_text()
    assert chart_js.replace("</", "<\\/") in text, "the report does not inline the page's chart code"
    driver = open_report(tmp_path, out)
    try:
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.vm-chart path.vm-line:not([stroke-dasharray])")) == 8
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.vm-chart rect.vm-band")) == len(rows)
        windows = driver.find_elements(By.CSS_SELECTOR, "tr.vm-window")
        assert [w.find_element(By.CSS_SELECTOR, ".vm-emotion").text for w in windows] == [r["emotion"] for r in rows]
        assert [w.find_element(By.CSS_SELECTOR, ".vm-words").text for w in windows] == [r["text"] for r in rows]
        summary = {tr.get_attribute("data-label"): tr.find_elements(By.TAG_NAME, "td")[1].text
                   for tr in driver.find_elements(By.CSS_SELECTOR, "table.vm-summary tbody tr")}
        assert len(summary) == 8
        for label, n in summary.items():
            assert int(n) == sum(r["emotion"] == label for r in rows)
        assert console_errors(driver) == []
        screenshot(driver, "web-report.png", tmp_path)
    finally:
        driver.quit()


def test_report_from_score_windows_has_one_timeline_per_file(tmp_path):
    clips = sorted(DATA.glob("*.flac"))[:3]
    win = tmp_path / "windows.csv"
    proc = run("score", *map(str, clips), "-o", str(tmp_path / "files.csv"), "-w", str(win), "-j", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "windows.html"
    assert run("report", str(win)).returncode == 0  # default output: the CSV's name with .html
    driver = open_report(tmp_path, out)
    try:
        titles = [h.text for h in driver.find_elements(By.CSS_SELECTOR, ".vm-timeline h2")]
        assert titles == ["All 3 files", *map(str, clips)]
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.vm-chart")) == 3
        assert console_errors(driver) == []
    finally:
        driver.quit()


def test_report_refuses_what_is_not_a_timeline_in_one_line(tmp_path):
    for args, words in [((str(DATA / "README.md"),), "not an emotion timeline"),
                        ((str(tmp_path / "none.csv"),), "no such file"),
                        ((str(DATA / "03-01-01-01-01-01-01.flac"),), "not a UTF-8 CSV file")]:
        proc = run("report", *args, "-o", str(tmp_path / "x.html"))
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.html").exists()


BLOCK_WEB = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("starlette", "uvicorn", "python_multipart", "fastapi"):
            raise ImportError(f"{name} blocked by the test")
sys.meta_path.insert(0, Block())
import monitor, monitor.cli, monitor.config, monitor.pipeline, monitor.web.report
from monitor.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_the_web_extra(live_csv, tmp_path):
    proc = run("report", str(live_csv), "-o", str(tmp_path / "r.html"), code=BLOCK_WEB)
    assert proc.returncode == 0, proc.stderr
    proc = run("serve", "--port", "0", code=BLOCK_WEB)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("voice-monitor: error: the web page needs the web extra: run `scripts/setup.sh` "
                                   "again, or `.venv/bin/pip install -e '.[web]'`")


def test_optional_columns_are_shown_when_the_rows_have_them(live_csv, tmp_path):
    """Rows with arousal/valence (another model) and speaker (speaker turns) columns: the same chart code shows
    them (dashed lines, table columns) without knowing them in advance; rows without them show none."""
    with live_csv.open() as f:
        reader = csv.DictReader(f)
        base = [c for c in reader.fieldnames if c not in ("arousal", "valence", "speaker")]
        columns = [*base[:7], "arousal", "valence", "speaker", *base[7:]]
        rows = list(reader)
    for i, r in enumerate(rows):
        r.update(arousal=f"{0.2 + 0.1 * i:.2f}", valence=f"{-0.5 + 0.2 * i:.2f}", speaker=f"S{i % 2 + 1}")
    extended = tmp_path / "extended.csv"
    with extended.open("w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)
    without = tmp_path / "without.csv"  # the columns of a version without arousal/valence and speakers
    with without.open("w", newline="") as f:
        w = csv.DictWriter(f, base, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "extended.html"
    assert run("report", str(extended), "-o", str(out)).returncode == 0
    driver = open_report(tmp_path, out)
    try:
        heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.vm-transcript th")]
        assert heads == ["time", "emotion", "conf.", "arousal", "valence", "speaker", "words"]
        cells = driver.find_elements(By.CSS_SELECTOR, "tr.vm-window")[1].find_elements(By.TAG_NAME, "td")
        assert [c.text for c in cells[3:6]] == ["0.30", "-0.30", "S2"]
        dashed = driver.find_elements(By.CSS_SELECTOR, "svg.vm-chart path.vm-line[stroke-dasharray]")
        assert sorted(p.get_attribute("data-column") for p in dashed) == ["arousal", "valence"]
        assert console_errors(driver) == []
    finally:
        driver.quit()
    plain = tmp_path / "plain.html"
    assert run("report", str(without), "-o", str(plain)).returncode == 0
    driver = open_report(tmp_path, plain)
    try:
        heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.vm-transcript th")]
        assert heads == ["time", "emotion", "conf.", "words"]
        assert not driver.find_elements(By.CSS_SELECTOR, "svg.vm-chart path.vm-line[stroke-dasharray]")
    finally:
        driver.quit()
