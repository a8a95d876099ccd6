"""What the Pareto and fairness checks say at the edges: a hair from the frontier, a
measure exactly at its limit."""

from __future__ import annotations

import re

from negotiation.guardrails import Referee
from negotiation.scenario import parse_scenario

NEAR_FRONTIER = """
id: near-frontier
title: One outcome a hair better than another
issues:
  - {id: deal, kind: discrete, name: Deal, options: [a, b]}
organizations:
  - id: x
    name: X
    preferences:
      reservation_value: 0
      weights: {deal: 1}
      values: {deal: {scores: {a: 0.5, b: 0.5001}}}
  - id: y
    name: Y
    preferences:
      reservation_value: 0
      weights: {deal: 1}
      values: {deal: {scores: {a: 0.5, b: 0.5}}}
"""


def pareto_finding(text: str, deal: str) -> tuple[str, str, str]:
    referee = Referee(parse_scenario(text))
    _, report = referee.check_agreement({"deal": deal}, "x", "because")
    verdict, _ = referee.check_agreement({"deal": deal}, "x", "because")
    [finding] = [f for f in verdict.findings if f.check == "pareto"]
    assert report["pareto_dominated"]
    return finding.level, finding.code, finding.message


def test_a_dominated_agreement_a_hair_from_the_frontier_says_what_is_better() -> None:
    level, code, message = pareto_finding(NEAR_FRONTIER, "a")
    assert (level, code) == ("pass", "pareto_near")
    assert re.search(r"0\.000(?!\d)", message) is None  # never a rounded-away zero
    assert "dominated" in message and "gives x +0.0001 and no one less" in message
    assert "distance 0.0001" in message


def test_a_dominated_agreement_beyond_the_limit_names_the_gain() -> None:
    text = NEAR_FRONTIER + "guardrails:\n  pareto: {agreements: warn, max_distance: 0}\n"
    level, code, message = pareto_finding(text, "a")
    assert (level, code) == ("warn", "pareto_dominated")
    assert re.search(r"0\.000(?!\d)", message) is None  # never a rounded-away zero
    assert "gives x +0.0001" in message and "distance to the frontier 0.0001 > 0)" in message


THIRD_OF_THE_BEST = """
id: third-of-the-best
title: A Nash ratio of exactly one third
issues:
  - {id: deal, kind: discrete, name: Deal, options: [a, b]}
organizations:
  - id: x
    name: X
    preferences:
      reservation_value: 0
      weights: {deal: 1}
      values: {deal: {scores: {a: 0.6, b: 0.5}}}
  - id: y
    name: Y
    preferences:
      reservation_value: 0
      weights: {deal: 1}
      values: {deal: {scores: {a: 0.5, b: 0.2}}}
guardrails:
  fairness: {agreements: warn, min_nash_ratio: MINIMUM}
"""


def nash_finding(minimum: str) -> tuple[str, float]:
    # Products: a 0.30 (the best), b 0.10: b's Nash ratio is exactly 1/3.
    referee = Referee(parse_scenario(THIRD_OF_THE_BEST.replace("MINIMUM", minimum)))
    verdict, report = referee.check_agreement({"deal": "b"}, "x", "because")
    [finding] = [f for f in verdict.findings if f.code == "nash_ratio"]
    return finding.level, report["nash_ratio"]


def test_a_nash_ratio_exactly_at_the_minimum_passes() -> None:
    assert nash_finding(repr(1 / 3)) == ("pass", 0.333333)
    assert nash_finding("0.333333") == ("pass", 0.333333)


def test_a_nash_ratio_below_the_minimum_warns() -> None:
    assert nash_finding("0.334")[0] == "warn"
