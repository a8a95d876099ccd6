"""Rule-based agents bisect a long ranking (more than ``TUPLE_LIMIT`` outcomes) through a
read-only memoryview of its array, a short one through a tuple: every strategy makes the
same moves either way, with three parties, and after a blocked proposal has made a Bidder
its own, boolean-masked copy of the ranking (``Bidder.forbid``)."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Sequence

import anyio
import pytest

from agents import STRATEGIES, make_agent, rule_based
from agents.rule_based import _RANKINGS, TUPLE_LIMIT, Bidder
from negotiation.analysis import SpaceAnalysis
from negotiation.events import deterministic_lines
from negotiation.model import RedLine, Scenario
from negotiation.scenario import scenario_from_data
from negotiation.session import Negotiation
from negotiation.transcript import TranscriptWriter
from tests.test_cold_setup import _domain


def red_lined(parties: int) -> Scenario:
    """9^5 = 59,049 outcomes; each party refuses three options of another party's issue,
    so proposals get blocked, and a Bidder's ranking stays long after it learns why."""
    data = _domain(5, 9, parties).model_dump(mode="json", exclude_none=True)
    for k, org in enumerate(data["organizations"]):
        org["preferences"]["red_lines"] = [
            {"issue": f"i{(k + 1) % 5}", "op": "not_in", "value": ["v0", "v1", "v2"]}]
    return scenario_from_data(data)


def transcript(scenario: Scenario, specs: Sequence[str], seed: int,
               analysis: SpaceAnalysis | None = None) -> list[str]:
    async def run() -> list[str]:
        agents = {party: make_agent(spec, party=party, seed=seed)
                  for party, spec in zip(scenario.party_ids, specs, strict=True)}
        with TranscriptWriter(None) as writer:
            await Negotiation(scenario, analysis=analysis or SpaceAnalysis(scenario)).run(
                agents, seed=seed, writer=writer, specs=dict.fromkeys(agents, "x"))
            return deterministic_lines(writer.events)
    return anyio.run(run)


@pytest.mark.parametrize("parties", [2, 3])
def test_every_strategy_moves_alike_bisecting_a_view_or_a_tuple(
        parties: int, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = red_lined(parties)
    names = sorted(STRATEGIES)
    lineups = [tuple(names[(i + k) % len(names)] for k in range(parties))
               for i in range(len(names))]
    forbidden: Counter[str] = Counter()
    forbid = Bidder.forbid

    def noting(self: Bidder, red_lines: Sequence[RedLine], outcome: int | None) -> None:
        forbid(self, red_lines, outcome)
        forbidden[type(self._sorted_utility).__name__] += 1

    monkeypatch.setattr(Bidder, "forbid", noting)
    in_place = [transcript(scenario, lineup, seed) for lineup in lineups for seed in (0, 1)]
    assert forbidden["memoryview"] > 0 and forbidden["tuple"] == 0
    monkeypatch.setattr(rule_based, "TUPLE_LIMIT", 10**6)  # every ranking as a tuple
    as_tuples = [transcript(scenario, lineup, seed) for lineup in lineups for seed in (0, 1)]
    assert forbidden["tuple"] == forbidden["memoryview"]
    assert in_place == as_tuples
    assert all(len(lines) > 3 for lines in in_place)
    assert any('"red_line_crossed"' in line for lines in in_place for line in lines)
    assert TUPLE_LIMIT < 9**5


def test_the_shared_view_cannot_be_written_through() -> None:
    """The view a long ranking's Bidders share is read-only, and so is the array under it:
    an agent writing into its own search structure changes no other run's choices."""
    scenario = red_lined(2)
    analysis = SpaceAnalysis(scenario)
    transcript(scenario, ("boulware", "conceder"), 0, analysis)
    ranking = _RANKINGS[analysis.functions["p0"]]
    assert len(ranking.ascending) > TUPLE_LIMIT
    view = ranking.searchable
    assert isinstance(view, memoryview) and view.readonly
    assert len(gc.get_referents(view)) <= 1  # the collector walks no floats through it
    with pytest.raises(TypeError):
        view[0] = 2.0
    with pytest.raises(ValueError, match="read-only"):
        view.obj[0] = 2.0  # type: ignore[index]
