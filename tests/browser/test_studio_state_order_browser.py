"""A page never goes back to an older state: the state a page asks for when it opens
(``/state``) can reach it after the live stream has already brought a newer one (a busy
machine, a slow network), and the older answer must not replace what the page shows."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.browser.test_studio_browser import Browser, version, wait
from tests.studio_support import Person, Server, set_up
from tests.test_studio import wait_until

#: A slow network for the page's own ``/state`` questions, set before the page's script
#: runs: each answer is held until the test lets it through (``heldStates[i]()``), and the
#: version of the answer let through is noted in ``deliveredState`` just before the page's
#: script reads it (the page has then taken it when the next WebDriver command runs).
SLOW_STATE = """
const real = window.fetch;
window.heldStates = [];
window.deliveredState = null;
window.fetch = function (url, options) {
  const answer = real(url, options);
  if (!String(url).endsWith("/state")) return answer;
  return answer.then(r => new Promise(function (done) {
    window.heldStates.push(function () {
      const json = r.json.bind(r);
      r.json = () => json().then(function (state) {
        window.deliveredState = state.version;
        return state;
      });
      done(r);
    });
  }));
};
"""

OPENING = {"funding_split": {"city": 30, "county": 30, "foundation": 40},
           "governance": "equal_thirds", "timeline_years": 3,
           "maintenance": "shared_public", "naming_rights": "pavilion"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("studio")).start()
    yield running
    running.stop()


def test_a_late_answer_to_the_opening_state_request_never_replaces_a_newer_state(
        server: Server, browser: Browser) -> None:
    with httpx.Client(timeout=10) as client:
        links = set_up(client, server.base, "park-redevelopment",
                       {"city": "human", "county": "human", "foundation": "conceder"},
                       rounds=12)
        city = Person(client, links.seats["city"], server.base, opening=OPENING).open()
        wait_until(lambda: city.state()["your_turn"], timeout=60)
        county = browser()
        county.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                               {"source": SLOW_STATE})
        county.get(links.seats["county"])
        # The page asked for the state (it is the city's turn) and the stream shows it.
        wait(county, lambda d: d.execute_script("return window.heldStates.length") >= 1
             and d.find_element(By.TAG_NAME, "body").get_attribute("data-turn") == "theirs")
        asked = version(county)
        assert city.play() is False  # the city proposes: the county's turn comes
        wait(county, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-turn")
             == "yours")
    newer = version(county)
    assert newer > asked
    history = county.find_element(By.ID, "history").text
    assert "We can live with this." in history
    # Only now does the answer to the page's first question (the city's turn) arrive.
    county.execute_script("window.heldStates[0]()")
    wait(county, lambda d: d.execute_script("return window.deliveredState") is not None)
    assert county.execute_script("return window.deliveredState") == asked
    assert version(county) == newer
    assert county.find_element(By.TAG_NAME, "body").get_attribute("data-turn") == "yours"
    assert "Your turn" in county.find_element(By.ID, "status").text
    assert county.find_element(By.ID, "history").text == history
    assert county.find_element(By.ID, "accept").is_enabled()
