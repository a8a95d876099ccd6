"""A run's per-scenario set-up (its analysis, referee, read-only copies, agreement report)
is cheap to make and to drop: what a cold run builds is freed as soon as nobody uses it,
and what it computes is what the full computation gives."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import anyio
import pytest

from agents import make_agent
from negotiation.analysis import SpaceAnalysis
from negotiation.scenario import load_scenario
from negotiation.session import Negotiation
from negotiation.transcript import TranscriptWriter

SCENARIOS = ["platform-app-vendor", "park-redevelopment", "species-reintroduction",
             "rd-joint-venture"]


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The garbage collector off: what is freed then is freed by reference counting."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_cold_runs_analysis_is_freed_when_the_run_is_dropped_without_the_collector(
        name: str, no_collector: None) -> None:
    """A reference cycle through the analysis (a referee kept on it refers back to it) left
    every cold run's analysis, arrays and offers to the garbage collector."""
    scenario = load_scenario(name)

    async def run() -> weakref.ref[SpaceAnalysis]:
        analysis = SpaceAnalysis(scenario)
        negotiation = Negotiation(scenario, analysis=analysis)
        agents = {party: make_agent("boulware", party=party, seed=0)
                  for party in scenario.party_ids}
        with TranscriptWriter(None) as writer:
            result = await negotiation.run(agents, seed=0, writer=writer,
                                           specs=dict.fromkeys(agents, "boulware"))
        assert result.status in ("agreement", "no_agreement")
        return weakref.ref(analysis)

    gone = anyio.run(run)
    assert gone() is None
