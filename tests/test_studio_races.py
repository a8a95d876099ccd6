"""The studio under load: a seat is told what the run really is, however late the thread
driving the run gets to a move.  The driver is held still on purpose (its event loop is
given a blocking call) to open, deterministically, the windows a busy machine opens by
chance."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from negotiation.events import Move
from negotiation.studio import Studio, create_app
from negotiation.transcript import read_transcript
from tests.studio_support import Person, play_to_the_end, set_up
from tests.test_studio import BASE, OPENING, tiny_folder, wait_until


class HeldDriver:
    """The studio's driver loops, each held inside a blocking call until released: moves
    reach the server, the run does not see them yet."""

    def __init__(self, studio: Studio) -> None:
        self.gate = threading.Event()
        self.holding = threading.Semaphore(0)
        for loop in studio.drivers:
            loop.call_soon_threadsafe(self._hold)
        for _ in studio.drivers:
            self.holding.acquire()  # every driver is inside the call, not merely asked

    def _hold(self) -> None:
        self.holding.release()
        self.gate.wait()

    def release(self) -> None:
        self.gate.set()


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[tuple[Studio, TestClient]]:
    built = Studio(tmp_path / "transcripts", scenario_folder=tiny_folder(tmp_path / "s"),
                   idle_timeout=0.5, idle_strategy="hardliner")
    with TestClient(create_app(built), base_url=BASE) as client:
        yield built, client


def test_a_seat_whose_move_is_in_is_no_longer_told_it_is_its_turn(
        studio: tuple[Studio, TestClient]) -> None:
    served, client = studio
    served.idle_timeout = None
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE, opening=OPENING).open()
    beta = Person(client, links.seats["b"], BASE).open()
    wait_until(lambda: alpha.state()["your_turn"])
    held = HeldDriver(served)
    try:
        assert alpha.play() is False  # Alpha proposes; the run has not taken it in yet
        seen = alpha.state()
        assert seen["your_turn"] is False and seen["legal"] == []
        assert seen["waiting_for"] is None
        assert not beta.state()["your_turn"]
        again = alpha.move({"kind": "propose", "terms": OPENING, "rationale": "twice"})
        assert again.status_code == 409 and "not your turn" in again.json()["error"]
    finally:
        held.release()
    wait_until(lambda: beta.state()["your_turn"])
    play_to_the_end([alpha, beta])
    assert alpha.state()["outcome"]["status"] == "agreement"


def test_a_move_accepted_as_the_turn_times_out_is_the_move_played(
        studio: tuple[Studio, TestClient]) -> None:
    served, client = studio
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE, opening=OPENING).open()
    wait_until(lambda: alpha.state()["your_turn"])
    held = HeldDriver(served)
    try:
        time.sleep(0.6)  # the turn's 0.5 s run out while the driver is held
        reply = alpha.move({"kind": "propose", "terms": OPENING, "rationale": "in time?"})
    finally:
        held.release()
    wait_until(lambda: len(alpha.state()["history"]) >= 1)
    first = alpha.state()["history"][0]
    if reply.status_code == 200:  # acknowledged: then it is what the transcript holds
        assert (first["rationale"], first["terms"]) == ("in time?", OPENING)
    else:  # refused: the idle strategy played, and the person was told
        assert reply.status_code == 409 and first["rationale"].startswith("[seat idle")
    path = served.transcripts / f"{links.rehearsal}.jsonl"
    [played, *_] = read_transcript(path).of_type(Move)
    assert played.party == "a" and played.action.rationale == first["rationale"]
