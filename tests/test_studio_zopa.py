"""A rehearsal of a scenario without a zone of possible agreement: the set-up page warns,
the run records the same verdict as ``negotiate run --anyway`` (through the same run
options), seats, observer and replay say the partnership was not justified without the
reasons (they quote reservation values), and ``negotiate report`` shows them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from negotiation.cli import app
from negotiation.cli.run import zopa_verdict
from negotiation.scenario import load_scenario
from negotiation.transcript import verify
from tests.conftest import TINY_YAML
from tests.studio_support import Person, set_up
from tests.test_studio import BASE, Open, serve, two_people_agree, wait_until
from tests.test_studio_idle import events_of

__all__ = ["serve"]  # the fixture, shared with tests/test_studio.py


def hopeless_folder(folder: Path) -> Path:
    """The tiny scenario with reservation values no outcome meets for both."""
    folder.mkdir(parents=True)
    (folder / "tiny.yaml").write_text(TINY_YAML.replace("reservation_value: 0.2",
                                                        "reservation_value: 0.9")
                                      .replace("reservation_value: 0.3",
                                               "reservation_value: 0.9"))
    return folder


def test_a_rehearsal_without_a_zone_of_agreement_records_the_verdict_negotiate_run_does(
        tmp_path: Path, serve: Open) -> None:
    folder = hopeless_folder(tmp_path / "s")
    client = serve(folder)
    assert "No outcome suits everyone" in client.get("/setup/tiny").text
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "boulware"})
    alpha = Person(client, links.seats["a"], BASE).open()
    wait_until(lambda: alpha.state()["your_turn"])
    assert alpha.move({"kind": "walk_away",
                       "rationale": "Nothing here works for us."}).status_code == 200
    wait_until(lambda: alpha.state()["outcome"] is not None)
    path = tmp_path / "transcripts" / f"{links.rehearsal}.jsonl"
    outcome = events_of(path)[-1]
    expected = zopa_verdict(load_scenario(folder / "tiny.yaml"), 0, anyway=True)
    assert expected is not None and outcome["zopa"] == expected["zopa"]
    assert verify(path).ok
    reasons = expected["zopa"]["reasons"]
    assert reasons and all("0.900" in reason for reason in reasons)

    seat = alpha.state()["outcome"]
    observer = client.get(links.observer + "/state")
    replay = client.get(f"/transcripts/{links.rehearsal}").text
    for said in (seat["zopa"], observer.json()["outcome"]["zopa"], replay):
        assert "Partnership not justified" in said
    for response in [*alpha.seen, observer.text]:  # Beta's reservation value stays private
        assert not any(reason in response for reason in reasons)
        assert "0.900" not in response

    report = CliRunner().invoke(app, ["report", str(path)], env={"COLUMNS": "200"})
    assert report.exit_code == 0, report.output
    shown = " ".join(report.output.split())
    assert "Partnership not justified" in shown
    assert all(" ".join(reason.split()) in shown for reason in reasons)


def test_a_rehearsal_with_a_zone_of_agreement_records_no_verdict(
        tmp_path: Path, serve: Open) -> None:
    from tests.test_studio import tiny_folder

    client = serve(tiny_folder(tmp_path / "s"))
    assert "No outcome suits everyone" not in client.get("/setup/tiny").text
    links, alpha, _ = two_people_agree(client)
    path = tmp_path / "transcripts" / f"{links.rehearsal}.jsonl"
    assert "zopa" not in json.loads(path.read_text().splitlines()[-1])
    assert alpha.state()["outcome"]["zopa"] is None


def without_clock(said: str) -> str:
    """A response without its countdown's seconds (0.956 s left is no reservation value)."""
    return re.sub(r'"seconds_left": ?[0-9.e+-]+', "", said)


def test_no_seat_or_observer_response_of_a_whole_rehearsal_carries_anothers_reservation(
        tmp_path: Path, serve: Open) -> None:
    """Two people, no ZOPA, every turn timed out and played by the idle strategy: every
    page, state and event stream either seat or the observer receives, from the first
    turn's countdown to the outcome, leaves out the other's reservation value and the
    recorded reasons quoting it."""
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(TINY_YAML.replace("reservation_value: 0.2",
                                                        "reservation_value: 0.85")
                                      .replace("reservation_value: 0.3",
                                               "reservation_value: 0.95"))
    client = serve(folder, idle_timeout=1)
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"}, rounds=2)
    people = {party: Person(client, url, BASE).open() for party, url in links.seats.items()}
    watched: list[str] = [client.get(links.observer).text]

    def look() -> bool:
        watched.append(client.get(links.observer + "/state").text)
        return all(person.state()["outcome"] is not None for person in people.values())

    wait_until(look, timeout=30)
    for person in people.values():
        person.open()
        with client.stream("GET", person.url + "/events") as stream:
            person.seen.append(next(stream.iter_text()))
    with client.stream("GET", links.observer + "/events") as stream:
        watched.append(next(stream.iter_text()))
    assert any('"seconds_left"' in said for said in people["a"].seen)  # a timed turn seen
    path = tmp_path / "transcripts" / f"{links.rehearsal}.jsonl"
    reasons = events_of(path)[-1]["zopa"]["reasons"]
    own = {"a": "0.850", "b": "0.950"}
    assert all(any(own[party] in reason for reason in reasons) for party in own)
    for party, person in people.items():
        other = own["b" if party == "a" else "a"]
        for said in map(without_clock, person.seen):
            assert other not in said and other[:-1] not in said
            assert not any(reason in said for reason in reasons)
    for said in map(without_clock, watched):
        assert not any(value in said or value[:-1] in said for value in own.values())
        assert not any(reason in said for reason in reasons)
