"""A third protocol, written here as an extension, runs end to end through both drivers, the
referee and an LLM agent's prompt without a line of engine, referee or prompt code naming
it: they ask the protocol's hooks."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation.api import (
    Accept,
    Action,
    ActionKind,
    IllegalActionError,
    Offer,
    Propose,
    ProtocolBase,
    ProtocolState,
    WalkAway,
)
from negotiation.engine import run_scenario
from negotiation.graph import start_run
from negotiation.model import ProtocolConfig, Scenario
from negotiation.scenario import ScenarioError, load_scenario, scenario_from_data
from negotiation.transcript import load_verified
from protocols import get_protocol, protocol_names
from protocols.mediated import revise
from tests.conftest import REPO

SEALER = "sealed_offers"
MEDIAN_TEXT = "the issue-by-issue median of the parties' sealed offers"


@dataclass(frozen=True, slots=True)
class Sealed:
    """The offers handed in so far (in round one)."""

    offers: tuple[Offer, ...] = ()


class SealedOffers(ProtocolBase):
    """Sealed offers: each party hands in terms once; the median text is then put to a vote."""

    name = SEALER
    description = "Sealed offers: one round of sealed terms, then a vote on their median."
    rules = ("every party hands in complete terms once (propose); identical terms are agreed "
             "at once; otherwise the protocol tables the issue-by-issue median of them and "
             "each party accepts it, or rejects it (propose or walk away); it is agreed only "
             "if every party accepts it.")

    def start(self, parties: Sequence[str], max_rounds: int,
              config: ProtocolConfig | None = None) -> ProtocolState:
        return ProtocolState(tuple(parties), 2, 0, 0, "running", None, None, frozenset(), "",
                             Sealed())

    def legal_actions(self, state: ProtocolState, party: str) -> frozenset[ActionKind]:
        if state.done or party != state.current_party:
            return frozenset()
        if state.round == 0:
            return frozenset({"propose", "walk_away"})
        return frozenset({"accept", "propose", "walk_away"})

    def apply(self, state: ProtocolState, party: str, action: Action) -> ProtocolState:
        if state.done or party != state.current_party:
            raise IllegalActionError(f"it is not {party}'s turn")
        if isinstance(action, WalkAway):
            return replace(state, status="no_agreement", reason=f"{party} walked away")
        if isinstance(action, Accept):
            if state.round == 0:
                raise IllegalActionError("there is nothing to accept before the vote")
            return self.pass_turn(replace(state, accepted_by=state.accepted_by | {party}))
        if isinstance(action, Propose) and state.round == 0:
            sealed = cast(Sealed, state.extra)
            return self.pass_turn(replace(state, extra=Sealed((*sealed.offers, action.offer))))
        return self.pass_turn(state)  # a proposal in the vote rejects the median text

    def pass_turn(self, state: ProtocolState) -> ProtocolState:
        if state.turn + 1 < len(state.parties):
            return replace(state, turn=state.turn + 1)
        if state.round == 1:
            agreed = len(state.accepted_by) == len(state.parties)
            return replace(state, status="agreement" if agreed else "no_agreement",
                           reason="every party accepted the median text" if agreed
                           else "a party rejected the median text")
        offers = cast(Sealed, state.extra).offers
        if not offers:
            return replace(state, status="no_agreement", reason="nobody handed in terms")
        if len(offers) == len(state.parties) and all(o == offers[0] for o in offers):
            return replace(state, status="agreement", standing_offer=offers[0],
                           standing_proposer=SEALER, reason="every party sealed the same terms")
        return replace(state, round=1, turn=0, standing_offer=revise(None, offers),
                       standing_proposer=SEALER)

    def published(self, before: ProtocolState, after: ProtocolState) -> Offer | None:
        return after.standing_offer if after.round > before.round and not after.done else None

    def describe_proposer(self, proposer: str) -> str | None:
        return MEDIAN_TEXT if proposer == SEALER else None


@pytest.fixture
def sealed(plugin: Callable[[str], list[str]]) -> Callable[[str], Scenario]:
    """A shipped scenario under the sealed-offer protocol, registered as ``--plugin``
    would register it."""
    plugin(f"{SEALER}=tests.test_third_protocol:SealedOffers")

    def under_sealed_offers(name: str, strategy: str | None = None) -> Scenario:
        data = load_scenario(name).model_dump(mode="json")
        data["protocol"] = {"name": SEALER, "rounds": 2}
        for organization in data["organizations"]:
            organization["agent"]["strategy"] = strategy or organization["agent"]["strategy"]
        return scenario_from_data(data)

    return under_sealed_offers


def test_the_registered_protocol_is_found_and_listed(sealed: Any) -> None:
    assert get_protocol(SEALER).rules == SealedOffers.rules
    assert SEALER in protocol_names()


def test_the_plain_driver_runs_it_and_records_the_published_text(
        sealed: Any, tmp_path: Path) -> None:
    scenario = sealed("platform-app-vendor")
    result = anyio.run(lambda: run_scenario(scenario, seed=1, out_dir=tmp_path))
    assert result.path is not None
    events = load_verified(result.path)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "header" and kinds[-1] == "outcome"
    assert events[0]["protocol"]["name"] == SEALER
    texts = [e for e in events if e["type"] == "mediator_text"]
    assert len(texts) == 1 and texts[0]["round"] == 1
    votes = [e["party"] for e in events if e["type"] in {"move", "blocked"} and e["round"] == 1]
    assert votes == scenario.party_ids


def test_the_referee_describes_an_agreed_median_text_from_the_protocol(
        sealed: Any, tmp_path: Path) -> None:
    scenario = sealed("species-reintroduction", "conceder")
    result = anyio.run(lambda: run_scenario(scenario, seed=1, out_dir=tmp_path))
    assert result.path is not None
    outcome = load_verified(result.path)[-1]
    assert outcome["status"] == "agreement"
    assert outcome["agreement"]["proposer"] == SEALER
    accountability = [f for f in outcome["verdict"]["findings"]
                      if f["check"] == "accountability"]
    assert accountability == [{"check": "accountability", "level": "pass",
                               "code": "accountable", "message": MEDIAN_TEXT,
                               "data": {"proposer": SEALER}}]


def test_the_graph_driver_writes_the_same_transcript_as_the_plain_one(
        sealed: Any, tmp_path: Path) -> None:
    scenario = sealed("species-reintroduction", "conceder")
    plain = anyio.run(lambda: run_scenario(scenario, seed=2, out_dir=tmp_path / "plain"))
    graph_path = tmp_path / "graph.jsonl"
    graph = anyio.run(lambda: start_run(scenario, transcript=graph_path, seed=2))
    assert plain.path is not None
    assert (graph.status, graph.reason) == (plain.status, plain.reason) == \
        ("agreement", "every party accepted the median text")
    assert moves(load_verified(graph_path)) == moves(load_verified(plain.path))


def test_an_llm_agent_is_told_the_rules_from_the_protocol_itself(
        sealed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from negotiation.analysis import SpaceAnalysis
    from negotiation.devtools.llm_server import ScriptedServer
    from tests.llm_support import fair_dealer, prompt

    scenario = sealed("platform-app-vendor")
    nash = SpaceAnalysis(scenario).nash
    assert nash is not None
    party = scenario.party_ids[0]
    with ScriptedServer(fair_dealer(nash.terms, accept_above=0.5)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = anyio.run(lambda: run_scenario(scenario, seed=1, out_dir=tmp_path,
                                                agents={party: "llm:scripted"}))
    assert result.path is not None
    events = load_verified(result.path)
    assert any(e["type"] == "llm_call" and e["party"] == party for e in events)
    assert events[-1]["type"] == "outcome"
    assert SealedOffers.rules in prompt(server.requests[0])
    assert "neutral mediator" not in prompt(server.requests[0])


def test_a_setting_the_protocol_does_not_read_is_refused_at_its_field(
        sealed: Any) -> None:
    data = load_scenario("park-redevelopment").model_dump(mode="json")
    data["protocol"] = {"name": SEALER, "rounds": 2, "min_coalition": 2}
    with pytest.raises(ScenarioError, match=r"protocol\.min_coalition: sealed_offers ends "
                                            r"when a party walks away"):
        scenario_from_data(data)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 5), st.lists(st.sampled_from(["propose", "accept", "walk_away"]),
                                   max_size=12), st.lists(st.integers(0, 2), min_size=12,
                                                          max_size=12))
def test_it_ends_within_two_rounds_and_agrees_only_on_what_all_accepted(
        parties: int, kinds: list[str], values: list[int]) -> None:
    protocol = SealedOffers()
    state = protocol.start([f"p{i}" for i in range(parties)], 30)
    accepted: set[str] = set()
    for kind, value in zip(kinds, values, strict=False):
        if state.done:
            break
        party = state.current_party
        if kind not in protocol.legal_actions(state, party):
            continue
        actions: dict[str, Action] = {
            "propose": Propose(offer=Offer(terms={"x": value}), rationale="r"),
            "accept": Accept(rationale="r"), "walk_away": WalkAway(rationale="r")}
        action = actions[kind]
        if kind == "accept":
            accepted.add(party)
        state = protocol.apply(state, party, action)
        assert state.round <= 1
    if state.status == "agreement" and state.round == 1:
        assert accepted == set(state.parties)


def test_no_engine_referee_or_prompt_module_names_a_concrete_protocol() -> None:
    named = re.compile(r"\bMEDIATOR\b|protocols\.(mediated|alternating_offers)\b")
    offenders = [str(path.relative_to(REPO)) for folder in ("negotiation", "agents")
                 for path in sorted((REPO / folder).rglob("*.py"))
                 if named.search(path.read_text())]
    assert offenders == []


def moves(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["type"], e.get("party"), e.get("action") or e.get("terms"))
            for e in events if e["type"] in {"move", "blocked", "mediator_text", "outcome"}]
