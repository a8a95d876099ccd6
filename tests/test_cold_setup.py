"""A run's per-scenario set-up (its analysis, referee, read-only copies, agreement report)
is cheap to make and to drop: what a cold run builds is freed as soon as nobody uses it,
and what it computes is what the full computation gives."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import make_agent
from negotiation import pareto as pareto_module
from negotiation.analysis import SpaceAnalysis, pareto_mask
from negotiation.events import deterministic_lines
from negotiation.model import Scenario
from negotiation.scenario import load_scenario, scenario_from_data
from negotiation.session import Negotiation
from negotiation.transcript import TranscriptWriter, verify
from negotiation.utility import STABLE_SORT_LIMIT, stable_argsort

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


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 6_000), levels=st.sampled_from([2, 50, 10**6, None]),
       seed=st.integers(0, 2**32 - 1))
def test_the_quick_stable_argsort_is_numpys_stable_argsort(
        size: int, levels: int | None, seed: int) -> None:
    """Below and above the size where it changes method, with many ties, few or none."""
    rng = np.random.default_rng(seed)
    values = rng.random(size) if levels is None else rng.integers(0, levels, size) / levels
    assert stable_argsort(values).tolist() == np.argsort(values, kind="stable").tolist()


def test_the_quick_stable_argsort_keeps_the_order_of_ties_beyond_its_limit() -> None:
    values = np.tile([0.5, 0.25, 0.5, 0.0, -0.0], STABLE_SORT_LIMIT)
    assert stable_argsort(values).tolist() == np.argsort(values, kind="stable").tolist()


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_frontier_outcomes_efficiency_is_what_the_full_computation_gives(name: str) -> None:
    """The shortcut for an outcome on the frontier (distance 0, dominated by none) answers
    what the distance and dominance computation answers, and other outcomes still get it."""
    analysis = SpaceAnalysis(load_scenario(name))
    frontier = analysis.frontier.tolist()
    computed = analysis._efficiency_of(np.array(frontier))
    assert computed[0].tolist() == [0.0] * len(frontier)
    assert computed[1].tolist() == [-1] * len(frontier)
    assert [analysis.efficiency(outcome) for outcome in frontier] == [(0.0, None)] * len(frontier)
    others = [o for o in range(0, analysis.space.size, 7) if o not in set(frontier)][:50]
    assert others
    for outcome in others:
        distance, better = analysis.efficiency(outcome)
        row = analysis._efficiency_of(np.array([outcome]))
        assert (distance, better) == (float(row[0][0]), None if row[1][0] < 0 else int(row[1][0]))
        assert distance > 0 or better is None


def _brute_force_frontier(points: np.ndarray) -> np.ndarray:
    """Undominated rows of ``points`` on the comparison grid, by comparing every pair."""
    grid = np.rint(points * 1e9)
    dominated = np.zeros(len(grid), dtype=bool)
    for start in range(0, len(grid), 500):
        block = grid[start:start + 500]
        at_least = (grid[:, None, :] >= block[None, :, :]).all(axis=2)
        better = (grid[:, None, :] > block[None, :, :]).any(axis=2)
        dominated[start:start + 500] = (at_least & better).any(axis=0)
    return ~dominated


@pytest.mark.parametrize("count, parties, shape", [
    (3_000, 3, "cube"), (2_500, 5, "cube"), (4_000, 3, "ties"), (2_000, 6, "ties"),
    (3_000, 3, "simplex"), (2_500, 4, "simplex")])
def test_the_pruning_passes_keep_exactly_the_frontier(count: int, parties: int,
                                                      shape: str) -> None:
    """Points in a cube (most dominated: the first pass drops them), with ties, and near a
    simplex (most undominated: the second pass runs over more than a thousand survivors)."""
    rng = np.random.default_rng(count + parties)
    points = rng.random((count, parties))
    if shape == "ties":
        points = np.round(points * 6) / 6
    if shape == "simplex":
        points = rng.dirichlet(np.ones(parties), count) + rng.random((count, parties)) * 1e-3
    assert np.array_equal(pareto_mask(points), _brute_force_frontier(points))


def _domain(issues: int, options: int, parties: int) -> Scenario:
    """A discrete linear-additive scenario of ``options ** issues`` outcomes."""
    rng = np.random.default_rng(issues * 100 + parties)
    names = [f"v{k}" for k in range(options)]
    return scenario_from_data({
        "id": "cold-domain", "title": "Cold domain",
        "issues": [{"id": f"i{k}", "kind": "discrete", "name": f"I{k}", "options": names}
                   for k in range(issues)],
        "organizations": [{
            "id": f"p{p}", "name": f"Party {p}",
            "preferences": {
                "reservation_value": 0.1,
                "weights": {f"i{k}": 1 / issues for k in range(issues)},
                "values": {f"i{k}": {"scores": {o: round(float(rng.random()), 3)
                                                for o in names}}
                           for k in range(issues)}}} for p in range(parties)]})


@pytest.mark.parametrize("shape", ["cube", "ties", "simplex", "line"])
def test_two_parties_pruned_frontier_is_the_unpruned_one(
        shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two parties prune only large sets (more than 8 × 1,024 points): the frontier is the
    one the sort alone finds (itself checked against brute force on small sets)."""
    rng = np.random.default_rng(len(shape))
    points = rng.random((20_000, 2))
    if shape == "ties":
        points = np.round(points * 50) / 50
    if shape == "simplex":
        points[:, 1] = 1 - points[:, 0] + rng.random(20_000) * 1e-4
    if shape == "line":  # every point on the frontier, copies included
        points[:, 1] = 1 - points[:, 0]
        points[7::7] = points[6:-1:7]  # copies of their neighbours
    pruned = pareto_mask(points)
    monkeypatch.setattr(pareto_module, "_PRUNE_TWO_AFTER", 10**9)
    assert np.array_equal(pruned, pareto_mask(points))


