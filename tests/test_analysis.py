"""Pareto frontier, bargaining solutions and Shapley values against hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from negotiation.analysis import SpaceAnalysis, pareto_mask, shapley_values
from negotiation.scenario import load_scenario, parse_scenario

TWO_BY_TWO = """
id: two-by-two
title: Two issues, two options each
issues:
  - {id: x, kind: discrete, name: X, options: [x0, x1]}
  - {id: y, kind: discrete, name: Y, options: [y0, y1]}
organizations:
  - id: a
    name: A
    preferences:
      reservation_value: 0.1
      weights: {x: 0.5, y: 0.5}
      values: {x: {scores: {x0: 1, x1: 0}}, y: {scores: {y0: 1, y1: 0}}}
  - id: b
    name: B
    preferences:
      reservation_value: 0.1
      weights: {x: 0.7, y: 0.3}
      values: {x: {scores: {x0: 0, x1: 1}}, y: {scores: {y0: 0, y1: 1}}}
"""
# Utilities (a, b): x0y0 = (1, 0), x0y1 = (.5, .3), x1y0 = (.5, .7), x1y1 = (0, 1).


@pytest.fixture
def two_by_two() -> SpaceAnalysis:
    return SpaceAnalysis(parse_scenario(TWO_BY_TWO))


def test_frontier_of_the_two_by_two(two_by_two: SpaceAnalysis) -> None:
    frontier = {tuple(two_by_two.space.terms(int(o)).values()) for o in two_by_two.frontier}
    assert frontier == {("x0", "y0"), ("x1", "y0"), ("x1", "y1")}


def test_zopa_excludes_outcomes_below_a_reservation_value(two_by_two: SpaceAnalysis) -> None:
    # x0y0 gives b 0 and x1y1 gives a 0, both below 0.1.
    assert two_by_two.zopa_size == 2


def test_bargaining_points_of_the_two_by_two(two_by_two: SpaceAnalysis) -> None:
    # Nash: (.5 − .1)(.7 − .1) = .24 beats (.5 − .1)(.3 − .1) = .08.
    assert two_by_two.nash is not None
    assert two_by_two.nash.terms == {"x": "x1", "y": "y0"}
    assert two_by_two.nash.utilities == {"a": 0.5, "b": 0.7}
    for point in (two_by_two.kalai_smorodinsky, two_by_two.egalitarian,
                  two_by_two.utilitarian):
        assert point is not None and point.terms == {"x": "x1", "y": "y0"}


ONE_ISSUE = """
id: four-deals
title: Four candidate deals
issues:
  - {id: deal, kind: discrete, name: Deal, options: [a, b, c, d]}
organizations:
  - id: x
    name: X
    preferences:
      reservation_value: 0
      weights: {deal: 1}
      values: {deal: {scores: {a: 1.0, b: 0.9, c: 0.55, d: 0.2}}}
  - id: y
    name: Y
    preferences:
      reservation_value: 0
      weights: {deal: 1}
      values: {deal: {scores: {a: 0.2, b: 0.45, c: 0.75, d: 0.8}}}
