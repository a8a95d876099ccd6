"""The idle countdown in a real browser: the person whose turn it is reads how long they
have left and what happens then, the time runs down, a reload shows what remains (not a
fresh timeout), and the observer reads it too, the names shown as text."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.conftest import screenshot
from tests.browser.test_studio_browser import Browser, wait
from tests.studio_support import Person, Server, set_up
from tests.test_studio import tiny_folder, wait_until

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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A studio with an idle timeout, offering the tiny scenario (Alpha's name hostile)
    and a copy of it without a zone of possible agreement."""
    folder = tiny_folder(tmp_path_factory.mktemp("scenarios"), a=HOSTILE)
    (folder / "hopeless.yaml").write_text(hopeless((folder / "tiny.yaml").read_text()))
    running = Server(tmp_path_factory.mktemp("transcripts"), extra=[
        "--scenarios", str(folder), "--idle-timeout", str(TIMEOUT),
        "--idle-strategy", "boulware"]).start()
    yield running
    running.stop()


def hopeless(scenario: str) -> str:
    data = yaml.safe_load(scenario)
    data["id"] = "hopeless"
    for org in data["organizations"]:
        org["preferences"]["reservation_value"] = 0.9
    return yaml.safe_dump(data, sort_keys=False)


def test_the_seat_counts_down_to_its_idle_turn_and_a_reload_keeps_the_time_left(
        server: Server, browser: Browser) -> None:
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


def test_seat_and_observer_say_a_rehearsal_without_a_zone_of_agreement_was_not_justified(
        server: Server, browser: Browser) -> None:
    with httpx.Client(timeout=10) as client:
        links = set_up(client, server.base, "hopeless", {"a": "human", "b": "boulware"})
        alpha = Person(client, links.seats["a"], server.base).open()
        wait_until(lambda: alpha.state()["your_turn"])
        assert alpha.move({"kind": "walk_away", "rationale": "No deal here."}).status_code \
            == 200
    page = browser()
    for url in (links.seats["a"], links.observer):
        page.get(url)
        wait(page, lambda d: d.find_element(By.ID, "outcome-zopa").is_displayed())
        assert page.find_element(By.ID, "outcome-zopa").text.startswith(
            "Partnership not justified: no outcome meets every organisation's reservation")
    assert not page.find_element(By.ID, "charter").is_displayed()  # nothing to ratify
    assert not page.find_element(By.ID, "signoff-title").is_displayed()
    screenshot(page, "observer-not-justified-1280x800")
