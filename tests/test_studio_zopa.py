"""A rehearsal of a scenario without a zone of possible agreement: the set-up page warns,
the run records the same verdict as ``negotiate run --anyway`` (through the same run
options), seats, observer and replay say the partnership was not justified without the
reasons (they quote reservation values), and ``negotiate report`` shows them."""

from __future__ import annotations

import json
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
