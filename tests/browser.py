"""A real headless Chromium (Debian's chromium and chromium-driver) driven by selenium, for the web tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
         "--window-size=1280,1000"]


def require_chromium() -> None:
    """Skip without Chromium (an outside resource), but fail in CI, whose setup installs it."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("chromium/chromium-driver are missing in CI: scripts/setup.sh --dev installs them")
        pytest.skip("chromium and chromium-driver are not installed: run scripts/setup.sh --dev")


def chromium(profile: Path, *extra: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require_chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}", *extra]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    return driver


def console_errors(driver, allow: tuple[str, ...] = ()) -> list[str]:
    """SEVERE browser-console entries since the last call, minus those containing any of ``allow``."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(a in e["message"] for a in allow)]


def wait_for(driver, condition, timeout: float = 60.0, message: str = ""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message)


def screenshot(driver, name: str, folder: Path) -> Path:
    """A PNG of the page in ``folder``; with WEB_SCREENSHOTS=1 also as docs/NAME (the README's pictures), so
    an ordinary test run leaves the repository as it was."""
    shot = folder / name
    driver.save_screenshot(str(shot))
    if os.environ.get("WEB_SCREENSHOTS") == "1":
        shutil.copyfile(shot, Path(__file__).resolve().parents[1] / "docs" / name)
    return shot
