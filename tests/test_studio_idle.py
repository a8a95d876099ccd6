"""A studio seat left idle past the turn timeout, in pass mode: the turn passes (a
``passed`` event, never an acceptance), the other party moves on, seats and observers read
who did not answer, a server killed after a pass resumes, and the run verifies."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from negotiation.studio.rehearsal import load_sidecar, sidecar_path
from negotiation.transcript import verify
from tests.studio_support import CLI, Person, Server, set_up
from tests.test_studio import BASE, OPENING, Open, serve, tiny_folder, wait_until

__all__ = ["serve"]  # the fixture, shared with tests/test_studio.py

HOSTILE = "<img src=x onerror=alert(1)>Beta"


def events_of(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a transcript the server may still be writing."""
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]


def test_an_idle_seat_passes_the_standing_offer_stays_and_the_next_party_moves(
        tmp_path: Path, serve: Open) -> None:
    # The server hands idle turns to a strategy; this rehearsal chose 'pass' at set-up.
    client = serve(tiny_folder(tmp_path / "s"), idle_timeout=3)
    page = client.get("/setup/tiny").text
    assert 'name="on_idle"' in page and "the turn passes (no move)" in page
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"}, on_idle="pass")
    path = tmp_path / "transcripts" / f"{links.rehearsal}.jsonl"
    assert load_sidecar(sidecar_path(path)).on_idle == "pass"
    alpha = Person(client, links.seats["a"], BASE, opening=OPENING).open()
    beta = Person(client, links.seats["b"], BASE).open()
    assert "You have 3 s for each turn; after that your turn passes" in beta.seen[0]
    wait_until(lambda: alpha.state()["your_turn"])
    alpha.play()  # Alpha proposes OPENING; Beta stays away
    wait_until(lambda: any(e["type"] == "passed" for e in events_of(path)))
    wait_until(lambda: alpha.state()["your_turn"])
    # Each seat has 3 s: the scripted people act at once and check what they saw after.
    seen = alpha.state()
    lines = client.get(links.observer + "/state").json()["lines"]
    assert beta.move({"kind": "accept", "rationale": "late"}).status_code == 409
    assert alpha.move({"kind": "propose", "terms": OPENING,
                       "rationale": "Still half each."}).status_code == 200
    assert seen["outcome"] is None  # silence accepted nothing
    assert seen["legal"] == ["propose", "walk_away"]  # its own offer still stands
    assert seen["standing"]["terms"] == OPENING
    assert seen["history"][-1]["kind"] == "pass"
    assert seen["history"][-1]["rationale"] == "Beta did not answer within 3 s: passed"
    assert (lines[-1]["kind"], lines[-1]["name"]) == ("pass", "Beta")
    wait_until(lambda: beta.state()["your_turn"])
    assert beta.play() is False  # Beta is back and accepts
    wait_until(lambda: alpha.state()["outcome"] is not None)
    assert alpha.state()["outcome"]["status"] == "agreement"
    turns = [(e["type"], e["party"], e.get("action", {}).get("kind"))
             for e in events_of(path) if e["type"] in ("move", "passed")]
    assert turns == [("move", "a", "propose"), ("passed", "b", None),
                     ("move", "a", "propose"), ("move", "b", "accept")]
    passed = next(e for e in events_of(path) if e["type"] == "passed")
    assert passed["timeout"] == 3 and "idle" in passed["reason"]
    assert verify(path).ok


def test_a_seat_cannot_send_a_pass_itself(tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "boulware"}, on_idle="pass")
    alpha = Person(client, links.seats["a"], BASE).open()
    wait_until(lambda: alpha.state()["your_turn"])
    refused = alpha.move({"kind": "pass", "rationale": "skip me"})
    assert refused.status_code == 409 and "not valid" in refused.json()["error"]
    assert alpha.state()["your_turn"] and alpha.state()["history"] == []


