"""Shared fixtures: a tiny scenario whose utilities can be computed by hand."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from negotiation.model import Scenario
from negotiation.plugins import clear_command_line_plugins, register_plugin
from negotiation.scenario import parse_scenario, shipped_scenarios
from tests.cli_speed import build_each_app_once

# pytest-xdist's workers inherit COLUMNS=80, and a rich Console fixes its width from COLUMNS
# when it is made (at import): drop it so the CLI sizes itself per call, as in a serial run.
os.environ.pop("COLUMNS", None)

REPO = Path(__file__).resolve().parent.parent

# Property tests draw the same examples on every run, so a test run (CI's included) either
# passes or fails the same way each time; a failure is a finding, never luck.  To search
# for new counterexamples: HYPOTHESIS_PROFILE=explore .venv/bin/pytest (random draws,
# and 1000 examples where a test does not set its own count).  Neither profile times the
# examples (hypothesis' default deadline is 200 ms) nor fails a strategy for drawing slowly
# (health check too_slow): on a loaded CI machine one paused example would fail a passing
# test ("Unreliable test timings"), so the outcome would depend on the load, not the code.
# Speed is measured by benchmarks/, never by wall time here.
settings.register_profile("repeatable", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

build_each_app_once()

TINY_YAML = """
id: tiny
title: A two-party, three-issue scenario small enough to check by hand
issues:
  - {id: colour, kind: discrete, name: Colour, options: [red, blue]}
  - {id: price, kind: numeric, name: Price, min: 0, max: 10, step: 5}
  - {id: pot, kind: split, name: Pot, parties: [a, b], step: 50}
organizations:
  - id: a
    name: Alpha
    preferences:
      reservation_value: 0.2
      weights: {colour: 0.5, price: 0.3, pot: 0.2}
      values:
        colour: {scores: {red: 1.0, blue: 0.25}}
        price: {prefer: high}
        pot: {prefer: high}
  - id: b
    name: Beta
    preferences:
      reservation_value: 0.3
      weights: {colour: 0.2, price: 0.4, pot: 0.4}
      values:
        colour: {scores: {red: 0.0, blue: 1.0}}
        price: {points: [[0, 1.0], [5, 0.8], [10, 0.0]]}
        pot: {prefer: high}
      red_lines:
        - {issue: pot, party: b, op: ">=", value: 50, reason: Half at least.}
"""


@pytest.fixture
def tiny() -> Scenario:
    return parse_scenario(TINY_YAML, "tiny.yaml")


@pytest.fixture(params=[p.stem for p in shipped_scenarios()])
def shipped_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def plugin() -> Iterator[Callable[[str], list[str]]]:
    """Register an extension as ``--plugin SPEC`` would for one command; forgotten after
    the test."""
    yield register_plugin
    clear_command_line_plugins()
