"""The idle countdown in a real browser: the person whose turn it is reads how long they
have left and what happens then, the time runs down, a reload shows what remains (not a
fresh timeout), and the observer reads it too, the names shown as text."""

from __future__ import annotations

from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.conftest import screenshot
from tests.browser.test_studio_browser import Browser, wait
from tests.studio_support import Server, set_up
from tests.test_studio import tiny_folder

HOSTILE = "<img src=x onerror=alert(1)>Alpha"
#: The server's idle timeout: long enough that no turn ends during the test.
TIMEOUT = 40


def countdown(driver: webdriver.Chrome) -> tuple[str, int]:
    """The countdown's text and whole seconds left, read together (it is redrawn 4 times a
    second)."""
    read = driver.execute_script(
        "const c = document.getElementById('countdown');"
        "return c && !c.hidden && c.dataset.seconds ? [c.textContent, c.dataset.seconds]"
        " : null")
    assert read is not None, "no countdown shown"
    return str(read[0]), int(read[1])


def shown(driver: webdriver.Chrome) -> bool:
    return bool(driver.execute_script(
        "const c = document.getElementById('countdown'); return c && !c.hidden && "
        "c.dataset.seconds"))


def test_the_seat_counts_down_to_its_idle_turn_and_a_reload_keeps_the_time_left(
        tmp_path: Path, browser: Browser) -> None:
    folder = tiny_folder(tmp_path / "s", a=HOSTILE)
    server = Server(tmp_path / "transcripts", extra=[
        "--scenarios", str(folder), "--idle-timeout", str(TIMEOUT),
        "--idle-strategy", "boulware"]).start()
    try:
        with httpx.Client(timeout=10) as client:
            passing = set_up(client, server.base, "tiny", {"a": "human", "b": "boulware"},
                             on_idle="pass")
            handed = set_up(client, server.base, "tiny", {"a": "human", "b": "human"})
        seat = browser()
        seat.get(passing.seats["a"])
        wait(seat, shown)
        said, first = countdown(seat)
        assert said.startswith("You pass in 0:") and "the offer on the table stays" in said
        assert first <= TIMEOUT
        wait(seat, lambda d: countdown(d)[1] < first, timeout=5)  # it runs down
        screenshot(seat, "seat-countdown-1280x800")
        seat.refresh()
        wait(seat, shown)
        assert countdown(seat)[1] < first  # what remains, not a fresh timeout

        narrow = browser(420, 860)
        narrow.get(handed.seats["a"])
        wait(narrow, shown)
        said, _ = countdown(narrow)
        assert said.startswith("Your turn is handed to the boulware strategy in 0:")
        screenshot(narrow, "seat-countdown-narrow")
        narrow.get(handed.observer)
        wait(narrow, shown)
        said, _ = countdown(narrow)
        assert said.startswith(f"{HOSTILE}'s turn is handed to the boulware strategy in 0:")
        assert narrow.find_elements(By.CSS_SELECTOR, "#countdown img") == []
        assert narrow.title != "owned"
    finally:
        server.stop()