def test_editing_the_first_headers_scenario_changes_no_later_header(tmp_path: Path) -> None:
    """The first header of an analysis embeds the analysis's own scenario object: a hook
    that empties it changes neither the digest nor what later headers embed and hash."""
    scenario = load_scenario("platform-app-vendor")
    analysis = SpaceAnalysis(scenario)

    async def run(hook: Callable[[dict[str, Any]], None] | None,
                  over: SpaceAnalysis = analysis) -> list[str]:
        agents = {party: make_agent("boulware", party=party, seed=0)
                  for party in scenario.party_ids}
        with TranscriptWriter(None) as writer:
            await Negotiation(scenario, analysis=over).run(
                agents, seed=0, writer=writer, specs=dict.fromkeys(agents, "boulware"),
                on_event=hook)
            return writer.lines

    def vandal(event: dict[str, Any]) -> None:
        if event["type"] == "header":
            event["scenario"].clear()
            event["scenario"]["id"] = "forged"

    def recorded(lines: list[str]) -> list[str]:
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.jsonl"
        path.write_text("".join(f"{line}\n" for line in lines))
        assert verify(path).ok  # every hash is the hash of what the line holds
        return deterministic_lines([json.loads(line) for line in lines])

    clean = recorded(anyio.run(run, None, SpaceAnalysis(scenario)))
    digest = analysis.digest
    forged = anyio.run(run, vandal)
    assert analysis.scenario_json == {"id": "forged"}  # the first header's own object
    assert recorded(forged) == clean  # recorded before the hook saw it
    assert recorded(anyio.run(run, None)) == recorded(anyio.run(run, None)) == clean
    shown: list[dict[str, Any]] = []
    anyio.run(run, lambda event: shown.append(event) if event["type"] == "header" else None)
    assert shown[0]["scenario"] == scenario.model_dump(mode="json")  # what a hook is shown
    assert analysis.digest == digest
    clean = SpaceAnalysis(scenario)
    assert clean.header_scenario() == clean.header_scenario() == scenario.model_dump(mode="json")
