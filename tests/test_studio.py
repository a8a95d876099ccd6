"""The rehearsal studio over HTTP, in process: a rehearsal is a run like any other, seats
move through the referee, sign-off appends to the transcript (signed with the server's keys
when the scenario declares signatories), an idle seat is handed to a strategy, past runs
replay round by round."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from negotiation.lifecycle import Status, sign_offs, transcript_status
from negotiation.signing import new_key
from negotiation.studio import Studio, create_app
from negotiation.transcript import read_transcript, verify
from tests.conftest import TINY_YAML
from tests.studio_support import Links, Person, play_to_the_end, set_up

BASE = "http://testserver"
#: Alpha's opening in the tiny scenario: worth 0.52 to Beta (reservation 0.3), so accepted.
OPENING = {"colour": "red", "price": 5, "pot": {"a": 50, "b": 50}}


def tiny_folder(folder: Path, signatories: dict[str, Any] | None = None,
                **names: str) -> Path:
    data = yaml.safe_load(TINY_YAML)
    for org in data["organizations"]:
        org["name"] = names.get(org["id"], org["name"])
    if signatories:
        data["signatories"] = signatories
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


Open = Callable[..., TestClient]


def two_people_agree(client: TestClient) -> tuple[Links, Person, Person]:
    """The tiny scenario with a person at each seat, played to its end: Alpha opens with
    OPENING, which Beta accepts."""
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE, opening=OPENING).open()
    beta = Person(client, links.seats["b"], BASE).open()
    play_to_the_end([alpha, beta])
    return links, alpha, beta


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Open]:
    """Starts a studio in process (lifespan included) over a folder of scenarios."""
    opened: list[TestClient] = []

    def open_studio(folder: Path | None = None, **settings: Any) -> TestClient:
        studio = Studio(tmp_path / "transcripts", scenario_folder=folder, **settings)
        client = TestClient(create_app(studio), base_url=BASE)
        client.__enter__()
        opened.append(client)
        return client

    yield open_studio
    for client in opened:
        client.__exit__(None, None, None)


def wait_until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_a_rehearsal_is_a_run_whose_transcript_verifies_and_seats_ratify_it(
        tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links, alpha, beta = two_people_agree(client)
    outcome = beta.state()["outcome"]
    assert outcome["status"] == "agreement"
    assert outcome["utility"] == pytest.approx(0.52) and outcome["gain"] == pytest.approx(0.22)
    assert alpha.sign("approve", "fine by Alpha").status_code == 200
    path = tmp_path / "transcripts" / f"{links.rehearsal}.jsonl"
    assert transcript_status(path)[0] is Status.PENDING  # every person's seat decides
    assert beta.sign("approve", "fine by Beta").status_code == 200
    assert transcript_status(path)[0] is Status.RATIFIED
    assert verify(path).ok
    header = read_transcript(path).header
    assert header.agents == {"a": "human", "b": "human"}
    [signoff] = read_transcript(path).signoffs
    assert signoff.reviewer == "Alpha seat and Beta seat (studio)"
    assert "fine by Alpha" in signoff.comment and "fine by Beta" in signoff.comment
    assert beta.state()["signoff"]["ratified"] is True
    again = alpha.sign("approve")
    assert again.status_code == 409 and "nothing to sign" in again.json()["error"]


def test_one_seat_rejecting_rejects_the_agreement(tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links, alpha, beta = two_people_agree(client)
    assert beta.sign("reject", "the pot is too small").status_code == 200
    path = tmp_path / "transcripts" / f"{links.rehearsal}.jsonl"
    assert transcript_status(path)[0] is Status.REJECTED
    assert alpha.state()["signoff"]["status"] == "rejected"


def test_with_signatories_each_seat_signs_with_the_servers_key_for_its_organisation(
        tmp_path: Path, serve: Open) -> None:
    keys = tmp_path / "keys"
    alpha_key = new_key("a", "Ada Alpha", folder=keys)
    beta_key = new_key("b", "Bo Beta", folder=keys)
    declared = {org: {"keys": [{"name": k.signatory.name,
                                "public_key": k.signatory.public_key}]}
                for org, k in (("a", alpha_key), ("b", beta_key))}
    client = serve(tiny_folder(tmp_path / "s", declared), keys_folder=keys)
    links, alpha, beta = two_people_agree(client)
    assert alpha.state()["signoff"]["can_sign"] is True
    assert alpha.sign("approve", "signed for Alpha").status_code == 200
    assert beta.state()["signoff"]["approved"] == ["a"]
    assert beta.sign("approve").status_code == 200
    path = tmp_path / "transcripts" / f"{links.rehearsal}.jsonl"
    transcript = read_transcript(path)
    signed = sign_offs(transcript)
    assert not signed.problems and signed.decision is Status.RATIFIED
    assert {(s.org, s.signer) for s in signed.signatures} == {("a", "Ada Alpha"),
                                                              ("b", "Bo Beta")}
    assert all(s.attributable for s in signed.signatures)


def test_without_the_servers_key_a_seat_is_told_how_to_sign(tmp_path: Path,
                                                            serve: Open) -> None:
    elsewhere = tmp_path / "their-keys"
    declared = {org: {"keys": [{"name": k.signatory.name,
                                "public_key": k.signatory.public_key}]}
                for org, k in (("a", new_key("a", "Ada Alpha", folder=elsewhere)),
                               ("b", new_key("b", "Bo Beta", folder=elsewhere)))}
    client = serve(tiny_folder(tmp_path / "s", declared), keys_folder=tmp_path / "none")
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE, opening=OPENING).open()
    play_to_the_end([alpha, Person(client, links.seats["b"], BASE).open()])
    assert alpha.state()["signoff"]["can_sign"] is False
    reply = alpha.sign("approve")
    assert reply.status_code == 409
    assert "negotiate review" in reply.json()["error"] and "--as a" in reply.json()["error"]


def test_moves_are_checked_before_they_reach_the_run(tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE).open()
    beta = Person(client, links.seats["b"], BASE).open()
    wait_until(lambda: alpha.state()["your_turn"])
    out_of_turn = beta.move({"kind": "propose", "terms": OPENING, "rationale": "me first"})
    assert out_of_turn.status_code == 409 and "not your turn" in out_of_turn.json()["error"]
    off_grid = alpha.move({"kind": "propose", "terms": {**OPENING, "price": 7},
                           "rationale": "seven"})
    assert off_grid.status_code == 409 and "not valid" in off_grid.json()["error"]
    no_reason = alpha.move({"kind": "propose", "terms": OPENING, "rationale": "  "})
    assert no_reason.status_code == 409
    accept_nothing = alpha.move({"kind": "accept", "rationale": "yes"})
    assert accept_nothing.status_code == 409 and "not allowed" in accept_nothing.json()["error"]
    assert alpha.state()["history"] == []  # nothing of that reached the transcript
    # Beta's red line: its share of the pot at least 50.  The referee blocks the proposal,
    # tells Alpha why, and Beta never sees it.
    crossing = alpha.move({"kind": "propose", "terms": {**OPENING, "pot": {"a": 100, "b": 0}},
                           "rationale": "all of it"})
    assert crossing.status_code == 200
    wait_until(lambda: beta.state()["your_turn"])
    [blocked] = alpha.state()["history"]
    assert blocked["blocked"] and "red line" in blocked["feedback"]
    assert beta.state()["history"] == []


def test_an_idle_seat_is_played_by_the_configured_strategy_and_the_transcript_says_so(
        tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"), idle_timeout=0.3, idle_strategy="hardliner")
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "boulware"})
    alpha = Person(client, links.seats["a"], BASE).open()
    wait_until(lambda: len(alpha.state()["history"]) >= 1)
    first = alpha.state()["history"][0]
    assert first["party"] == "a"
    assert first["rationale"].startswith("[seat idle for 0.3 s: the hardliner strategy "
                                         "played this turn]")
    path = tmp_path / "transcripts" / f"{links.rehearsal}.jsonl"
    assert "seat idle for 0.3 s" in path.read_text()


def test_past_runs_are_listed_with_their_status_and_replay_round_by_round(
        tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE, opening=OPENING).open()
    beta = Person(client, links.seats["b"], BASE,
                  opening={**OPENING, "colour": "blue"}, margin=0.5).open()
    play_to_the_end([alpha, beta])
    listing = client.get("/transcripts").text
    assert links.rehearsal in listing and "pending sign-off" in listing
    first = client.get(f"/transcripts/{links.rehearsal}?round=1").text
    last = client.get(f"/transcripts/{links.rehearsal}").text
    assert "Round 1 of" in first and "Outcome" not in first
    assert last.count('class="line') > first.count('class="line') and "Outcome" in last
    assert client.get("/transcripts/no-such-run").status_code == 404


def test_the_observer_sees_the_conversation_and_verdicts_but_no_utilities(
        tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "linear"})
    alpha = Person(client, links.seats["a"], BASE, opening=OPENING).open()
    play_to_the_end([alpha])
    seen = client.get(links.observer + "/state").json()
    assert seen["lines"][0]["party"] == "a" and seen["lines"][0]["rationale"]
    assert seen["outcome"]["status"] in {"agreement", "no_agreement"}
    assert "utility" not in str(seen).replace("utilitarian", "")
    assert client.get(links.observer).status_code == 200
    charter = client.get(links.observer + "/charter")
    assert charter.status_code == 409  # not ratified yet


def test_the_setup_offers_people_strategies_and_the_servers_llm(
        tmp_path: Path, serve: Open, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEGOTIATE_STUDIO_LLM_MODEL", "gpt-4o-mini")
    client = serve(tiny_folder(tmp_path / "s"))
    page = client.get("/setup/tiny").text
    for value in ("human", "boulware", "tit_for_tat", "llm:gpt-4o-mini"):
        assert f'value="{value}"' in page
    assert "zone of possible agreement" in page


def test_a_rehearsal_whose_transcript_was_tampered_with_is_named_not_continued(
        tmp_path: Path, serve: Open) -> None:
    first = serve(tiny_folder(tmp_path / "s"))
    links = set_up(first, BASE, "tiny", {"a": "human", "b": "human"})
    wait_until(lambda: first.get(links.seats["a"] + "/state").json()["your_turn"])
    first.__exit__(None, None, None)
    path = tmp_path / "transcripts" / f"{links.rehearsal}.jsonl"
    path.write_text(path.read_text().replace('"seed":0', '"seed":1'))
    again = serve(tiny_folder(tmp_path / "s"))
    index = again.get("/").text
    assert "could not be continued" in index and links.rehearsal in index
    assert again.get(links.seats["a"] + "/state").status_code == 404


def test_serve_refuses_an_unknown_idle_strategy_or_a_missing_scenario_folder(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from negotiation.cli import app

    runner = CliRunner()
    unknown = runner.invoke(app, ["serve", "--idle-strategy", "sleepy", "--transcripts",
                                  str(tmp_path / "t")])
    assert unknown.exit_code == 2 and "unknown strategy 'sleepy'" in unknown.output
    missing = runner.invoke(app, ["serve", "--scenarios", str(tmp_path / "nowhere"),
                                  "--transcripts", str(tmp_path / "t")])
    assert missing.exit_code == 2 and "no such folder" in missing.output
