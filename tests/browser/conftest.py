"""Real browsers for the studio's end-to-end tests: headless Chromium through Selenium,
with the system's chromium and chromedriver (Debian: apt-get install chromium
chromium-driver).  Each call of ``browser`` is a separate browser with its own profile —
one person each."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

from tests.conftest import REPO

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("STUDIO_CHROMEDRIVER", "/usr/bin/chromedriver")
#: Screenshots of the pages, kept as test artefacts.
SCREENSHOTS = REPO / "build" / "screenshots"
#: What every browser of a failed test showed: its screenshot and page source.
FAILURES = SCREENSHOTS / "failed"
#: Whether the test's own call failed (set by ``pytest_runtest_makereport``).
FAILED = pytest.StashKey[bool]()

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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Callable[..., webdriver.Chrome]]:
    """Opens as many separate browsers as a test needs and closes them all after it; if
    the test failed, what each one showed is kept under build/screenshots/failed/."""
    opened: list[webdriver.Chrome] = []

    def open_one(width: int = 1280, height: int = 800) -> webdriver.Chrome:
        opened.append(make_browser(width, height))
        return opened[-1]

    yield open_one
    if request.node.stash.get(FAILED, False):
        keep_failure(request.node.name, opened)
    for driver in opened:
        driver.quit()


def keep_failure(test: str, opened: list[webdriver.Chrome]) -> None:
    """Each browser's screenshot and page source (its address first), as it was when the test
    failed (a browser that no longer answers is noted as such)."""
    FAILURES.mkdir(parents=True, exist_ok=True)
    for number, driver in enumerate(opened, 1):
        stem = f"{test}-{number}"
        try:
            driver.save_screenshot(str(FAILURES / f"{stem}.png"))
            (FAILURES / f"{stem}.html").write_text(
                f"<!-- {driver.current_url} -->\n{driver.page_source}", encoding="utf-8")
        except WebDriverException as error:
            (FAILURES / f"{stem}.txt").write_text(f"the browser did not answer: {error}\n",
                                                encoding="utf-8")


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
