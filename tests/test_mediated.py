"""The mediated single-text protocol: the mediator uses only what parties said."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation.engine import run_scenario
from negotiation.generate import random_scenario
from negotiation.model import ACTION, Accept, Offer, Propose, ProtocolConfig, WalkAway
from negotiation.scenario import load_scenario, scenario_from_data
from negotiation.transcript import load_verified
from protocols import MEDIATOR, MediatedSingleText, get_protocol
from protocols.mediated import medoid, revise

PROTOCOL = MediatedSingleText()


def test_medoid_is_a_plurality_for_options_and_a_median_for_numbers() -> None:
    assert medoid(["a", "b", "b", "c"]) == "b"
    assert medoid([10, 40, 20, 100, 30]) == 30
    splits = [{"x": 80, "y": 20}, {"x": 50, "y": 50}, {"x": 40, "y": 60}]
    assert medoid(splits) == {"x": 50, "y": 50}


def test_ties_keep_the_current_text() -> None:
    assert medoid(["a", "b"], current="b") == "b"
    assert medoid(["a", "b"]) == "a"


def test_revision_takes_each_issue_from_the_requests() -> None:
    requests = [Offer(terms={"fee": 10, "ip": "joint"}), Offer(terms={"fee": 30, "ip": "a"}),
                Offer(terms={"fee": 20, "ip": "joint"})]
    assert revise(None, requests).terms == {"fee": 20, "ip": "joint"}


def offer(n: int) -> Offer:
    return Offer(terms={"x": n})


@st.composite
def games(draw: st.DrawFn) -> tuple[int, int, list[tuple[str, int]]]:
    return (draw(st.integers(3, 8)), draw(st.integers(1, 5)),
            draw(st.lists(st.tuples(st.sampled_from(["propose", "accept", "accept",
                                                     "accept", "walk_away"]),
                                    st.integers(0, 2)), max_size=80)))


@settings(max_examples=150, deadline=None)
@given(games())
def test_agreement_only_when_every_party_approved_the_same_text(game: Any) -> None:
    parties, rounds, moves = game
    state = PROTOCOL.start([f"p{i}" for i in range(parties)], rounds)
    approvals: dict[int, set[str]] = {}
    for kind, n in moves:
        if state.done:
            break
        party = state.current_party
        if kind not in PROTOCOL.legal_actions(state, party):
            continue
        action = {"propose": Propose(offer=offer(n), rationale="r"),
                  "accept": Accept(rationale="r"), "walk_away": WalkAway(rationale="r")}[kind]
        if kind == "accept":
            approvals.setdefault(state.round, set()).add(party)
        round_before = state.round
        state = PROTOCOL.apply(state, party, action)
        if state.status == "agreement":
            assert approvals[round_before] == set(state.parties)
            assert state.standing_proposer == MEDIATOR
    assert state.round <= rounds


def mediated(name: str) -> Any:
    data = load_scenario(name).model_dump(mode="json")
    data["protocol"] = {"name": "mediated_single_text", "rounds": 40}
    return scenario_from_data(data)


def test_each_text_is_made_only_of_what_parties_asked_for(tmp_path: Any) -> None:
    result = anyio.run(lambda: run_scenario(mediated("park-redevelopment"), seed=1,
                                            out_dir=tmp_path))
    assert result.path is not None
    events = load_verified(result.path)
    texts = [e for e in events if e["type"] == "mediator_text"]
    assert texts
    previous: dict[str, Any] | None = None
    for text in texts:
        asked = [e["action"]["offer"]["terms"] for e in events
                 if e["type"] == "move" and e["round"] == text["round"] - 1
                 and e["action"]["kind"] == "propose"]
        if previous is not None:
            asked.append(previous)  # approvals count as asking for the current text
        for issue, value in text["terms"].items():
            assert value in [terms[issue] for terms in asked]
        previous = text["terms"]
    assert result.status == "agreement"
    assert events[-1]["agreement"]["proposer"] == MEDIATOR


def test_the_texts_follow_from_the_public_moves_alone(tmp_path: Any) -> None:
    """Replaying only the recorded moves through the bare protocol — no scenario, no
    preferences — yields the very same texts."""
    result = anyio.run(lambda: run_scenario(mediated("species-reintroduction"), seed=2,
                                            out_dir=tmp_path))
    assert result.path is not None
    events = load_verified(result.path)
    header = events[0]
    state = PROTOCOL.start(header["parties"], header["protocol"]["rounds"])
    replayed = []
    for event in events:
        if event["type"] == "move":
            before = state.standing_offer
            state = PROTOCOL.apply(state, event["party"], ACTION.validate_python(
                event["action"]))
            if state.standing_offer is not before and state.standing_offer is not None \
                    and not state.done:
                replayed.append(state.standing_offer.terms)
        elif event["type"] == "blocked":
            state = PROTOCOL.pass_turn(state)
    assert replayed == [e["terms"] for e in events if e["type"] == "mediator_text"]


@pytest.mark.parametrize("parties", [3, 5, 8])
def test_three_to_eight_parties_negotiate_to_a_valid_end(parties: int, tmp_path: Any) -> None:
    data = random_scenario(parties, 3, 4, seed=parties)
    data["protocol"] = {"name": "mediated_single_text", "rounds": 30}
    scenario = scenario_from_data(data)
    result = anyio.run(lambda: run_scenario(scenario, seed=0, out_dir=tmp_path))
    assert result.path is not None
    events = load_verified(result.path)
    assert events[-1]["type"] == "outcome"
    assert result.status in {"agreement", "no_agreement"}
    if result.status == "agreement":
        assert all(result.utilities[o.id] >= o.preferences.reservation_value
                   for o in scenario.organizations)


def test_the_protocol_is_listed_and_found_by_name() -> None:
    assert get_protocol("mediated_single_text").name == "mediated_single_text"


def test_llm_and_rule_based_parties_share_a_mediated_negotiation(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from negotiation.analysis import SpaceAnalysis
    from negotiation.devtools.llm_server import ScriptedServer
    from tests.llm_support import fair_dealer, prompt

    scenario = mediated("park-redevelopment")
    nash = SpaceAnalysis(scenario).nash
    assert nash is not None
    with ScriptedServer(fair_dealer(nash.terms, accept_above=0.5)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = anyio.run(lambda: run_scenario(scenario, seed=1, out_dir=tmp_path,
                                                agents={"county": "llm:scripted"}))
    assert result.path is not None
    events = load_verified(result.path)
    assert any(e["type"] == "llm_call" and e["party"] == "county" for e in events)
    assert any(e["type"] == "mediator_text" for e in events)
    assert "neutral mediator keeps one text" in prompt(server.requests[0])
    assert events[-1]["type"] == "outcome"


class Leaver:
    """Leaves at its first turn."""

    async def act(self, view: Any) -> Any:
        return WalkAway(rationale="We will pursue our own plan.")


def coalition_scenario(min_coalition: int | None) -> Any:
    data = load_scenario("species-reintroduction").model_dump(mode="json")
    data["protocol"] = {"name": "mediated_single_text", "rounds": 40,
                        "min_coalition": min_coalition}
    return scenario_from_data(data)


def run_with_leaver(min_coalition: int | None) -> Any:
    from negotiation.engine import Negotiation, build_agents
    from negotiation.transcript import TranscriptWriter

    scenario = coalition_scenario(min_coalition)
    specs = {"ngo": "boulware", "agency": "linear", "landowners": "leaver"}
    agents = build_agents({**specs, "landowners": "boulware"}, 0, scenario)
    agents["landowners"] = Leaver()
    writer = TranscriptWriter()
    result = anyio.run(lambda: Negotiation(scenario).run(agents, seed=0, writer=writer,
                                                         specs=specs))
    return result, writer.events


def test_the_others_may_go_on_and_agree_without_a_party_that_left() -> None:
    result, events = run_with_leaver(min_coalition=2)
    assert result.status == "agreement"
    assert result.agreement.parties == ["ngo", "agency"]
    assert "without landowners, who left" in result.reason
    assert result.agreement.terms["monitoring_split"]["landowners"] == 0
    outcome = events[-1]
    assert outcome["fairness"]["members"] == ["ngo", "agency"]
    checked = {f["data"].get("party") for f in outcome["verdict"]["findings"]
               if f["check"] in {"individual_rationality", "red_lines"}}
    assert "landowners" not in checked


def test_without_min_coalition_leaving_ends_the_negotiation() -> None:
    result, _ = run_with_leaver(min_coalition=None)
    assert result.status == "no_agreement" and result.reason == "landowners walked away"


def test_terms_that_still_charge_a_departed_party_are_blocked_with_the_reason() -> None:
    from negotiation.guardrails import Referee

    scenario = coalition_scenario(2)
    referee = Referee(scenario)
    terms = referee.space.terms(0) | {"monitoring_split": {"ngo": 40, "agency": 40,
                                                           "landowners": 20}}
    verdict, _ = referee.check_proposal("ngo", Propose(offer=Offer(terms=terms),
                                                       rationale="r"), ("landowners",))
    assert verdict.blocked
    assert any(f.code == "share_for_departed" for f in verdict.findings)
    feedback = referee.feedback(verdict, terms, ("landowners",))
    assert any(r.party == "landowners" and r.value == 0 for r in feedback.red_lines)


def test_min_coalition_needs_the_mediated_protocol() -> None:
    from negotiation.scenario import ScenarioError

    data = load_scenario("species-reintroduction").model_dump(mode="json")
    data["protocol"] = {"name": "alternating_offers", "rounds": 10, "min_coalition": 2}
    with pytest.raises(ScenarioError, match=r"protocol\.min_coalition"):
        scenario_from_data(data)


@settings(max_examples=100, deadline=None)
@given(st.integers(3, 6), st.lists(st.sampled_from(["propose", "accept", "walk_away"]),
                                   max_size=60))
def test_leaving_keeps_the_turn_order_of_those_who_stay(parties: int,
                                                        kinds: list[str]) -> None:
    config = ProtocolConfig(name=PROTOCOL.name, rounds=4, min_coalition=2)
    state = PROTOCOL.start([f"p{i}" for i in range(parties)], 4, config)
    for kind in kinds:
        if state.done:
            break
        party = state.current_party
        if kind not in PROTOCOL.legal_actions(state, party):
            continue
        before = list(state.parties)
        action = {"propose": Propose(offer=offer(1), rationale="r"),
                  "accept": Accept(rationale="r"), "walk_away": WalkAway(rationale="r")}[kind]
        state = PROTOCOL.apply(state, party, action)
        if kind == "walk_away" and not state.done:
            assert party not in state.parties and party in PROTOCOL.departed(state)
            assert len(state.parties) >= 2
            following = before[(before.index(party) + 1) % len(before)]
            if state.turn != 0 or state.round == 0:
                assert state.current_party == following or state.turn == 0
        assert state.standing_offer is None or set(state.accepted_by) <= set(state.parties)


class OffTheTable:
    """Asks for a term the scenario does not have: the referee blocks every request."""

    async def act(self, view: Any) -> Any:
        return Propose(offer=Offer(terms={"nonsense": 1}), rationale="r")


def test_a_text_revised_when_a_blocked_request_ends_the_round_is_recorded() -> None:
    """The last party's request is blocked, so the round ends on a blocked move: the
    mediator's revision from the others' requests is still in the transcript, and the
    texts follow from the recorded moves alone."""
    from negotiation.engine import Negotiation, build_agents
    from negotiation.transcript import TranscriptWriter

    scenario = mediated("species-reintroduction")
    specs = dict.fromkeys(scenario.party_ids, "boulware")
    agents = build_agents(specs, 0, scenario)
    agents[scenario.party_ids[-1]] = OffTheTable()
    writer = TranscriptWriter()
    anyio.run(lambda: Negotiation(scenario, rounds=6).run(agents, seed=0, writer=writer,
                                                          specs=specs))
    events = writer.events
    state = PROTOCOL.start(scenario.party_ids, 6)
    replayed = []
    for event in events:
        before = state.standing_offer
        if event["type"] == "move":
            state = PROTOCOL.apply(state, event["party"], ACTION.validate_python(
                event["action"]))
        elif event["type"] == "blocked":
            state = PROTOCOL.pass_turn(state)
        else:
            continue
        if state.standing_offer is not before and state.standing_offer is not None \
                and not state.done:
            replayed.append(state.standing_offer.terms)
    assert any(e["type"] == "blocked" for e in events)
    texts = [e["terms"] for e in events if e["type"] == "mediator_text"]
    assert texts and replayed == texts
