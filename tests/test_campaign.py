"""Campaigns: pilot → evaluation → renegotiation → scale-up, deterministic and linked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from agents import View
from agents.llm_client import LLMRun
from agents.rule_based import TimeDependent
from negotiation.analysis import SpaceAnalysis
from negotiation.campaign import (
    MAX_RESERVATION,
    CampaignError,
    CampaignResult,
    load_campaign,
    read_manifest,
    run_campaign,
    verify_campaign,
)
from negotiation.devtools.llm_server import ScriptedServer
from negotiation.model import Action
from negotiation.scenario import load_scenario
from negotiation.transcript import deterministic_lines, load_verified
from tests.conftest import REPO, TINY_YAML
from tests.llm_support import fair_dealer, prompt
from tests.test_cli import negotiate

RIVERSIDE = REPO / "campaigns" / "riverside-park.yaml"

#: (party, memory) of every turn a RememberingBoulware took.
SEEN: list[tuple[str, Any]] = []


class RememberingBoulware(TimeDependent):
    """A Boulware negotiator that notes what it remembers (loaded by import path)."""

    def __init__(self, party: str) -> None:
        super().__init__(beta=0.2)
        self.party = party

    async def act(self, view: View) -> Action:
        SEEN.append((view.party, view.memory))
        return await super().act(view)


def run(path: Path, out: Path, **options: Any) -> CampaignResult:
    loaded = load_campaign(path)
    return anyio.run(lambda: run_campaign(loaded, out, fsync=False, **options))


NEWCOMER = {
    "id": "c", "name": "Gamma",
    "agent": {"strategy": "conceder"},
    "preferences": {
        "reservation_value": 0.1,
        "weights": {"colour": 0.3, "price": 0.3, "pot": 0.4},
        "values": {"colour": {"scores": {"red": 0.5, "blue": 0.5}},
                   "price": {"prefer": "low"}, "pot": {"prefer": "high"}},
    },
}


def tiny_campaign(tmp_path: Path, stages: list[dict[str, Any]], **extra: Any) -> Path:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML, encoding="utf-8")
    path = tmp_path / "tiny-campaign.yaml"
    path.write_text(yaml.safe_dump({"id": "tiny-arc", "title": "Tiny arc", "scenario": "tiny.yaml",
                                    "seed": 3, **extra, "stages": stages}), encoding="utf-8")
    return path


def test_a_campaign_is_deterministic_with_rule_based_agents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first, second = run(RIVERSIDE, tmp_path / "one"), run(RIVERSIDE, tmp_path / "two")
    names = sorted(p.name for p in first.folder.iterdir())
    assert names == sorted(p.name for p in second.folder.iterdir())
    assert len([n for n in names if n.endswith(".jsonl")]) == 5
    for name in names:
        assert (first.folder / name).read_bytes() == (second.folder / name).read_bytes(), name
    other = run(RIVERSIDE, tmp_path / "three", seed=2)
    evaluations = [json.loads((result.folder / "02-pilot-review.jsonl").read_text()
                              .splitlines()[1])["delivered"] for result in (first, other)]
    assert evaluations[0] != evaluations[1]


def test_the_shipped_campaign_runs_every_stage_to_an_agreement(tmp_path: Path) -> None:
    result = run(RIVERSIDE, tmp_path)
    assert result.stopped is None
    assert [s.status for s in result.stages] == ["agreement", "evaluated", "agreement",
                                                 "evaluated", "agreement"]
    assert result.stages[-1].parties == ["city", "county", "foundation", "neighbours"]


def test_adding_a_partner_keeps_every_term_marked_fixed(tmp_path: Path) -> None:
    campaign = yaml.safe_load(RIVERSIDE.read_text())
    kept = campaign["stages"][-1]["keep"]
    pilot_fixed = campaign["stages"][0]["fixed"]
    agreements = 0
    for seed in range(1, 6):
        result = run(RIVERSIDE, tmp_path / str(seed), seed=seed)
        pilot, before, scale_up = result.stages[0], result.stages[2], result.stages[-1]
        assert pilot.terms is not None
        assert {issue: pilot.terms[issue] for issue in pilot_fixed} == pilot_fixed
        assert before.terms is not None and scale_up.terms is not None
        assert {issue: scale_up.terms[issue] for issue in kept} == \
               {issue: before.terms[issue] for issue in kept}
        if scale_up.status == "agreement":
            agreements += 1
            assert "neighbours" in scale_up.terms["funding_split"]
    assert agreements >= 3, "the shipped campaign should usually scale up"


def test_every_stage_links_to_the_previous_one_by_hash(tmp_path: Path) -> None:
    result = run(RIVERSIDE, tmp_path / "a")
    assert verify_campaign(result.folder) == []
    headers = [load_verified(result.folder / s.transcript)[0] for s in result.stages]
    for earlier, header in zip(result.stages, headers[1:], strict=False):
        events = load_verified(result.folder / earlier.transcript)
        linked = header["options"]["campaign"]["previous"]
        assert linked["transcript"] == earlier.transcript
        assert events[linked["seq"]]["hash"] == header["wall"]["previous_hash"]

    other = run(RIVERSIDE, tmp_path / "b", seed=2)
    (result.folder / "01-pilot.jsonl").write_bytes((other.folder / "01-pilot.jsonl")
                                                   .read_bytes())
    problems = verify_campaign(result.folder)
    assert any("02-pilot-review.jsonl: its link does not match" in p for p in problems)

    lines = (result.folder / "03-full-terms.jsonl").read_text().splitlines()
    lines[3] = lines[3].replace('"round":0', '"round":1', 1)
    (result.folder / "03-full-terms.jsonl").write_text("\n".join(lines) + "\n")
    assert any(p.startswith("03-full-terms.jsonl: TAMPERED") for p in
               verify_campaign(result.folder))


def test_evaluation_moves_trust_toward_what_each_partner_delivered(tmp_path: Path) -> None:
    path = tiny_campaign(tmp_path, [
        {"id": "pilot", "kind": "negotiate"},
        {"id": "review", "kind": "evaluate", "noise": 0.0, "learning_rate": 0.25,
         "reliability": {"a": 1.0, "b": 0.2}},
        {"id": "again", "kind": "negotiate"},
    ], initial_trust=0.8)
    result = run(path, tmp_path / "out")
    pilot, review, again = result.stages
    assert pilot.status == "agreement"
    evaluation = load_verified(result.folder / review.transcript)[1]
    assert evaluation["delivered"] == {"a": 1.0, "b": 0.2}
    assert review.trust == {"a": {"b": pytest.approx(0.75 * 0.8 + 0.25 * 0.2)},
                            "b": {"a": pytest.approx(0.75 * 0.8 + 0.25 * 1.0)}}
    assert review.values == {"a": pytest.approx(pilot.values["a"] * 0.2),
                             "b": pytest.approx(pilot.values["b"] * 1.0)}
    # Distrust raises the bar: a's reservation value is its BATNA over its trust in b.
    assert again.reservations["a"] == pytest.approx(0.2 / review.trust["a"]["b"], abs=1e-4)
    assert again.reservations["b"] == pytest.approx(0.3 / review.trust["b"]["a"], abs=1e-4)
    assert again.reservations["a"] > pilot.reservations["a"]


def test_with_a_status_quo_no_party_accepts_less_than_the_agreement_in_force(
        tmp_path: Path) -> None:
    path = tiny_campaign(tmp_path, [
        {"id": "pilot", "kind": "negotiate"},
        {"id": "again", "kind": "negotiate", "status_quo": True},
    ], initial_trust=1.0)
    result = run(path, tmp_path / "out")
    pilot, again = result.stages
    for party, value in pilot.values.items():
        assert again.reservations[party] == pytest.approx(min(MAX_RESERVATION, max(
            value, {"a": 0.2, "b": 0.3}[party])), abs=1e-4)
        if again.status == "agreement":
            assert again.values[party] >= value - 1e-9


def test_a_failed_scale_up_leaves_the_agreement_in_force(tmp_path: Path) -> None:
    greedy = {**NEWCOMER, "preferences": {
        **NEWCOMER["preferences"],
        "red_lines": [{"issue": "pot", "party": "c", "op": ">=", "value": 100}]}}
    path = tiny_campaign(tmp_path, [
        {"id": "pilot", "kind": "negotiate"},
        {"id": "grow", "kind": "negotiate", "status_quo": True, "join": [greedy]},
    ])
    pilot, grow = run(path, tmp_path / "out").stages
    assert pilot.status == "agreement"
    assert grow.status == "no_agreement"
    assert "the agreement of 'pilot' stays in force" in grow.reason
    assert grow.terms == pilot.terms


def test_a_campaign_stops_when_a_stage_needs_an_agreement_there_is_not(tmp_path: Path) -> None:
    walker = {"id": "pilot", "kind": "negotiate", "agents": {"a": "hardliner",
                                                             "b": "hardliner"},
              "rounds": 2}
    path = tiny_campaign(tmp_path, [walker, {"id": "review", "kind": "evaluate"}])
    result = run(path, tmp_path / "out")
    assert [s.status for s in result.stages] == ["no_agreement"]
    assert result.stopped is not None and "no agreement in force" in result.stopped
    assert read_manifest(result.folder)["stopped"] == result.stopped


def test_parties_remember_earlier_stages_and_only_their_own_trust(
        tmp_path: Path, plugin: Callable[[str], list[str]]) -> None:
    SEEN.clear()
    rememberer = "tests.test_campaign:RememberingBoulware"
    plugin(rememberer)  # files name import paths only once the command line vouches
    path = tiny_campaign(tmp_path, [
        {"id": "pilot", "kind": "negotiate"},
        {"id": "review", "kind": "evaluate", "reliability": {"a": 0.9, "b": 0.5}},
        {"id": "grow", "kind": "negotiate", "join": [NEWCOMER], "keep": ["colour"]},
    ], agents={"a": rememberer, "b": rememberer})
    result = run(path, tmp_path / "out")
    pilot, review, grow = result.stages
    assert pilot.terms is not None
    assert [memory for _, memory in SEEN[:2]] == [None, None]  # nothing to remember yet
    later = [(party, memory) for party, memory in SEEN if memory is not None and memory.earlier]
    assert later, "the agents of the last stage were given their memory"
    for party, memory in later:
        assert [record.stage for record in memory.earlier] == ["pilot", "review"]
        assert memory.earlier[0].agreement == pilot.terms
        assert memory.earlier[1].realised == review.values[party]
        # Only the party's own trust, in everyone else at the table, newcomer included.
        assert set(memory.trust) == {"a", "b", "c"} - {party}
        assert memory.earlier[1].trust == review.trust[party]
        assert memory.status_quo is not None
        assert memory.status_quo.terms["colour"] == pilot.terms["colour"]
        assert memory.status_quo.terms["pot"]["c"] == 0
    assert grow.terms is None or grow.terms["colour"] == pilot.terms["colour"]


CAMPAIGN_CASES = [
    ("evaluation first", [{"id": "x", "kind": "evaluate"}], "stages[0].kind",
     "put a negotiate stage before it"),
    ("keep an unknown issue", [{"id": "p", "kind": "negotiate"},
                               {"id": "q", "kind": "negotiate", "keep": ["size"]}],
     "stages[1].keep[0]", "not an issue"),
    ("keep in the first stage", [{"id": "p", "kind": "negotiate", "keep": ["colour"]}],
     "stages[0].keep", "no earlier agreement"),
    ("join an existing party", [{"id": "p", "kind": "negotiate",
                                 "join": [{**NEWCOMER, "id": "a"}]}],
     "stages[0].join[0].id", "already a party"),
    ("joining partner without a weight", [{"id": "p", "kind": "negotiate", "join": [
        {**NEWCOMER, "preferences": {**NEWCOMER["preferences"],
                                     "weights": {"colour": 0.5, "price": 0.5}}}]}],
     "stages[0].join[0].preferences", "pot"),
    ("duplicate stage ids", [{"id": "p", "kind": "negotiate"},
                             {"id": "p", "kind": "negotiate"}], "stages[1].id", "duplicate"),
    ("unknown stage kind", [{"id": "p", "kind": "celebrate"}], "stages[0]", "kind"),
    ("unknown strategy", [{"id": "p", "kind": "negotiate", "agents": {"a": "bouldware"}}],
     "stages[0].agents.a", "unknown strategy 'bouldware'"),
    ("fixed value not allowed", [{"id": "p", "kind": "negotiate", "fixed": {"price": 7}}],
     "fixed.price", "give one of the issue's values"),
]


@pytest.mark.parametrize("name, stages, field, fix", CAMPAIGN_CASES,
                         ids=[case[0] for case in CAMPAIGN_CASES])
def test_broken_campaign_files_name_the_file_the_field_and_the_fix(
        tmp_path: Path, name: str, stages: list[dict[str, Any]], field: str, fix: str) -> None:
    path = tiny_campaign(tmp_path, stages)
    with pytest.raises(CampaignError) as caught:
        load_campaign(path)
    message = str(caught.value)
    assert str(path) in message and "invalid campaign" in message
    assert field in message and fix in message


def test_negotiate_campaign_prints_the_summary_and_draws_the_plot(tmp_path: Path) -> None:
    done = negotiate("campaign", str(RIVERSIDE), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    for heading in ("Terms in force after each negotiation", "mean trust", "scale-up",
                    "neighbours"):
        assert heading in done.stdout
    (folder,) = tmp_path.iterdir()
    assert (folder / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checked = negotiate("verify", str(folder))
    assert checked.returncode == 0 and "every stage verified and linked" in checked.stdout
    refused = negotiate("review", str(folder / "02-pilot-review.jsonl"), "--approve",
                        "--reviewer", "Ada")
    assert refused.returncode == 2 and "not a negotiation" in refused.stderr
    broken = negotiate("campaign", str(tmp_path / "missing.yaml"))
    assert broken.returncode == 2 and "missing.yaml" in broken.stderr


def test_an_llm_party_reads_its_own_recollection_and_nothing_private_of_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = load_scenario("platform-app-vendor")
    point = SpaceAnalysis(scenario).nash
    assert point is not None
    path = tmp_path / "llm-campaign.yaml"
    path.write_text(yaml.safe_dump({
        "id": "llm-arc", "title": "LLM arc", "scenario": "platform-app-vendor",
        "initial_trust": 1.0,
        "agents": {"vendor": "llm:scripted"},
        "stages": [{"id": "pilot", "kind": "negotiate"},
                   {"id": "review", "kind": "evaluate"},
                   {"id": "renew", "kind": "negotiate"}]}), encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-never-logged")
    with ScriptedServer(fair_dealer(point.terms)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = run(path, tmp_path / "out")
    pilot, review, renew = result.stages
    assert pilot.status == "agreement"
    first_stage_calls = sum(e["type"] == "llm_call" for e in
                            load_verified(result.folder / pilot.transcript))
    heading = "## Earlier stages of this partnership (what you remember)\n"
    assert not any(heading in prompt(r) for r in server.requests[:first_stage_calls])
    later = server.requests[first_stage_calls:]
    assert later
    platform = scenario.organization("platform").preferences
    for request in later:
        text = prompt(request)
        block = text.split(heading, 1)[1].split("\n\n## ", 1)[0]
        remembered = json.loads(block)
        assert remembered["agreement_in_force"] == pilot.terms
        assert remembered["your_trust_in_each_partner"] == review.trust["vendor"]
        assert [s["stage"] for s in remembered["stages"]] == ["pilot", "review"]
        assert remembered["stages"][1]["your_realised_value"] == review.values["vendor"]
        assert str(review.values["platform"]) not in block
        assert platform.batna not in text
        assert "sk-test-secret" not in text
    assert renew.status in {"agreement", "no_agreement"}

    # Every reply was recorded beside the transcripts: the campaign replays offline.
    monkeypatch.delenv("OPENAI_BASE_URL")
    replayed = run(path, tmp_path / "again",
                   llm_run=LLMRun(replay=result.folder / "llm-calls.jsonl"))
    for original, again in zip(result.stages, replayed.stages, strict=True):
        assert deterministic_lines(load_verified(result.folder / original.transcript)) == \
            deterministic_lines(load_verified(replayed.folder / again.transcript))
