"""The idle countdown a studio page shows: the state of every page names whose turn it is,
how long it has left and what happens then, counted from the driver's own deadline, so a
page loaded late gets the time that remains (not a fresh one) and the turn ends when the
pages said it would."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.studio_support import Person, Server, set_up
from tests.test_studio import BASE, Open, serve, tiny_folder, wait_until
from tests.test_studio_idle import events_of

__all__ = ["serve"]  # the fixture, shared with tests/test_studio.py


def test_the_countdown_is_the_deadline_the_driver_passes_the_turn_at(
        tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"), idle_timeout=2)
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "boulware"}, on_idle="pass")
    path = tmp_path / "transcripts" / f"{links.rehearsal}.jsonl"
    alpha = Person(client, links.seats["a"], BASE).open()
    wait_until(lambda: alpha.state()["your_turn"])
    read_at = time.monotonic()
    first = alpha.state()["countdown"]
    assert first["party"] == "a" and first["name"] == "Alpha"
    assert first["on_idle"] == "pass" and 0 < first["seconds_left"] <= 2
    time.sleep(0.5)
    again = alpha.state()["countdown"]  # a reload: what remains, not a fresh 2 s
    assert again["seconds_left"] <= first["seconds_left"] - 0.45
    observed = client.get(links.observer + "/state").json()["countdown"]
    assert observed["party"] == "a" and observed["seconds_left"] <= again["seconds_left"]
    wait_until(lambda: any(e["type"] == "passed" for e in events_of(path)), timeout=10)
    passed_after = time.monotonic() - read_at
    # Never before the time the page was given; late only by the polling and the write.
    assert first["seconds_left"] - 0.05 <= passed_after <= first["seconds_left"] + 1.0
    # Beta's strategy answers the pass; Alpha's next turn gets a whole timeout of its own.
    wait_until(lambda: alpha.state()["your_turn"] and len(alpha.state()["history"]) == 2)
    assert alpha.state()["countdown"]["seconds_left"] > again["seconds_left"]


def test_the_countdown_names_the_strategy_that_plays_an_idle_turn(
        tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"), idle_timeout=30, idle_strategy="boulware")
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE).open()
    beta = Person(client, links.seats["b"], BASE).open()
    assert "You have 30 s for each turn; after that the boulware strategy plays it for you" \
        in alpha.seen[0]
    wait_until(lambda: alpha.state()["your_turn"])
    shown = beta.state()["countdown"]  # the other seat sees whose clock runs, too
    assert (shown["party"], shown["on_idle"], shown["strategy"]) == ("a", "strategy",
                                                                      "boulware")
    assert shown["seconds_left"] == pytest.approx(30, abs=2)
    assert alpha.move({"kind": "propose", "terms": {"colour": "red", "price": 5,
                                                    "pot": {"a": 50, "b": 50}},
                       "rationale": "Half each."}).status_code == 200
    # The move took the turn: no clock runs for Alpha any more, and Beta's starts afresh.
    assert alpha.state()["countdown"] is None or alpha.state()["countdown"]["party"] == "b"
    wait_until(lambda: (beta.state()["countdown"] or {}).get("party") == "b")
    assert beta.state()["countdown"]["seconds_left"] == pytest.approx(30, abs=2)


def test_without_an_idle_timeout_no_countdown_is_sent(tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "boulware"})
    alpha = Person(client, links.seats["a"], BASE).open()
    wait_until(lambda: alpha.state()["your_turn"])
    assert alpha.state()["countdown"] is None
    assert 'id="countdown"' in alpha.seen[0]


def test_a_restarted_server_sends_the_pages_a_state_they_have_not_shown(
        tmp_path: Path) -> None:
    """Killed during a timed turn and restarted: the resumed turn waits a fresh timeout,
    but the restarted server's version count met the page's (3 and 3), so the page kept
    its old countdown and said the turn passed 'now' while the turn went on."""
    folder = tiny_folder(tmp_path / "s")
    transcripts = tmp_path / "transcripts"
    extra = ["--scenarios", str(folder), "--idle-timeout", "60", "--on-idle", "pass"]
    first = Server(transcripts, extra=extra).start()
    try:
        with httpx.Client(timeout=10) as client:
            links = set_up(client, first.base, "tiny", {"a": "human", "b": "boulware"})
            seat = links.seats["a"] + "/state"
            wait_until(lambda: client.get(seat).json()["countdown"] is not None)
            shown = client.get(seat).json()
    finally:
        first.kill()
    second = Server(transcripts, port=first.port, extra=extra[:2]).start()
    try:
        wait_until(lambda: httpx.get(seat).json()["countdown"] is not None, timeout=30)
        resumed = httpx.get(seat).json()
    finally:
        second.stop()
    assert resumed["epoch"] != shown["epoch"]  # another server's run: the page takes it in
    assert resumed["countdown"]["seconds_left"] > 30  # the resumed turn's own deadline
