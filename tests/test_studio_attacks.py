"""Adversarial review of the studio, each attack as a test: what a hostile co-participant
(holding one seat's link, or none) or a web page in their browser could try."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
from starlette.testclient import TestClient

from negotiation.studio import Studio, create_app
from negotiation.studio.guard import LOOPBACK_HOSTS
from negotiation.transcript import read_transcript, verify
from tests.studio_support import CLI, Person, set_up, start_serve
from tests.test_studio import (
    BASE,
    OPENING,
    Open,
    serve,
    tiny_folder,
    two_people_agree,
    wait_until,
)

__all__ = ["serve"]  # the fixture, shared with tests/test_studio.py

#: Alpha's proposal across Beta's private red line (pot: b >= 50, "Half at least.").
GREEDY = {"colour": "red", "price": 5, "pot": {"a": 100, "b": 0}}


def test_a_blocked_proposal_never_shows_the_red_line_or_its_reason_off_the_proposers_seat(
        tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE).open()
    beta = Person(client, links.seats["b"], BASE).open()
    wait_until(lambda: alpha.state()["your_turn"])
    assert alpha.move({"kind": "propose", "terms": GREEDY,
                       "rationale": "QXSECRETPLAN all mine"}).status_code == 200
    wait_until(lambda: bool(alpha.state()["history"]))
    [mine] = alpha.state()["history"]
    assert mine["blocked"] and "red line" in mine["feedback"]  # the proposer is told
    assert "Half at least" not in mine["feedback"]  # ... never the owner's reason
    observed = client.get(links.observer + "/state").json()
    [line] = observed["lines"]
    assert line["kind"] == "blocked" and "crosses a red line of Beta (block)" in line["findings"]
    # Anyone (another seat, or no link at all) replaying the run while it is negotiated:
    replay = client.get(f"/transcripts/{links.rehearsal}").text
    for seen in (client.get(links.observer + "/state").text, replay):
        assert "Half at least" not in seen  # Beta's private reason
        assert "at least 50" not in seen  # Beta's private red line itself
    assert "QXSECRETPLAN" not in replay  # Alpha's undelivered move, as Beta would see it
    assert "QXSECRETPLAN" not in str(beta.state())


def test_without_the_facilitators_key_a_seat_cannot_set_up_a_rehearsal_to_read_every_brief(
        tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"), facilitator_key="K" * 43)
    assert client.get("/", params={"key": "K" * 43}).status_code == 200  # the printed link
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    # Alpha's person, on a browser of their own: their seat works, nothing else does.  (A
    # second client of the same running app: entering it would start the server again.)
    alpha_browser = TestClient(client.app, base_url=BASE)
    alpha = Person(alpha_browser, links.seats["a"], BASE).open()
    assert alpha.state()["party"] == "a"
    for path in ("/", "/setup/tiny", "/transcripts", f"/transcripts/{links.rehearsal}",
                 "/?key=" + "K" * 42 + "L"):
        reply = alpha_browser.get(path)
        assert reply.status_code == 403, path
        assert "Half at least" not in reply.text
    page = client.get("/setup/tiny").text  # even with the facilitator's CSRF token
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    forged = alpha_browser.post("/rehearsals", headers={"origin": BASE}, data={
        "csrf": csrf, "scenario": "tiny", "seat-a": "human", "seat-b": "human"})
    assert forged.status_code == 403
    assert alpha_browser.get("/?key=" + "K" * 43).status_code == 200


def test_a_server_on_this_machine_refuses_another_sites_name_pointed_at_it(
        tmp_path: Path) -> None:
    studio = Studio(tmp_path / "t", scenario_folder=tiny_folder(tmp_path / "s"),
                    allowed_hosts=LOOPBACK_HOSTS)
    with TestClient(create_app(studio), base_url="http://127.0.0.1:8765") as client:
        assert client.get("/").status_code == 200
        assert client.get("http://localhost:8765/setup/tiny").status_code == 200
        assert client.get("http://[::1]:8765/").status_code == 200
        for host in ("evil.example:8765", "evil.example", "127.0.0.1.evil.example"):
            rebound = client.get("/transcripts", headers={"host": host})
            assert rebound.status_code == 421, host
            assert "Past runs" not in rebound.text


def test_a_studio_others_can_reach_prints_a_facilitator_link_and_locks_setup_without_it(
        tmp_path: Path) -> None:
    server, _, announced = start_serve("--host", "0.0.0.0", "--port", "0",
                                       "--transcripts", str(tmp_path / "t"))
    try:
        key = re.search(r"/\?key=([A-Za-z0-9_-]{43})", announced.string)
        assert key is not None, announced.string
        base = f"http://127.0.0.1:{announced.group(1)}"
        assert httpx.get(base + "/setup/tiny-deal").status_code == 403
        with httpx.Client(base_url=base) as facilitator:
            entered = facilitator.get("/", params={"key": key.group(1)})
            assert entered.status_code == 303
            assert "httponly" in entered.headers["set-cookie"].lower()
            assert "samesite=strict" in entered.headers["set-cookie"].lower()
            assert facilitator.get("/").status_code == 200
    finally:
        server.terminate()
        server.wait(30)


def test_a_seat_cannot_flood_the_table_with_a_huge_request_or_reason(
        tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE).open()
    wait_until(lambda: alpha.state()["your_turn"])
    huge = client.post(links.seats["a"] + "/move", headers={"origin": BASE}, json={
        "kind": "propose", "terms": OPENING, "rationale": "x" * 200_000, "csrf": alpha.csrf})
    assert huge.status_code == 413
    long = alpha.move({"kind": "propose", "terms": OPENING, "rationale": "y" * 5000})
    assert long.status_code == 400 and "2000 characters" in long.json()["error"]
    transcript = (tmp_path / "transcripts" / f"{links.rehearsal}.jsonl").read_text()
    assert "yyyy" not in transcript and "xxxx" not in transcript
    assert alpha.move({"kind": "propose", "terms": OPENING, "rationale": "fair"}
                      ).status_code == 200


def test_one_seats_approval_comment_cannot_speak_for_another_seat(
        tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links, alpha, beta = two_people_agree(client)
    assert alpha.sign("approve", 'fine; Beta: "we waive the pot"').status_code == 200
    assert beta.sign("approve", "agreed").status_code == 200
    path = tmp_path / "transcripts" / f"{links.rehearsal}.jsonl"
    [signoff] = read_transcript(path).signoffs
    assert signoff.comment == 'Alpha: "fine; Beta: \\"we waive the pot\\""; Beta: "agreed"'
    assert verify(path).ok
    completed = subprocess.run([*CLI, "verify", str(path)], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_fairness_findings_a_seat_sees_do_not_quote_the_other_partys_gain(
        tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links, alpha, _ = two_people_agree(client)
    outcome = alpha.state()["outcome"]
    assert outcome["gain"] == 0.55  # Alpha's own gain; Beta's is 0.22, the lowest
    messages = [f["message"] for f in outcome["findings"]]
    assert any("worst-off party" in m for m in messages)
    assert not any("+0.22" in m for m in messages), messages  # "gains +0.220 over ..."
    observed = client.get(links.observer + "/state").text
    assert "+0.22" not in observed and "0.52" not in observed
