"""The studio in real browsers (headless Chromium): two people negotiate the park against a
rule-based foundation and sign; a server killed mid-rehearsal comes back and the rehearsal
finishes; the offer builder's live utility is the engine's."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from negotiation.lifecycle import Status, transcript_status
from negotiation.scenario import load_scenario
from negotiation.utility import OutcomeSpace, UtilityFunction
from tests.browser.conftest import screenshot
from tests.studio_support import CLI, Person, Server, play_to_the_end, set_up

Browser = Callable[..., webdriver.Chrome]
PARK = load_scenario("park-redevelopment")
#: How the city's person opens, set up in the offer builder's controls.
OPENING = {"governance": "equal_thirds", "maintenance": "shared_public",
           "naming_rights": "pavilion"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("studio")).start()
    yield running
    running.stop()


def wait(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], object],
         timeout: float = 60) -> object:
    """Wait until ``condition`` holds: the bound is for a loaded machine (a first Chromium
    start, CI's other workers), not a claim about speed; a met condition returns at once."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def version(driver: webdriver.Chrome) -> int:
    return int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-version") or -1)


def draft_ready(driver: webdriver.Chrome) -> None:
    """Wait until the builder shows the utility of what its controls say now."""
    wait(driver, lambda d: d.execute_script(
        "return document.getElementById('draft-utility').dataset.ready === 'yes' && "
        "!document.querySelector('#builder').dataset.pending"))


def set_opening(driver: webdriver.Chrome) -> None:
    for issue, value in OPENING.items():
        Select(driver.find_element(By.ID, f"issue-{issue}")).select_by_value(value)
    driver.find_element(By.ID, "issue-timeline_years").send_keys(Keys.ARROW_RIGHT)


def take_turn(driver: webdriver.Chrome, first: bool) -> None:
    """What a person does on their turn: accept a standing offer worth at least their
    reservation value, else propose (the opening first, then the standing offer)."""
    before = version(driver)
    accept = driver.find_element(By.ID, "accept")
    standing = driver.find_elements(By.CSS_SELECTOR, ".standing-utility")
    reservation = float(driver.find_element(By.ID, "draft-rv").text)
    rationale = driver.find_element(By.ID, "rationale")
    if accept.is_enabled() and standing and float(standing[0].text) >= reservation:
        rationale.send_keys("This is a fair deal for us.")
        accept.click()
    else:
        if first:
            set_opening(driver)
        draft_ready(driver)
        rationale.send_keys("Shared costs and an independent board protect everyone.")
        propose = driver.find_element(By.ID, "propose")
        propose.click()
        if propose.text == "Propose anyway":
            propose.click()
    # The server took the move (a newer state) and the page has its own answer: it clears
    # the reason and stops keeping the draft only once the POST returns, which may come
    # after the stream's state; the next turn must not start from a leftover reason.
    wait(driver, lambda d: version(d) > before and
         d.find_element(By.ID, "rationale").get_attribute("value") == "")


def negotiate(people: list[webdriver.Chrome], rounds: int = 12) -> None:
    opened = {id(driver): False for driver in people}
    shots: list[Path] = []
    for _ in range(rounds * 3 + 6):
        ended = 0
        for driver in people:
            turn = driver.find_element(By.TAG_NAME, "body").get_attribute("data-turn")
            if driver.find_element(By.ID, "outcome-card").is_displayed():
                ended += 1
            elif turn == "yours":
                if opened[id(driver)] and not shots:
                    shots.append(screenshot(driver, "seat-mid-negotiation-1280x800"))
                take_turn(driver, first=not opened[id(driver)])
                opened[id(driver)] = True
        if ended == len(people):
            return
        wait(people[0], lambda d: any(
            x.find_element(By.TAG_NAME, "body").get_attribute("data-turn") == "yours" or
            x.find_element(By.ID, "outcome-card").is_displayed() for x in people))
    raise AssertionError("no outcome within the deadline")


def approve(driver: webdriver.Chrome, comment: str) -> None:
    wait(driver, lambda d: d.find_element(By.ID, "approve").is_displayed())
    driver.find_element(By.ID, "signoff-comment").send_keys(comment)
    driver.find_element(By.ID, "approve").click()
    wait(driver, lambda d: "You approved" in d.find_element(By.ID, "signoff-status").text)


def verify_cli(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "verify", str(path)], capture_output=True, text=True,
                          timeout=120)