"""


def test_each_bargaining_solution_follows_its_own_formula() -> None:
    analysis = SpaceAnalysis(parse_scenario(ONE_ISSUE))
    # Nash products: a .2, b .405, c .4125, d .16                      → c
    # KS, ideal (1, .8): min(u_x/1, u_y/.8) = .25, .5625, .55, .2      → b
    # Egalitarian, min gain: .2, .45, .55, .2                          → c
    # Utilitarian, sums: 1.2, 1.35, 1.3, 1.0                           → b
    chosen = {p.name: p.terms["deal"] for p in analysis.special_points()}
    assert chosen == {"Nash": "c", "Kalai–Smorodinsky": "b", "egalitarian": "c",
                      "utilitarian": "b"}


def test_no_zopa_names_who_blocks_it() -> None:
    text = TWO_BY_TWO.replace("reservation_value: 0.1\n      weights: {x: 0.7",
                              "reservation_value: 0.95\n      weights: {x: 0.7")
    analysis = SpaceAnalysis(parse_scenario(text))
    assert analysis.zopa_size == 0
    assert analysis.nash is None
    assert "b" in analysis.blockers()


def brute_force_frontier(points: np.ndarray) -> np.ndarray:
    n = len(points)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        for j in range(n):
            if np.all(points[j] >= points[i]) and np.any(points[j] > points[i]):
                mask[i] = False
                break
    return mask


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 4).flatmap(lambda m: arrays(
    np.float64, st.tuples(st.integers(1, 40), st.just(m)),
    elements=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]))))
def test_frontier_matches_brute_force(points: np.ndarray) -> None:
    np.testing.assert_array_equal(pareto_mask(points), brute_force_frontier(points))


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["platform-app-vendor", "rd-joint-venture", "species-reintroduction"]))
def test_nash_point_is_rational_and_pareto_optimal(name: str) -> None:
    analysis = SpaceAnalysis(load_scenario(name))
    assert analysis.nash is not None
    assert analysis.nash.outcome in set(analysis.frontier.tolist())
    utilities = np.array(list(analysis.nash.utilities.values()))
    assert np.all(utilities >= analysis.reservation)
    assert analysis.efficiency(analysis.nash.outcome)[1] is None  # nothing dominates it


def test_frontier_points_are_not_dominated_by_any_feasible_outcome() -> None:
    analysis = SpaceAnalysis(load_scenario("rd-joint-venture"))
    feasible = analysis.full_utilities[analysis.feasible_full]
    for point in analysis.frontier_utilities:
        dominated = np.all(feasible >= point, axis=1) & np.any(feasible > point, axis=1)
        assert not dominated.any()


def test_the_efficiency_table_agrees_with_the_definition(shipped_name: str) -> None:
    analysis = SpaceAnalysis(load_scenario(shipped_name))
    front = analysis.frontier_utilities
    rng = np.random.default_rng(0)
    for outcome in rng.choice(analysis.space.size, size=40, replace=False):
        distance, better = analysis.efficiency(int(outcome))
        point = analysis.full_utilities[outcome]
        assert distance == pytest.approx(np.sqrt(((front - point) ** 2).sum(axis=1)).min())
        dominates = np.all(front >= point - 1e-12, axis=1) & np.any(front > point + 1e-12,
                                                                     axis=1)
        assert (better is None) == (not dominates.any())
        if better is not None:
            gains = analysis.full_utilities[better] - point
            assert np.all(gains >= -1e-12) and np.any(gains > 1e-12)
            row = analysis._efficiency_of(np.array([outcome]))
            assert (float(row[0][0]), int(row[1][0])) == (distance, better)


def test_shapley_values_of_the_glove_game() -> None:
    # One left glove (a), two right gloves (b, c); a pair is worth 60.
    game = {frozenset("ab"): 60.0, frozenset("ac"): 60.0, frozenset("abc"): 60.0}
    values = shapley_values(["a", "b", "c"], game)
    assert values == pytest.approx({"a": 40.0, "b": 10.0, "c": 10.0})


def test_shapley_values_are_efficient_and_symmetric() -> None:
    game = {frozenset("a"): 10, frozenset("b"): 10, frozenset("ab"): 50, frozenset("c"): 5,
            frozenset("ac"): 20, frozenset("bc"): 20, frozenset("abc"): 90}
    values = shapley_values(["a", "b", "c"], {k: float(v) for k, v in game.items()})
    assert sum(values.values()) == pytest.approx(90)
    assert values["a"] == pytest.approx(values["b"])


def test_beyond_the_exact_limit_the_analysis_samples_and_says_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import negotiation.analysis as analysis_module

    scenario = load_scenario("rd-joint-venture")
    exact = SpaceAnalysis(scenario)
    assert exact.exact and exact.nash is not None
    best_exact = exact.best_nash_product
    monkeypatch.setattr(analysis_module, "EXACT_LIMIT", 1000)
    monkeypatch.setattr(analysis_module, "SAMPLE_SIZE", 600)
    sampled = SpaceAnalysis(scenario)
    assert not sampled.exact
    assert "sample of 600 of 1,344 outcomes" in sampled.method
    assert len(set(sampled.outcomes.tolist())) == 600
    assert sampled.nash is not None
    # A sampled optimum is a real outcome and can only be as good as the exact one.
    assert sampled.nash.outcome in set(sampled.outcomes.tolist())
    assert sampled.best_nash_product <= best_exact + 1e-12
    assert set(sampled.frontier.tolist()) <= set(sampled.outcomes.tolist())
