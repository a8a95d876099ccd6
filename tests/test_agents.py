"""Rule-based agents: deterministic, within their own limits, and true to their formulas."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from agents import STRATEGIES, StrategyError, View, make_agent
from agents.rule_based import TimeDependentCurve
from negotiation.engine import Negotiation, RunResult, run_scenario
from negotiation.model import Action, Propose, Scenario
from negotiation.scenario import load_scenario
from negotiation.transcript import TranscriptWriter
from negotiation.utility import OutcomeSpace, red_line_mask, utility_functions

BUILT_IN = ["boulware", "linear", "conceder", "tit_for_tat", "hardliner", "random"]


def run(scenario: Scenario, agents: dict[str, str] | None = None, seed: int = 0,
        rounds: int | None = None) -> RunResult:
    return anyio.run(lambda: run_scenario(scenario, seed=seed, agents=agents, rounds=rounds))


def proposals(result: RunResult, party: str) -> list[dict]:
    return [e for e in result.transcript.events
            if e["type"] == "move" and e["party"] == party and e["action"]["kind"] == "propose"]


@pytest.mark.parametrize("beta, t, expected", [
    (1.0, 0.5, 0.9 - 0.5 * 0.5),          # linear: halfway
    (0.2, 0.5, 0.9 - 0.5 ** 5 * 0.5),     # Boulware barely moves
    (2.0, 0.25, 0.9 - 0.5 * 0.5),         # Conceder: sqrt(0.25) = 0.5 of the way
    (0.2, 1.0, 0.4),                      # every curve ends at the floor
])
def test_time_dependent_curve_matches_faratin_formula(beta: float, t: float,
                                                      expected: float) -> None:
    assert TimeDependentCurve(beta).target(t, best=0.9, worst=0.4) == pytest.approx(expected)


@pytest.mark.parametrize("strategy", BUILT_IN)
def test_agents_never_offer_below_their_reservation_or_across_their_red_lines(
        shipped_name: str, strategy: str) -> None:
    scenario = load_scenario(shipped_name)
    party = scenario.organizations[0]
    result = run(scenario, {party.id: strategy}, seed=3)
    space = OutcomeSpace.of(scenario)
    keeps = red_line_mask(space, party.preferences.red_lines)
    utility = utility_functions(scenario, space)[party.id]
    for event in proposals(result, party.id):
        outcome = space.index_of(event["action"]["offer"]["terms"])
        assert keeps[outcome]
        assert utility.of_outcome(outcome) >= party.preferences.reservation_value


@pytest.mark.parametrize("strategy", BUILT_IN)
def test_every_offer_carries_a_rationale(strategy: str) -> None:
    scenario = load_scenario("rd-joint-venture")
    result = run(scenario, {"voltaic": strategy, "kestrel": strategy})
    moves = [e for e in result.transcript.events if e["type"] == "move"]
    assert moves
    assert all(e["action"]["rationale"].strip() for e in moves)


def test_boulware_concedes_later_than_conceder() -> None:
    scenario = load_scenario("platform-app-vendor")
    boulware = run(scenario, {"platform": "boulware", "vendor": "hardliner"}, rounds=40)
    conceder = run(scenario, {"platform": "conceder", "vendor": "hardliner"}, rounds=40)
    at = 15  # well before the deadline
    own_b = proposals(boulware, "platform")[at]["utilities"]["platform"]
    own_c = proposals(conceder, "platform")[at]["utilities"]["platform"]
    assert own_b > own_c


def test_hardliner_repeats_its_best_offer() -> None:
    scenario = load_scenario("platform-app-vendor")
    result = run(scenario, {"vendor": "hardliner"})
    offers = {str(e["action"]["offer"]) for e in proposals(result, "vendor")}
    assert len(offers) == 1


def test_tit_for_tat_concedes_only_after_the_other_side_does() -> None:
    scenario = load_scenario("platform-app-vendor")
    against_hardliner = run(scenario, {"platform": "hardliner", "vendor": "tit_for_tat"})
    own = {e["utilities"]["vendor"] for e in proposals(against_hardliner, "vendor")}
    assert len(own) == 1  # nothing to reciprocate
    against_conceder = run(scenario, {"platform": "conceder", "vendor": "tit_for_tat"})
    utilities = [e["utilities"]["vendor"] for e in proposals(against_conceder, "vendor")]
    assert min(utilities) < utilities[0]


def test_same_seed_same_moves_different_seed_different_random_moves() -> None:
    scenario = load_scenario("species-reintroduction")
    agents = {"ngo": "random", "agency": "random", "landowners": "random"}
    first = [e["action"] for e in run(scenario, agents, seed=5).transcript.events[1:-1]]
    again = [e["action"] for e in run(scenario, agents, seed=5).transcript.events[1:-1]]
    other = [e["action"] for e in run(scenario, agents, seed=6).transcript.events[1:-1]]
    assert first == again
    assert first != other


def test_the_default_lineups_reach_an_agreement_on_every_shipped_scenario(
        shipped_name: str) -> None:
    result = run(load_scenario(shipped_name))
    assert result.status == "agreement", result.reason
    assert all(result.utilities[org.id] >= org.preferences.reservation_value
               for org in load_scenario(shipped_name).organizations)


class Spy:
    """An agent that records what it was shown and then leaves."""

    def __init__(self) -> None:
        self.views: list[View] = []

    async def act(self, view: View) -> Action:
        self.views.append(view)
        first = view.space.offer(0)
        return Propose(offer=first, rationale="probe")


def test_an_agent_sees_only_its_own_preferences() -> None:
    scenario = load_scenario("park-redevelopment")
    spy = Spy()
    agents = {"city": spy, "county": make_agent("boulware", party="county", seed=0),
              "foundation": make_agent("boulware", party="foundation", seed=0)}
    negotiation = Negotiation(scenario, rounds=2)
    anyio.run(lambda: negotiation.run(agents, seed=0, writer=TranscriptWriter(),
                                      specs={p: "x" for p in agents}))
    assert spy.views
    for view in spy.views:
        assert view.preferences == scenario.organization("city").preferences
        public = view.scenario.model_dump_json()
        for org in scenario.organizations:
            assert org.preferences.batna not in public
        assert "reservation_value" not in public and "red_lines" not in public
        assert not any(isinstance(v, Scenario) for v in vars_of(view))


def vars_of(view: View) -> list[object]:
    return [getattr(view, name) for name in view.__slots__]


@pytest.mark.parametrize("spec, message", [
    ("telepathy", "unknown strategy 'telepathy'"),
    ("time_dependent:beta", "must look like key=value"),
    ("time_dependent:beta=soft", "must be a finite number, got 'soft'"),
    ("time_dependent:beta=nan", "must be a finite number, got 'nan'"),
    ("time_dependent:beta=inf", "must be a finite number, got 'inf'"),
    ("random:p_accept=-infinity", "must be a finite number"),
    ("time_dependent:beta=-1", "beta must be positive"),
    ("hardliner:speed=2", "unexpected keyword"),
])
def test_bad_strategy_specs_are_explained(spec: str, message: str) -> None:
    with pytest.raises(StrategyError, match=message):
        make_agent(spec, party="a", seed=0)


def test_every_registered_strategy_builds() -> None:
    for name in STRATEGIES:
        assert make_agent(name, party="a", seed=1) is not None


def test_vectorised_bidder_prefers_outcomes_near_the_other_offers() -> None:
    scenario = load_scenario("rd-joint-venture")
    space = OutcomeSpace.of(scenario)
    table = space.similarity[2]  # the cost split
    assert np.allclose(np.diag(table), 1.0)
    assert table.min() == pytest.approx(0.0)
