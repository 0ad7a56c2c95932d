"""``voice-monitor live --web`` (= ``serve --mic``): the server's own microphone (a real PulseAudio virtual
microphone, real PortAudio) runs the live pipeline, its windows reach a Server-Sent Events client and the page's
Watch tab in a real headless Chromium while the clips play, and a stop drains the session into its CSV."""

from __future__ import annotations

import csv
import json
import threading

import httpx
import pytest
from browser import chromium, console_errors, screenshot, wait_for
from conftest import DATA, load_clip, virtual_mic_tools
from selenium.webdriver.common.by import By
from web_server import start_server


@pytest.fixture
def mic_server(virtual_mic, tmp_path):
    server = start_server(tmp_path / "srv", "--device", "pulse", "--transcriber", "none",
                          "--csv", str(tmp_path / "mic.csv"), command=("live", "--web"),
                          env={k: virtual_mic.env[k] for k in ("XDG_RUNTIME_DIR", "HOME", "PULSE_SERVER")})
    clips = [load_clip(p) for p in sorted(DATA.glob("*.flac"))]
    schedule = [(1.0 + 5.0 * i, c) for i, c in enumerate(clips)]
    stop = threading.Event()
    writer = threading.Thread(target=virtual_mic_tools.play, args=(virtual_mic, schedule, stop), daemon=True)
    writer.start()
    try:
        yield server
    finally:
        server.stop()  # first: the stream must be closed while the writer still feeds it
        stop.set()
        writer.join(10)


def sse_windows(url: str, want: int, timeout: float = 60.0) -> list[dict]:
    got: list[dict] = []
    with httpx.stream("GET", url + "api/mic/events", timeout=timeout) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                m = json.loads(line[6:])
                if m["type"] == "window":
                    got.append(m["row"])
                    if len(got) >= want:
                        break
    return got


def test_watch_the_server_microphone(mic_server, tmp_path):
    h = httpx.get(mic_server.url + "api/health", timeout=10).json()
    assert h["mic"] is True
    windows = sse_windows(mic_server.url, 2)
    assert len(windows) == 2 and all(w["emotion"] in h["labels"] for w in windows)
    assert float(windows[1]["start_s"]) > float(windows[0]["start_s"])

    driver = chromium(tmp_path / "profile")
    try:
        driver.get(mic_server.url + "#watch")
        wait_for(driver, lambda d: d.find_element(By.ID, "panel-watch").is_displayed(), 30, "no Watch tab")
        rows = lambda d: d.find_elements(By.CSS_SELECTOR, "#watch-view tr.vm-window")  # noqa: E731
        wait_for(driver, lambda d: len(rows(d)) >= 2, 60, "the windows so far were not shown")
        seen = len(rows(driver))
        wait_for(driver, lambda d: len(rows(d)) > seen, 60, "no new window appeared while the clips played")
        assert "pulse" in driver.find_element(By.CSS_SELECTOR, "#watch-view .live-meta").text
        assert console_errors(driver) == []
        screenshot(driver, "web-watch.png", tmp_path)
    finally:
        driver.quit()
    mic_server.stop()  # SIGTERM: uvicorn shuts down gracefully, then exits by the signal it got
    assert mic_server.proc.returncode in (0, -15), mic_server.output()
    with (tmp_path / "mic.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= seen + 1 and rows[0]["emotion"] == windows[0]["emotion"]
    assert f"windows; CSV {tmp_path / 'mic.csv'} ({len(rows)} rows)" in mic_server.output()


def test_no_microphone_session_without_mic(tmp_path):
    s = start_server(tmp_path, "--transcriber", "none")
    try:
        r = httpx.get(s.url + "api/mic/events", timeout=10)
        assert r.status_code == 404 and "serve --mic" in r.json()["error"]
    finally:
        s.stop()
