"""A page left open across a server restart shows the restarted server's states, even
when that server counts its versions from below the one the page shows (its clock set
back, the studio moved to another machine): versions are compared within one server's
run of the rehearsal (its epoch), never across two, and a late answer of the server the
page has left is not shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.test_studio_browser import Browser, take_turn, version, wait
from tests.browser.test_studio_state_order_browser import SLOW_STATE
from tests.conftest import REPO
from tests.studio_support import ANNOUNCED, Server, ServerOutput, set_up

#: ``negotiate serve`` whose rehearsals start their version count an hour ahead of the
#: clock (only the count: transcripts keep the real time), as a server whose clock ran
#: ahead would.
AHEAD = ("import time, types\n"
         "import negotiation.studio.rehearsal as rehearsal\n"
         "rehearsal.time = types.SimpleNamespace("
         "time_ns=lambda: time.time_ns() + 3600 * 10**9)\n"
         "from negotiation.cli import main; main()\n")


def serve_ahead(transcripts: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-c", AHEAD, "serve", "--port", "0", "--transcripts",
         str(transcripts)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        port = int(ServerOutput(process).wait_for(ANNOUNCED).group(1))
    except BaseException:
        process.kill()
        process.wait(10)
        raise
    return process, port


def body(driver: webdriver.Chrome, name: str) -> str | None:
    return driver.find_element(By.TAG_NAME, "body").get_attribute(name)


def test_a_page_open_across_a_restart_shows_the_new_server_even_if_it_counts_from_below(
        tmp_path: Path, browser: Browser) -> None:
    first, port = serve_ahead(tmp_path)
    try:
        with httpx.Client(timeout=10) as client:
            links = set_up(client, f"http://127.0.0.1:{port}", "park-redevelopment",
                           {"city": "human", "county": "boulware", "foundation": "conceder"},
                           rounds=12)
        city = browser()
        # The page's own /state answers are held until the test lets them through.
        city.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": SLOW_STATE})
        city.get(links.seats["city"])
        wait(city, lambda d: d.execute_script("return window.heldStates.length") >= 1
             and body(d, "data-turn") == "yours")
        shown, old_epoch = version(city), body(city, "data-epoch")
        assert old_epoch
    finally:
        first.kill()
        first.wait(10)
    second = Server(tmp_path, port=port).start()
    try:
        # No reload: the page's stream reconnects to the restarted server, whose count
        # starts an hour of microseconds below what the page shows.
        wait(city, lambda d: body(d, "data-epoch") not in (None, old_epoch))
        assert version(city) < shown
        wait(city, lambda d: body(d, "data-turn") == "yours")
        assert "Your turn" in city.find_element(By.ID, "status").text
        take_turn(city, first=True)  # the resumed turn, played from the same page
        wait(city, lambda d: "Shared costs and an independent board protect everyone."
             in d.find_element(By.ID, "history").text)
        now, epoch = version(city), body(city, "data-epoch")
        history = city.find_element(By.ID, "history").text
        # Only now does the first server's answer to the page's opening question arrive:
        # a higher version, of the epoch the page has left; it is not shown.
        city.execute_script("window.heldStates[0]()")
        wait(city, lambda d: d.execute_script("return window.deliveredState") is not None)
        assert city.execute_script("return window.deliveredState") > now
        assert (version(city), body(city, "data-epoch")) == (now, epoch)
        assert city.find_element(By.ID, "history").text == history
    finally:
        second.stop()
