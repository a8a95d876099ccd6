"""A ``points`` value function: linear between its points, flat beyond them (documented
in docs/tutorial-scenario.md and the JSON Schema)."""

from __future__ import annotations

import json

import pytest

from negotiation.scenario import parse_scenario
from negotiation.utility import utility_functions
from tests.test_scenarios import REPO

PILOT = """
id: pilot
title: A pilot longer or shorter than the points cover
issues:
  - {id: months, kind: numeric, name: Pilot length, min: 3, max: 36, step: 3}
organizations:
  - id: a
    name: A
    preferences:
      reservation_value: 0
      weights: {months: 1}
      values: {months: {points: [[6, 0.3], [12, 1.0], [24, 0.6]]}}
  - id: b
    name: B
    preferences:
      reservation_value: 0
      weights: {months: 1}
      values: {months: {prefer: low}}
"""


@pytest.mark.parametrize(("months", "score"), [
    (3, 0.3),    # below the first point: flat at its score
    (6, 0.3), (9, 0.65), (12, 1.0), (18, 0.8), (24, 0.6),
    (30, 0.6), (36, 0.6),  # above the last point: flat at its score
])
def test_points_are_linear_between_and_flat_beyond(months: int, score: float) -> None:
    utility = utility_functions(parse_scenario(PILOT))["a"]
    assert utility({"months": months}) == pytest.approx(score)


def test_the_flat_ends_are_documented() -> None:
    tutorial = (REPO / "docs" / "tutorial-scenario.md").read_text()
    assert "outside their range the score stays flat" in " ".join(tutorial.split())
    schema = json.loads((REPO / "scenarios" / "scenario.schema.json").read_text())
    described = json.dumps(schema["$defs"]["ValueFunction"])
    assert "flat" in described
