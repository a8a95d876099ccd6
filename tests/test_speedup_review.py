"""Adversarial review of the cold- and warm-path speed-ups (issue #18): each shortcut must
give exactly what the general computation gives, and nothing a run is handed may carry
over to another run."""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation.analysis import SpaceAnalysis, pareto_mask
from negotiation.scenario import parse_scenario
from tests.test_analysis_reference import (
    dominates,
    random_case,
    reference_frontier,
    reference_solutions,
)


def _reference_frontier(points: npt.NDArray[np.float64]) -> list[bool]:
    """The documented answer, pair by pair on Python integers: rows compared on the
    ``on_grid`` grid, a row dominated when another is at least as good in every column
    and better in one."""
    grid = [[int(v) for v in row] for row in np.rint(points * 1e9)]
    return [not any(all(o >= p for o, p in zip(other, row, strict=True)) and other != row
                    for other in grid)
            for row in grid]


@settings(max_examples=60)
@given(seed=st.integers(0, 2**32 - 1), parties=st.integers(2, 5),
       rows=st.sampled_from([1, 2, 7, 40, 300]), levels=st.sampled_from([2, 5, 1000]),
       scale=st.sampled_from([1.0, 1e3, 1e7, 1e8]), negative=st.booleans())
def test_pareto_mask_is_the_pairwise_frontier_for_ties_duplicates_and_any_magnitude(
        seed: int, parties: int, rows: int, levels: int, scale: float,
        negative: bool) -> None:
    """Few levels give ties and duplicate rows; 300 rows run the pruning passes; values
    of 10^7 and more make the grid's row sums exceed 2^53 units, where a float sum no
    longer tells a dominating row from the row it dominates."""
    rng = np.random.default_rng(seed)
    points = rng.integers(0, levels, size=(rows, parties)) / levels * scale
    if negative:
        points -= scale / 2
    # Rows one grid unit better than another row in a single column.
    nudged = points[: rows // 3].copy()
    if len(nudged):
        nudged[:, rng.integers(0, parties)] += 1e-9
    points = np.vstack((points, nudged))
    assert pareto_mask(points).tolist() == _reference_frontier(points)


def test_a_row_one_grid_unit_better_dominates_its_equal_at_ten_million() -> None:
    for parties in (2, 3, 4):
        base = np.full(parties, 1e7)
        better = base.copy()
        better[0] += 2e-9
        assert pareto_mask(np.vstack((better, base))).tolist() == [True, False], parties


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32 - 1))
def test_frontier_solutions_and_efficiency_of_three_to_five_parties_match_brute_force(
        seed: int) -> None:
    """The solutions chosen in one pass, the pruned frontier and the frontier shortcut of
    ``efficiency``, against exact arithmetic: 3 to 5 parties, coarse scores (ties and
    duplicate utility vectors are common)."""
    text, points, reservations = random_case(random.Random(seed), party_counts=(3, 4, 5))
    analysis = SpaceAnalysis(parse_scenario(text))
    frontier = reference_frontier(points)
    assert set(analysis.frontier.tolist()) == frontier
    for outcome in range(len(points)):
        distance, dominating = analysis.efficiency(outcome)
        assert (dominating is None) == (outcome in frontier)
        assert (distance == 0.0) if outcome in frontier else (
            dominating is not None and dominating in frontier
            and dominates(points[dominating], points[outcome]))
    expected = reference_solutions(points, reservations)
    got = {name: None for name in expected} | {
        point.name: point.outcome for point in analysis.special_points()}
    assert got == expected
