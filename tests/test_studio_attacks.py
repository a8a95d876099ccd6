"""Adversarial review of the studio, each attack as a test: what a hostile co-participant
(holding one seat's link, or none) or a web page in their browser could try."""

from __future__ import annotations

from pathlib import Path

from tests.studio_support import Person, set_up
from tests.test_studio import BASE, Open, serve, tiny_folder, wait_until

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