def test_a_seat_cannot_mark_its_own_move_as_the_idle_strategys(
        tmp_path: Path, serve: Open) -> None:
    """The transcript tells a stand-in's move by its rationale's opening: a person who
    wrote it could later say the idle strategy, not they, accepted."""
    client = serve(tiny_folder(tmp_path / "s"), idle_timeout=60)
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "boulware"})
    alpha = Person(client, links.seats["a"], BASE).open()
    wait_until(lambda: alpha.state()["your_turn"])
    for forged in ("[seat idle for 60 s: the conceder strategy played this turn] Fine.",
                   "\uff3bSeat  IDLE for 60 s] fine",  # fullwidth, spaced, upper case
                   "Fine. [seat\u200b idle for 60 s]"):  # an invisible character inside
        refused = alpha.move({"kind": "walk_away", "rationale": forged})
        assert refused.status_code == 409 and "your own words" in refused.json()["error"]
    assert alpha.state()["your_turn"] and alpha.state()["history"] == []
    assert alpha.move({"kind": "walk_away", "rationale": "Not today."}).status_code == 200


def test_the_set_up_refuses_an_unknown_idle_choice(tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"), idle_timeout=5)
    page = client.get("/setup/tiny").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    reply = client.post("/rehearsals", data={"csrf": csrf, "scenario": "tiny",
                                             "seat-a": "human", "seat-b": "boulware",
                                             "on_idle": "sleep"},
                        headers={"origin": BASE, "accept": "application/json"})
    assert reply.status_code == 400 and "choose 'pass' or 'strategy'" in reply.text
    assert not list((tmp_path / "transcripts").glob("*.jsonl"))


def read_stream(url: str, wanted: str, timeout: float = 30) -> str:
    """An event stream, read until ``wanted`` appears in it."""
    seen, deadline = "", time.monotonic() + timeout
    with httpx.stream("GET", url, timeout=timeout) as reply:
        for chunk in reply.iter_text():
            seen += chunk
            if wanted in seen or time.monotonic() > deadline:
                return seen
    return seen


def test_passes_to_the_deadline_end_without_agreement_and_survive_a_killed_server(
        tmp_path: Path) -> None:
    folder = tiny_folder(tmp_path / "s", b=HOSTILE)
    transcripts = tmp_path / "transcripts"
    extra = ["--scenarios", str(folder), "--idle-timeout", "1", "--on-idle", "pass"]
    first = Server(transcripts, extra=extra).start()
    try:
        with httpx.Client(timeout=10) as client:
            links = set_up(client, first.base, "tiny", {"a": "boulware", "b": "human"},
                           rounds=3)
        path = transcripts / f"{links.rehearsal}.jsonl"
        deadline = time.monotonic() + 30
        while not any(e["type"] == "passed" for e in events_of(path)):
            assert time.monotonic() < deadline, "no pass within 30 s"
            time.sleep(0.05)
    finally:
        first.kill()  # right after a pass: the restarted server must replay it
    # Restarted without idle options: the rehearsal keeps the settings it was set up with.
    second = Server(transcripts, port=first.port, extra=extra[:2]).start()
    try:
        stream = read_stream(f"{links.observer}/events", '"outcome": {')
        deadline = time.monotonic() + 30
        while events_of(path)[-1]["type"] != "outcome":
            assert time.monotonic() < deadline, "the resumed rehearsal did not end"
            time.sleep(0.05)
        replay = httpx.get(f"{second.base}/transcripts/{links.rehearsal}").text
    finally:
        second.stop()
    events = events_of(path)
    outcome = events[-1]
    assert outcome["status"] == "no_agreement" and outcome["reason"].startswith("deadline")
    assert [(e["party"], e["round"]) for e in events if e["type"] == "passed"] == \
        [("b", 0), ("b", 1), ("b", 2)]  # each pass once: replayed, not repeated
    assert [e["party"] for e in events if e["type"] in ("move", "blocked")] == ["a"] * 3
    assert any(e["type"] == "resumed" for e in events)
    checked = subprocess.run([*CLI, "verify", str(path)], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The stream is data for the page's textContent; the server-rendered replay escapes.
    said = f"{HOSTILE} did not answer within 1 s: passed"
    states = [json.loads(line.removeprefix("data: ")) for line in stream.splitlines()
              if line.startswith("data: ")]
    assert said in [line["rationale"] for line in states[-1]["lines"]]
    assert "did not answer within 1 s: passed" in replay
    assert "<img src=x" not in replay and "&lt;img src=x onerror=alert(1)&gt;Beta" in replay
