"""The page in a real headless Chromium against a real server: it loads without console errors, an upload
shows the emotion, probabilities, timeline chart and windows, a bad file shows its error and the next upload
works, and the Record tab streams Chromium's fake microphone (a RAVDESS clip) and shows windows as they come.
Screenshots: WEB_SCREENSHOTS=1 writes them to docs/ (shown in the README)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from browser import chromium, console_errors, screenshot, wait_for
from conftest import DATA, load_clip
from selenium.webdriver.common.by import By
from web_server import SLOW_MACHINE, start_server

CLIP = DATA / "03-01-05-02-01-01-02.flac"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("page"), "--transcriber", "pocketsphinx", config=SLOW_MACHINE)
    yield s
    s.stop()


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "profile")
    yield driver
    driver.quit()


def cards(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#results .file-card")


def test_page_loads_without_console_errors(server, browser):
    browser.get(server.url)
    wait_for(browser, lambda d: "model emotion.tflite" in d.find_element(By.ID, "server-info").text)
    assert browser.title == "voice-monitor"
    assert "Drop audio files here" in browser.find_element(By.ID, "drop").text
    # every script and style came from the server itself
    for src in browser.execute_script(
            "return [...document.scripts].map(s => s.src).concat([...document.styleSheets].map(s => s.href))"):
        assert src.startswith(server.url), src
    assert console_errors(browser) == []


def test_upload_shows_emotion_probabilities_and_timeline(server, browser, tmp_path):
    browser.get(server.url)
    browser.find_element(By.ID, "file-input").send_keys(f"{CLIP}\n{DATA / '03-01-03-02-02-01-03.flac'}")
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".file-card .emotion")) == 2, 120,
             "the uploads' emotions never appeared")
    card = next(c for c in cards(browser) if CLIP.name in c.text)
    assert card.find_element(By.CSS_SELECTOR, ".emotion").text == "angry"
    assert len(card.find_elements(By.CSS_SELECTOR, ".vm-bar")) == 8
    chart = card.find_element(By.CSS_SELECTOR, "svg.vm-chart")
    assert len(chart.find_elements(By.CSS_SELECTOR, "path.vm-line:not([stroke-dasharray])")) == 8
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.vm-band")) >= 1
    rows = card.find_elements(By.CSS_SELECTOR, "tr.vm-window")
    assert rows and rows[0].find_element(By.CSS_SELECTOR, ".vm-emotion").text == "angry"
    assert any(r.find_element(By.CSS_SELECTOR, ".vm-words").text for r in rows), "no words under the windows"
    assert card.find_element(By.CSS_SELECTOR, ".dl-csv") and card.find_element(By.CSS_SELECTOR, ".dl-json")
    assert console_errors(browser) == []
    screenshot(browser, "web-files.png", tmp_path)


def test_a_bad_file_shows_an_error_and_the_next_upload_works(server, browser, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEfmt " + bytes(range(256)) * 8)
    browser.get(server.url)
    browser.find_element(By.ID, "file-input").send_keys(str(bad))
    err = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".file-card .error"), 60)
    assert "broken.wav: not a readable audio file" in err[0].text
    browser.find_element(By.ID, "file-input").send_keys(str(CLIP))
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".file-card .emotion"), 120)
    shown = [c.find_element(By.CSS_SELECTOR, ".emotion").text for c in cards(browser) if CLIP.name in c.text]
    assert shown == ["angry"]
    assert console_errors(browser, allow=("status of 422",)) == []


def test_record_with_the_fake_microphone_shows_windows_while_it_plays(server, tmp_path):
    gap = np.zeros(8000, dtype=np.int16)
    clips = [load_clip(p) for p in sorted(DATA.glob("*.flac"))[4:7]]
    wav = tmp_path / "voice.wav"
    sf.write(wav, np.concatenate([gap, clips[0], gap, clips[1], gap, clips[2], gap]), 16000, subtype="PCM_16")
    driver = chromium(tmp_path / "profile", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-audio-capture={wav}")
    try:
        driver.get(server.url + "#record")
        wait_for(driver, lambda d: d.find_element(By.ID, "panel-record").is_displayed())
        driver.find_element(By.ID, "rec-start").click()
        wait_for(driver, lambda d: d.find_element(By.ID, "rec-stop").is_enabled(), 60, "recording never started")
        windows = lambda d: d.find_elements(By.CSS_SELECTOR, "#rec-view tr.vm-window")  # noqa: E731
        wait_for(driver, lambda d: len(windows(d)) >= 1, 60, "no window appeared while the clip played")
        first = len(windows(driver))
        wait_for(driver, lambda d: len(windows(d)) > first, 60, "the timeline did not grow")
        assert driver.find_elements(By.CSS_SELECTOR, "#rec-view svg.vm-chart path.vm-line")
        assert driver.find_element(By.CSS_SELECTOR, "#rec-view .live-emotion").text != "–"
        wait_for(driver, lambda d: any(w.find_element(By.CSS_SELECTOR, ".vm-words").text for w in windows(d)), 60,
                 "no words appeared under the windows")
        screenshot(driver, "web-record.png", tmp_path)
        driver.find_element(By.ID, "rec-stop").click()
        wait_for(driver, lambda d: d.find_elements(By.ID, "rec-csv"), 60, "stop gave no CSV")
        rows = int(driver.find_element(By.ID, "rec-view").get_attribute("data-csv-rows"))
        assert rows >= len(windows(driver)) - 1 and rows >= 2
        assert "stopped:" in driver.find_element(By.ID, "rec-status").text
        assert console_errors(driver) == []
    finally:
        driver.quit()


DROP = """
const [names, payloads] = arguments;
const dt = new DataTransfer();
names.forEach((n, i) => dt.items.add(new File([Uint8Array.from(atob(payloads[i]), c => c.charCodeAt(0))], n)));
const zone = document.getElementById("drop");
zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
"""


def test_dropping_several_files_scores_each(server, browser):
    import base64

    clips = sorted(DATA.glob("*.flac"))[:3]
    browser.get(server.url)
    wait_for(browser, lambda d: "model" in d.find_element(By.ID, "server-info").text)
    browser.execute_script(DROP, [p.name for p in clips], [base64.b64encode(p.read_bytes()).decode() for p in clips])
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".file-card .emotion")) == 3, 120,
             "the dropped files were not all scored")
    names = {c.find_element(By.CSS_SELECTOR, ".name").text for c in cards(browser)}
    assert names == {p.name for p in clips}
    assert len(browser.find_elements(By.CSS_SELECTOR, ".file-card svg.vm-chart")) == 3
    assert console_errors(browser) == []
