"""Discounting (GENIUS-style u · d^t): the referee, the outcome, the fairness report and
what agents are shown all use the discounted utility at the moment of agreement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from agents.base import History, View
from agents.llm import build_messages, evaluate_terms
from negotiation.analysis import SpaceAnalysis
from negotiation.cli import app
from negotiation.engine import run_scenario
from negotiation.guardrails import Referee
from negotiation.model import LLMSettings, Scenario
from negotiation.scenario import parse_scenario, scenario_digest
from negotiation.transcript import verify
from negotiation.utility import discount_factor
from protocols import get_protocol
from tests.conftest import TINY_YAML

CATERING = Path(__file__).parent / "data" / "genius" / "catering"


def with_discount(text: str, org: int, discount: float, reservation: float | None = None
                  ) -> Scenario:
    data: dict[str, Any] = yaml.safe_load(text)
    preferences = data["organizations"][org]["preferences"]
    preferences["discount"] = discount
    if reservation is not None:
        preferences["reservation_value"] = reservation
    return parse_scenario(yaml.safe_dump(data), "discounted.yaml")


@given(st.floats(0.01, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_discount_factor_is_d_to_the_t_and_falls_with_time(d: float, t1: float, t2: float
                                                          ) -> None:
    early, late = sorted((t1, t2))
    assert discount_factor(d, early) == pytest.approx(d ** early)
    assert discount_factor(d, early) >= discount_factor(d, late)
    assert discount_factor(d, 0.0) == 1.0 and discount_factor(1.0, late) == 1.0
    assert discount_factor(d, 7.0) == pytest.approx(d)  # time is clipped to the deadline


def test_the_referee_judges_individual_rationality_on_the_discounted_utility(
        tiny: Scenario) -> None:
    scenario = with_discount(TINY_YAML, 0, 0.5, reservation=0.5)
    terms = {"colour": "red", "price": 5, "pot": {"a": 50, "b": 50}}
    referee = Referee(scenario)
    utility = SpaceAnalysis(scenario).functions["a"](terms)
    assert utility == pytest.approx(0.5 + 0.15 + 0.1)  # 0.75 ≥ 0.5 undiscounted
    verdict, report = referee.check_agreement(terms, "b", "fine", time=0.0)
    assert not verdict.blocked, verdict.summary()
    verdict, report = referee.check_agreement(terms, "b", "fine", time=1.0)  # 0.75 · 0.5
    assert verdict.blocked
    finding = next(f for f in verdict.findings if f.code == "below_reservation")
    assert "Alpha would get 0.375 (discounted at the moment of agreement)" in finding.message
    assert report["utilities"]["a"] == pytest.approx(0.375)
    assert report["discount"]["undiscounted_utilities"]["a"] == pytest.approx(0.75)
    assert report["discount"]["factors"] == {"a": 0.5, "b": 1.0}
    assert "discounted: u × d^t at the moment of agreement" in report["discount"]["note"]


def test_without_discounting_reports_and_digests_are_as_before(tiny: Scenario) -> None:
    terms = {"colour": "red", "price": 5, "pot": {"a": 50, "b": 50}}
    _, report = Referee(tiny).check_agreement(terms, "b", "fine", time=0.9)
    assert "discount" not in report
    assert "discount" not in json.dumps(tiny.model_dump(mode="json"))
    same = with_discount(TINY_YAML, 0, 1.0)
    assert scenario_digest(same) == scenario_digest(tiny)


def test_a_discounted_run_records_discounted_utilities_and_says_so(tmp_path: Path) -> None:
    from negotiation.genius import import_genius

    scenario, _ = import_genius(CATERING)  # host discounts with 0.8
    result = anyio.run(lambda: run_scenario(scenario, seed=1, out_dir=tmp_path))
    assert result.status == "agreement" and result.path is not None
    outcome = result.transcript.events[-1]
    discount = outcome["fairness"]["discount"]
    accepted = next(e for e in reversed(result.transcript.events) if e["type"] == "move")
    assert accepted["action"]["kind"] == "accept"
    t = discount["time"]
    n_parties = len(scenario.party_ids)
    assert t == pytest.approx((accepted["round"] + [*result.transcript.events[0]["parties"]]
                               .index(accepted["party"]) / n_parties) / scenario.protocol.rounds,
                              abs=1e-6)
    host, caterer = discount["undiscounted_utilities"]["host"], outcome["utilities"]["caterer"]
    assert outcome["utilities"]["host"] == pytest.approx(host * 0.8 ** t, abs=1e-6)
    assert caterer == discount["undiscounted_utilities"]["caterer"]  # caterer does not discount
    assert verify(result.path).ok
    shown = CliRunner().invoke(app, ["report", str(result.path)],
                               env={"NO_COLOR": "1", "COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "Discounted: utilities, gains, the Nash product" in shown.output


def view_of(scenario: Scenario, party: str, round_: int) -> View:
    analysis = SpaceAnalysis(scenario)
    protocol = get_protocol(scenario.protocol.name)
    state = protocol.start(scenario.party_ids, 10)
    state = type(state)(**{**{f: getattr(state, f) for f in state.__dataclass_fields__},
                           "round": round_})
    return View(party=party, scenario=scenario.public(),
                preferences=scenario.organization(party).preferences, space=analysis.space,
                utility=analysis.functions[party], state=state, history=History([]),
                legal=protocol.legal_actions(state, party))


def test_agents_are_shown_their_discounted_utility(tiny: Scenario) -> None:
    scenario = with_discount(TINY_YAML, 0, 0.5)
    view = view_of(scenario, "a", 5)
    assert view.discount_factor == pytest.approx(0.5 ** 0.5)
    terms = {"colour": "red", "price": 10, "pot": {"a": 50, "b": 50}}
    scored = evaluate_terms(view, terms)
    assert scored["discounted_utility_if_agreed_now"] == pytest.approx(
        scored["utility"] * 0.5 ** 0.5, abs=1e-4)
    prompt = build_messages(view, LLMSettings(model="m"))[1]["content"]
    assert "your_discount_factor" in prompt and "reservation value is not discounted" in prompt
    plain_view = view_of(tiny, "a", 5)
    assert plain_view.discount_factor == 1.0
    assert "discount" not in build_messages(plain_view, LLMSettings(model="m"))[1]["content"]
    assert "discounted_utility_if_agreed_now" not in evaluate_terms(plain_view, terms)


@pytest.mark.parametrize("strategy", ["boulware", "conceder", "tit_for_tat", "hardliner",
                                      "random"])
@pytest.mark.parametrize(("discount", "reservation"), [(0.05, 0.55), (0.2, 0.6), (0.5, 0.7)])
def test_rule_based_strategies_never_agree_below_their_discounted_reservation(
        strategy: str, discount: float, reservation: float) -> None:
    from negotiation.genius import import_folder
    from negotiation.scenario import scenario_from_data

    data = import_folder(CATERING)
    data["organizations"][1]["preferences"].update(discount=discount,
                                                   reservation_value=reservation)
    scenario = scenario_from_data(data)
    result = anyio.run(lambda: run_scenario(scenario, seed=1,
                                            agents={"host": strategy, "caterer": strategy}))
    assert "referee blocked" not in result.reason, result.reason
    if result.status == "agreement":
        host = result.utilities["host"]  # discounted at the moment of agreement
        assert host >= reservation - 1e-9
    else:
        assert result.reason == "host walked away"
