"""Real browsers for the studio's end-to-end tests: headless Chromium through Selenium,
with the system's chromium and chromedriver (Debian: apt-get install chromium
chromium-driver).  Each call of ``browser`` is a separate browser with its own profile —
one person each."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import REPO

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("STUDIO_CHROMEDRIVER", "/usr/bin/chromedriver")
#: Screenshots of the pages, kept as test artefacts.
SCREENSHOTS = REPO / "build" / "screenshots"

MISSING = (f"the browser tests need Chromium and its driver at {CHROMIUM} and {CHROMEDRIVER}: "
           "install them with 'sudo apt-get install chromium chromium-driver' (Debian/Ubuntu), "
           "or point STUDIO_CHROMIUM and STUDIO_CHROMEDRIVER at your own")


def make_browser(width: int = 1280, height: int = 800) -> webdriver.Chrome:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)) or \
            not (Path(CHROMEDRIVER).exists() or shutil.which(CHROMEDRIVER)):
        pytest.fail(MISSING)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", f"--window-size={width},{height}",
                     "--disable-extensions", "--no-first-run"):
        options.add_argument(argument)
    # The driver path is given: Selenium Manager would try to download one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_window_size(width, height)
    return driver


@pytest.fixture
def browser() -> Iterator[Callable[..., webdriver.Chrome]]:
    """Opens as many separate browsers as a test needs and closes them all after it."""
    opened: list[webdriver.Chrome] = []

    def open_one(width: int = 1280, height: int = 800) -> webdriver.Chrome:
        opened.append(make_browser(width, height))
        return opened[-1]

    yield open_one
    for driver in opened:
        driver.quit()


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Save the whole page (as tall as it is) under build/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    original = driver.get_window_size()["height"]
    driver.set_window_size(width, max(int(height) + 120, original))
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(width, original)
    return path
