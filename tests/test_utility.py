"""Outcome spaces and linear-additive utilities, checked against hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from negotiation.model import Scenario
from negotiation.scenario import load_scenario, outcome_space_size
from negotiation.utility import (
    InvalidOfferError,
    OutcomeSpace,
    issue_values,
    red_line_mask,
    utility_functions,
    violates,
)


def test_tiny_space_enumerates_every_combination(tiny: Scenario) -> None:
    space = OutcomeSpace.of(tiny)
    assert space.size == 2 * 3 * 3
    assert space.values[2] == ({"a": 0, "b": 100}, {"a": 50, "b": 50}, {"a": 100, "b": 0})
    all_terms = [space.terms(i) for i in range(space.size)]
    assert len({repr(sorted(t.items())) for t in all_terms}) == space.size


def test_fixed_terms_leave_one_value_and_keep_every_utility(tiny: Scenario) -> None:
    settled = tiny.model_copy(update={"fixed": {"price": 5.0, "pot": {"b": 50, "a": 50}}})
    space = OutcomeSpace.of(settled)
    assert space.size == 2
    assert {space.terms(i)["price"] for i in range(space.size)} == {5}
    assert all(space.terms(i)["pot"] == {"a": 50, "b": 50} for i in range(space.size))
    full, narrow = utility_functions(tiny), utility_functions(settled, space)
    for i in range(space.size):
        terms = space.terms(i)
        assert narrow["a"](terms) == pytest.approx(full["a"](terms))
    with pytest.raises(InvalidOfferError):
        space.index_of({**space.terms(0), "price": 10})
    assert outcome_space_size(settled) == space.size


def test_utilities_match_hand_computation(tiny: Scenario) -> None:
    utility = utility_functions(tiny)
    terms = {"colour": "red", "price": 5, "pot": {"a": 50, "b": 50}}
    # a: 0.5·1 + 0.3·(5/10) + 0.2·(50/100) = 0.75
    assert utility["a"](terms) == pytest.approx(0.75)
    # b: 0.2·0 + 0.4·0.8 + 0.4·0.5 = 0.52
    assert utility["b"](terms) == pytest.approx(0.52)
    terms = {"colour": "blue", "price": 10, "pot": {"a": 100, "b": 0}}
    assert utility["a"](terms) == pytest.approx(0.5 * 0.25 + 0.3 + 0.2)
    assert utility["b"](terms) == pytest.approx(0.2)


def test_vector_agrees_with_single_offer_evaluation(tiny: Scenario) -> None:
    space = OutcomeSpace.of(tiny)
    for party, fn in utility_functions(tiny, space).items():
        singles = np.array([fn(space.terms(i)) for i in range(space.size)])
        np.testing.assert_allclose(fn.vector, singles, err_msg=party)


def test_index_of_round_trips(tiny: Scenario) -> None:
    space = OutcomeSpace.of(tiny)
    for outcome in range(space.size):
        assert space.index_of(space.terms(outcome)) == outcome


@pytest.mark.parametrize(
    "terms, complaint",
    [
        ({"colour": "green", "price": 5, "pot": {"a": 50, "b": 50}}, "colour"),
        ({"colour": "red", "price": 7, "pot": {"a": 50, "b": 50}}, "price"),
        ({"colour": "red", "price": 5, "pot": {"a": 60, "b": 50}}, "pot"),
        ({"colour": "red", "price": 5}, "no value for issue 'pot'"),
        ({"colour": "red", "price": 5, "pot": {"a": 50, "b": 50}, "x": 1}, "unknown issue"),
    ],
)
def test_invalid_terms_are_named(tiny: Scenario, terms: dict, complaint: str) -> None:
    with pytest.raises(InvalidOfferError, match=complaint):
        OutcomeSpace.of(tiny).index_of(terms)


def test_split_values_sum_to_100_and_are_all_distinct() -> None:
    scenario = load_scenario("park-redevelopment")
    split = next(i for i in scenario.issues if i.kind == "split")
    values = issue_values(split)
    assert len(values) == math.comb(100 // 5 + 2, 2)
    assert all(isinstance(v, dict) and sum(v.values()) == 100 for v in values)
    assert len({tuple(sorted(v.items())) for v in values if isinstance(v, dict)}) == len(values)


def test_size_formula_matches_enumeration(shipped_name: str) -> None:
    scenario = load_scenario(shipped_name)
    assert OutcomeSpace.of(scenario).size == outcome_space_size(scenario)


def test_utilities_stay_in_unit_interval(shipped_name: str) -> None:
    scenario = load_scenario(shipped_name)
    for fn in utility_functions(scenario).values():
        assert fn.vector.min() >= 0.0
        assert fn.vector.max() <= 1.0 + 1e-12


def test_red_line_mask_matches_single_checks(tiny: Scenario) -> None:
    space = OutcomeSpace.of(tiny)
    red_lines = tiny.organization("b").preferences.red_lines
    mask = red_line_mask(space, red_lines)
    for outcome in range(space.size):
        terms = space.terms(outcome)
        assert mask[outcome] == (not any(violates(r, terms) for r in red_lines))
    assert mask.sum() == 2 * 3 * 2  # b keeps at least half the pot in 2 of 3 splits
