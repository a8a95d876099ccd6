"""Lifecycle, sign-off and the charter, all derived from the transcript."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import anyio
import pytest

from negotiation.charter import CharterError, render_html, render_markdown, write_charter
from negotiation.engine import run_scenario
from negotiation.lifecycle import SignOffError, Status, sign_off, stages, transcript_status
from negotiation.scenario import load_scenario
from negotiation.transcript import load_verified, verify


def run(tmp_path: Path, name: str = "rd-joint-venture", **kwargs: object) -> Path:
    result = anyio.run(lambda: run_scenario(load_scenario(name), out_dir=tmp_path,
                                            **kwargs))  # type: ignore[arg-type]
    assert result.path is not None
    return result.path


def test_an_agreement_walks_through_every_stage_to_ratified(tmp_path: Path) -> None:
    path = run(tmp_path)
    assert transcript_status(path)[0] is Status.PENDING
    names = [stage.name for stage in stages(load_verified(path))]
    assert names == ["proposed", "checked", "accepted by all", "pending sign-off"]
    sign_off(path, approve=True, reviewer="Grace Hopper", comment="Terms are balanced.")
    status, events = transcript_status(path)
    assert status is Status.RATIFIED
    assert [s.name for s in stages(events)][-1] == "ratified"
    assert verify(path).ok


def test_a_rejection_is_recorded_as_rejected(tmp_path: Path) -> None:
    path = run(tmp_path)
    event = sign_off(path, approve=False, reviewer="Grace Hopper", comment="Too one-sided.")
    assert event["status"] == "rejected" and event["comment"] == "Too one-sided."
    assert transcript_status(path)[0] is Status.REJECTED


def test_no_agreement_ends_with_its_reason(tmp_path: Path) -> None:
    path = run(tmp_path, agents={"voltaic": "hardliner", "kestrel": "hardliner"}, rounds=2)
    status, events = transcript_status(path)
    assert status is Status.NO_AGREEMENT
    assert stages(events)[-1].detail == "deadline: no agreement after 2 rounds"


def test_the_sign_off_is_hash_chained_to_the_agreement(tmp_path: Path) -> None:
    path = run(tmp_path)
    sign_off(path, approve=True, reviewer="Ada", comment="ok")
    events = load_verified(path)
    outcome = next(e for e in events if e["type"] == "outcome")
    assert events[-1]["type"] == "signoff"
    assert events[-1]["agreement_event"] == {"seq": outcome["seq"], "hash": outcome["hash"]}
    assert events[-1]["prev_hash"] == outcome["hash"]


def test_altering_the_sign_off_breaks_verification(tmp_path: Path) -> None:
    path = run(tmp_path)
    sign_off(path, approve=False, reviewer="Ada", comment="no")
    text = path.read_text()
    path.write_text(text.replace('"decision":"reject"', '"decision":"approve"'))
    result = verify(path)
    assert not result.ok and result.bad_line == len(text.splitlines())
    assert transcript_status(path)[0] is Status.TAMPERED


@pytest.mark.parametrize("case", ["tampered", "no agreement", "already decided",
                                  "no reviewer"])
def test_refused_sign_offs_change_nothing(tmp_path: Path, case: str) -> None:
    if case == "no agreement":
        path = run(tmp_path, agents={"voltaic": "hardliner", "kestrel": "hardliner"}, rounds=2)
    else:
        path = run(tmp_path)
    if case == "tampered":
        lines = path.read_text().splitlines(keepends=True)
        lines[2] = lines[2].replace('"round":0', '"round":7')
        path.write_text("".join(lines))
    if case == "already decided":
        sign_off(path, approve=True, reviewer="Ada", comment="")
    before = path.read_bytes()
    expected = {"tampered": "tampered", "no agreement": "no agreement",
                "already decided": "already ratified", "no reviewer": "reviewer's name"}[case]
    with pytest.raises(SignOffError, match=expected):
        sign_off(path, approve=True, reviewer="" if case == "no reviewer" else "Eve")
    assert path.read_bytes() == before


def test_the_charter_holds_terms_accountability_and_a_pending_stamp(tmp_path: Path) -> None:
    path = run(tmp_path, name="platform-app-vendor")
    outcome = load_verified(path)[-1]
    markdown = render_markdown(path)
    assert "**PENDING SIGN-OFF**" in markdown
    assert "## Agreed terms" in markdown and "## Accountability" in markdown
    assert "12 months exclusive" in markdown or "no exclusivity" in markdown \
        or "24 months exclusive" in markdown
    for row in outcome["accountability"]:
        assert row["rationale"].replace("|", "\\|") in markdown
    assert markdown.count("\n| ") >= len(outcome["accountability"])


def test_the_charter_shows_the_sign_off_block_once_ratified(tmp_path: Path) -> None:
    path = run(tmp_path, name="platform-app-vendor")
    sign_off(path, approve=True, reviewer="Katherine Johnson", comment="Approved | final")
    markdown = render_markdown(path)
    assert "**RATIFIED** **(unsigned, not attributable)** by Katherine Johnson" in markdown
    assert "**Unsigned (not attributable):**" in markdown
    assert "PENDING SIGN-OFF" not in markdown
    assert "Approved \\| final" in markdown  # a pipe cannot break the sign-off table


class Resources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href"} and value:
                (self.images if tag == "img" else self.external).append(value)


def test_the_html_charter_is_one_self_contained_file(tmp_path: Path) -> None:
    path = run(tmp_path, name="park-redevelopment")
    page = render_html(path)
    parser = Resources()
    parser.feed(page)
    assert parser.images and all(src.startswith("data:image/png;base64,")
                                 for src in parser.images)
    assert parser.external == []
    assert '<body class="pending">' in page and "<table>" in page


def test_markdown_charter_writes_its_plot_beside_it(tmp_path: Path) -> None:
    path = run(tmp_path)
    written = write_charter(path, "md")
    assert written.name.endswith(".charter.md")
    assert written.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_no_charter_without_agreement(tmp_path: Path) -> None:
    path = run(tmp_path, agents={"voltaic": "hardliner", "kestrel": "hardliner"}, rounds=2)
    with pytest.raises(CharterError, match="no agreement"):
        render_markdown(path)


def test_the_header_records_enough_to_rebuild_the_scenario(tmp_path: Path) -> None:
    path = run(tmp_path)
    header = json.loads(path.read_text().splitlines()[0])
    assert header["scenario"]["id"] == "rd-joint-venture"