def test_two_people_in_two_browsers_reach_an_agreement_approve_it_and_it_verifies(
        server: Server, browser: Browser) -> None:
    facilitator = browser()
    facilitator.get(f"{server.base}/setup/park-redevelopment")
    for party in ("city", "county"):
        Select(facilitator.find_element(By.ID, f"seat-{party}")).select_by_value("human")
    assert Select(facilitator.find_element(By.ID, "seat-foundation")
                  ).first_selected_option.get_attribute("value") == "conceder"
    rounds = facilitator.find_element(By.ID, "rounds")
    rounds.clear()
    rounds.send_keys("12")
    facilitator.find_element(By.ID, "start").click()
    wait(facilitator, lambda d: d.find_elements(By.ID, "observer-link"))
    links = {str(a.get_attribute("data-party")): str(a.get_attribute("href"))
             for a in facilitator.find_elements(By.CSS_SELECTOR, "a.seat-link")}
    observer = str(facilitator.find_element(By.ID, "observer-link").get_attribute("href"))
    assert set(links) == {"city", "county"}

    city, county = browser(), browser()
    city.get(links["city"])
    county.get(links["county"])
    wait(city, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-turn")
         == "yours")
    assert "Your turn" in city.find_element(By.ID, "status").text
    screenshot(city, "seat-your-turn-1280x800")
    negotiate([city, county])

    assert city.find_element(By.ID, "outcome-title").text == "Agreement"
    assert "gain of" in city.find_element(By.ID, "outcome-utility").text
    screenshot(county, "seat-agreement-1280x800")
    approve(city, "The council can ratify this.")
    approve(county, "Within the capital plan.")
    wait(city, lambda d: "ratified" in d.find_element(By.ID, "signoff-status").text)

    facilitator.get(observer)
    wait(facilitator, lambda d: d.find_element(By.ID, "charter").is_displayed())
    assert "approved by" in facilitator.find_element(By.ID, "signoffs").text
    screenshot(facilitator, "observer-ratified-1280x800")
    county.set_window_size(390, 844)
    screenshot(county, "seat-agreement-narrow")

    path = server.transcripts / f"{links['city'].split('/r/')[1].split('/')[0]}.jsonl"
    assert transcript_status(path)[0] is Status.RATIFIED
    done = verify_cli(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout


def test_a_server_killed_mid_rehearsal_restarts_and_the_rehearsal_finishes(
        tmp_path: Path, browser: Browser) -> None:
    first = Server(tmp_path).start()
    try:
        with httpx.Client(timeout=10) as client:
            links = set_up(client, first.base, "park-redevelopment",
                           {"city": "human", "county": "human", "foundation": "conceder"},
                           rounds=12)
        city = browser()
        city.get(links.seats["city"])
        wait(city, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-turn")
             == "yours")
        take_turn(city, first=True)  # the city's opening is on the table
    finally:
        first.kill()
    transcript = tmp_path / f"{links.rehearsal}.jsonl"
    assert transcript_status(transcript)[0] is Status.IN_PROGRESS

    second = Server(tmp_path, port=first.port).start()
    try:
        city.refresh()  # people reload and continue
        with httpx.Client(timeout=10) as client:
            county = Person(client, links.seats["county"], second.base).open()
            for _ in range(200):
                ended = county.play()
                turn = city.find_element(By.TAG_NAME, "body").get_attribute("data-turn")
                if city.find_element(By.ID, "outcome-card").is_displayed() and ended:
                    break
                if turn == "yours":
                    take_turn(city, first=False)
            play_to_the_end([county])
            assert county.state()["outcome"]["status"] == "agreement"
            approve(city, "Agreed after the restart.")
            assert county.sign("approve", "Agreed too.").status_code == 200
    finally:
        second.stop()
    text = transcript.read_text()
    assert '"type":"resumed"' in text
    assert transcript_status(transcript)[0] is Status.RATIFIED
    done = verify_cli(transcript)
    assert done.returncode == 0, done.stdout + done.stderr


def shown_terms(driver: webdriver.Chrome) -> dict[str, Any]:
    """The terms the builder's controls show, read from the page as a person sees them."""
    terms: dict[str, Any] = {}
    for fieldset in driver.find_elements(By.CSS_SELECTOR, "fieldset.issue"):
        issue, kind = fieldset.get_attribute("data-issue"), fieldset.get_attribute("data-kind")
        assert issue is not None
        if kind == "split":
            terms[issue] = {i.get_attribute("data-party"): int(i.get_attribute("value") or 0)
                            for i in fieldset.find_elements(By.CSS_SELECTOR, "input.share")}
        elif kind == "numeric":
            terms[issue] = int(fieldset.find_element(By.TAG_NAME, "input")
                               .get_attribute("value") or 0)
        else:
            terms[issue] = Select(fieldset.find_element(By.TAG_NAME, "select")
                                  ).first_selected_option.get_attribute("value")
    return terms


def city_seat(server: Server, browser: Browser) -> webdriver.Chrome:
    """A browser on the city's seat of park-redevelopment, against two rule-based seats."""
    with httpx.Client(timeout=10) as client:
        links = set_up(client, server.base, "park-redevelopment",
                       {"city": "human", "county": "boulware", "foundation": "conceder"})
    page = browser()
    page.get(links.seats["city"])
    return page


def test_the_offer_builder_shows_the_engines_utility_live_and_keeps_splits_at_100(
        server: Server, browser: Browser) -> None:
    page = city_seat(server, browser)
    engine = UtilityFunction(OutcomeSpace.of(PARK), PARK.organization("city").preferences,
                             "city")
    share = page.find_element(By.ID, "issue-funding_split-city")
    shown = page.find_element(By.ID, "draft-utility")

    def settled_on_engine(terms: dict[str, Any]) -> None:
        """The builder is not waiting for an answer and shows the engine's utility of
        ``terms`` (the server rounds it to 6 places)."""
        def check(d: webdriver.Chrome) -> bool:
            value = shown.get_attribute("data-value")
            return value is not None and abs(float(value) - round(engine(terms), 6)) <= 1e-9 \
                and not d.execute_script("return document.querySelector('#builder')"
                                         ".dataset.pending")
        wait(page, check)

    checked = 0
    for keys, choice in [(3, "equal_thirds"), (4, "independent_conservancy"),
                         (-5, "city_majority"), (9, "foundation_chair")]:
        key = Keys.ARROW_RIGHT if keys > 0 else Keys.ARROW_LEFT
        share.send_keys(*[key] * abs(keys))
        settled_on_engine(shown_terms(page))
        # Chosen after the slider's answer came (as a slow machine or a person would):
        # WebDriver's choice fires only "change", and the utility must still follow it.
        Select(page.find_element(By.ID, "issue-governance")).select_by_value(choice)
        terms = shown_terms(page)
        settled_on_engine(terms)
        assert abs(float(shown.text) - engine(terms)) <= 0.0005 + 1e-9  # shown to 3 places
        split = terms["funding_split"]
        assert isinstance(split, dict) and sum(split.values()) == 100
        assert all(value % 5 == 0 for value in split.values())
        checked += 1
    # The last draft gives the foundation the chair: across the city's own red line.
    warnings = page.find_element(By.ID, "warnings").text
    assert "Crosses your red line" in warnings and "foundation_chair" in warnings
    assert checked == 4
    page.set_window_size(390, 844)
    screenshot(page, "seat-offer-builder-narrow")
    # Proposing it asks once more; proposed anyway, the referee blocks it and says why.
    wait(page, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-turn")
         == "yours")
    page.find_element(By.ID, "rationale").send_keys("Testing the limits.")
    propose = page.find_element(By.ID, "propose")
    propose.click()
    assert propose.text == "Propose anyway"
    assert "press again" in page.find_element(By.ID, "move-error").text
    assert page.find_element(By.ID, "history").text == ""
    propose.click()
    wait(page, lambda d: d.find_element(By.ID, "feedback-card").is_displayed())
    assert "blocked by the referee" in page.find_element(By.ID, "feedback").text
    assert "red line" in page.find_element(By.ID, "feedback").text


#: A slow network for the builder's questions: each /utility answer is held until the test
#: lets it through (``held[i]()``); every time the builder stops waiting, the utility it
#: shows then is noted in ``settled``.
SLOW_ANSWERS = """
const real = window.fetch;
window.held = [];
window.fetch = function (url, options) {
  const answer = real(url, options);
  if (!String(url).includes("/utility")) return answer;
  return answer.then(r => new Promise(done => window.held.push(() => done(r))));
};
window.settled = [];
const builder = document.getElementById("builder");
new MutationObserver(function () {
  if (!builder.dataset.pending) {
    window.settled.push(document.getElementById("draft-utility").dataset.value);
  }
}).observe(builder, {attributes: true, attributeFilter: ["data-pending"]});
"""


def test_an_answer_for_an_older_draft_never_shows_as_the_current_drafts_utility(
        server: Server, browser: Browser) -> None:
    page = city_seat(server, browser)
    wait(page, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-turn")
         == "yours")
    draft_ready(page)
    page.execute_script(SLOW_ANSWERS)
    page.find_element(By.ID, "issue-funding_split-city").send_keys(Keys.ARROW_RIGHT)
    wait(page, lambda d: d.execute_script("return window.held.length") == 1)
    # The person changes the draft again, and the first draft's answer arrives while the
    # builder is still waiting to ask about the second one.
    page.execute_script("""
        const select = document.getElementById("issue-governance");
        select.value = select.value === "city_majority" ? "equal_thirds" : "city_majority";
        select.dispatchEvent(new Event("input", {bubbles: true}));
        window.held[0]();""")
    wait(page, lambda d: d.execute_script("return window.held.length") == 2)
    page.execute_script("window.held[1]()")
    wait(page, lambda d: not d.execute_script(
        "return document.querySelector('#builder').dataset.pending"))
    engine = UtilityFunction(OutcomeSpace.of(PARK), PARK.organization("city").preferences,
                             "city")
    settled = page.execute_script("return window.settled")
    assert [float(value) for value in settled] == [round(engine(shown_terms(page)), 6)]


HOSTILE = ('<img src=x onerror="document.title=\'owned\'">'
           '<script>document.title="owned"</script>')


def test_hostile_rationales_are_shown_as_text_and_never_run(server: Server,
                                                            browser: Browser) -> None:
    with httpx.Client(timeout=10) as client:
        links = set_up(client, server.base, "park-redevelopment",
                       {"city": "human", "county": "human", "foundation": "conceder"})
        city = Person(client, links.seats["city"], server.base).open()
        turn_by = time.monotonic() + 60
        while not city.state()["your_turn"]:
            assert time.monotonic() < turn_by, "the city's turn did not come within 60 s"
            time.sleep(0.05)
        reply = city.move({"kind": "propose", "rationale": HOSTILE, "terms": {
            "funding_split": {"city": 30, "county": 30, "foundation": 40},
            "governance": "equal_thirds", "timeline_years": 3,
            "maintenance": "shared_public", "naming_rights": "pavilion"}})
        assert reply.status_code == 200
    for url, log in ((links.seats["county"], "history"), (links.observer, "log")):
        page = browser()
        page.get(url)
        wait(page, lambda d, log=log: HOSTILE in d.find_element(By.ID, log).text)
        assert page.title != "owned"
        assert page.find_elements(By.CSS_SELECTOR, f"#{log} img, #{log} script") == []


def test_a_passed_turn_reads_as_who_did_not_answer_on_the_observer_and_seat_pages(
        tmp_path: Path, browser: Browser) -> None:
    from tests.test_studio import tiny_folder

    folder = tiny_folder(tmp_path / "s", b=HOSTILE)
    idle = Server(tmp_path / "transcripts", extra=["--scenarios", str(folder),
                                                   "--idle-timeout", "1",
                                                   "--on-idle", "pass"]).start()
    try:
        with httpx.Client(timeout=10) as client:
            links = set_up(client, idle.base, "tiny", {"a": "boulware", "b": "human"},
                           rounds=2)
        said = f"{HOSTILE} did not answer within 1 s: passed"
        for url, log, name in ((links.observer, "log", "observer-pass-1280x800"),
                               (links.seats["b"], "history", "seat-pass-1280x800")):
            page = browser()
            page.get(url)
            # Read in one script: the log is redrawn at every update.
            read = f"const li = document.querySelector('#{log} li.pass'); return li && " \
                   "[li.querySelector('.kind').textContent, li.querySelector('em').textContent]"
            wait(page, lambda d, read=read: d.execute_script(read))
            assert page.execute_script(read) == \
                ["pass", said if log == "log" else "You did not answer within 1 s: passed"]
            assert page.title != "owned"
            assert page.find_elements(By.CSS_SELECTOR, f"#{log} img, #{log} script") == []
            screenshot(page, name)
    finally:
        idle.stop()
