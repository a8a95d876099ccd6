"""The studio under load: a seat is told what the run really is, however late the thread
driving the run, or the server's own loop, gets to its work.  Either loop is held still on
purpose (given a blocking call) to open, deterministically, the windows a busy machine
opens by chance."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def waits_for_a_person(served: Studio) -> bool:
    """Whether a run on the studio's driver is paused at a person's turn (the run's
    coroutine awaits :meth:`Rehearsal.answer`), asked on the driver's own loop."""
    async def look() -> bool:
        for task in asyncio.all_tasks():
            awaiting: Any = task.get_coro()
            while awaiting is not None:
                if getattr(awaiting, "__qualname__", "") == "Rehearsal.answer":
                    return True
                awaiting = getattr(awaiting, "cr_await", None)
        return False

    return any(asyncio.run_coroutine_threadsafe(look(), loop).result(10)
               for loop in served.drivers)


class HeldServer:
    """The server's loop held inside a blocking call, as while it answers a request: what
    the driver sends it waits, in order, behind the call."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.gate = threading.Event()
        holding = threading.Event()

        def hold() -> None:
            holding.set()
            self.gate.wait()

        loop.call_soon_threadsafe(hold)
        holding.wait()

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


def test_a_seat_is_told_it_is_its_turn_only_with_the_moves_before_it(
        studio: tuple[Studio, TestClient]) -> None:
    served, client = studio
    served.idle_timeout = None
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    rehearsal = served.rehearsals[links.rehearsal]
    alpha = Person(client, links.seats["a"], BASE, opening=OPENING).open()
    wait_until(lambda: alpha.state()["your_turn"])
    path = served.transcripts / f"{links.rehearsal}.jsonl"
    assert alpha.play() is False  # Alpha proposes
    held = HeldServer(rehearsal._loop)
    try:  # the driver records Alpha's proposal and reaches Beta's turn meanwhile
        wait_until(lambda: read_transcript(path).of_type(Move) != [])
        wait_until(lambda: waits_for_a_person(served))
        # What a request being answered right now tells Beta:
        seen = rehearsal.seat_state("b")
    finally:
        held.release()
    # Told it is its turn only together with the proposal it answers.
    assert seen["your_turn"] == bool(seen["history"])
    beta = Person(client, links.seats["b"], BASE)
    wait_until(lambda: beta.state()["your_turn"])
    assert beta.state()["standing"]["terms"] == OPENING
