"""The guardrail check registry: built-in and custom checks share one interface, the
referee and ``guardrails list`` read one registry."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from negotiation.checks import BUILTIN_CHECKS, Check, CustomCheck, catalogue, checks_for
from negotiation.guardrails import Referee
from negotiation.model import Offer, Propose, Scenario
from negotiation.plugins import PluginError
from negotiation.scenario import ScenarioError, load_scenario, scenario_from_data
from tests.test_cli import negotiate

BUILT_IN = ["accountability", "validity", "red_lines", "individual_rationality", "pareto",
            "fairness", "injection"]
EXCLUSIVITY = "no_long_exclusivity=examples.no_long_exclusivity:NoLongExclusivity"


def with_custom(use: str, options: dict[str, object] | None = None) -> dict[str, object]:
    data = load_scenario("platform-app-vendor").model_dump(mode="json")
    data["guardrails"] = {"custom": [{"use": use, "options": options or {}}]}
    return data


def test_every_built_in_check_is_registered_with_its_description_and_codes() -> None:
    assert list(BUILTIN_CHECKS) == BUILT_IN
    for check in BUILTIN_CHECKS.values():
        assert isinstance(check, Check)
        assert check.description and check.codes


def test_a_referee_runs_the_built_ins_then_the_scenarios_custom_checks(
        plugin: Callable[[str], list[str]]) -> None:
    plugin(EXCLUSIVITY)
    scenario = Scenario.model_validate(with_custom("no_long_exclusivity", {"max_months": 12}))
    referee = Referee(scenario)
    assert [check.name for check in referee.checks] == [*BUILT_IN, "no_long_exclusivity"]
    assert isinstance(referee.checks[-1], CustomCheck)


def test_findings_of_an_agreement_come_in_registry_order() -> None:
    referee = Referee(load_scenario("rd-joint-venture"))
    verdict, _ = referee.check_agreement(referee.space.terms(0), "voltaic", "because")
    order = [check.name for check in checks_for(referee.policy)]
    seen = list(dict.fromkeys(f.check for f in verdict.findings))
    assert seen == [name for name in order if name in seen]
    assert {"accountability", "validity", "red_lines", "individual_rationality", "pareto",
            "fairness"} <= set(seen)


def test_invalid_terms_are_judged_only_by_checks_that_need_no_outcome() -> None:
    referee = Referee(load_scenario("rd-joint-venture"))
    verdict, outcome = referee.check_proposal(
        "voltaic", Propose(offer=Offer(terms={"ip_ownership": "nobody"}), rationale=" "))
    assert outcome is None
    assert [f.code for f in verdict.findings] == ["missing_rationale", "invalid_terms"]


def test_a_scenario_cannot_name_a_built_in_check_as_custom() -> None:
    with pytest.raises(ScenarioError) as raised:
        scenario_from_data(with_custom("pareto"), "test")
    assert "'pareto' is a built-in check" in str(raised.value)
    assert "guardrails.pareto" in str(raised.value)


def test_a_plugin_cannot_take_a_built_in_checks_name() -> None:
    done = negotiate("--plugin", "fairness=examples.no_long_exclusivity:NoLongExclusivity",
                     "guardrails", "list")
    assert done.returncode == 2
    assert "'fairness' is a built-in name" in done.stderr


def test_guardrails_list_reads_the_registry_including_plugins() -> None:
    done = negotiate("--plugin", EXCLUSIVITY, "guardrails", "list")
    assert done.returncode == 0, done.stderr
    for name in [*BUILT_IN, "no_long_exclusivity"]:
        assert name in done.stdout
    assert "examples.no_long_exclusivity:NoLongExclusivity" in done.stdout


def test_the_catalogue_lists_custom_checks_after_the_built_ins(
        plugin: Callable[[str], list[str]]) -> None:
    plugin(EXCLUSIVITY)
    names = [entry.name for entry in catalogue()]
    assert names[:len(BUILT_IN)] == BUILT_IN
    assert "no_long_exclusivity" in names[len(BUILT_IN):]


def test_a_registered_check_that_lacks_check_is_refused(
        plugin: Callable[[str], list[str]]) -> None:
    with pytest.raises(PluginError, match="does not fit the interface"):
        plugin("notacheck=examples.tough_negotiator:ToughNegotiator")
        Referee(Scenario.model_validate(with_custom("notacheck")))


def test_each_run_has_its_own_referee_and_custom_checks_their_own_instances(
        plugin: Callable[[str], list[str]]) -> None:
    from negotiation.analysis import SpaceAnalysis
    from negotiation.session import Negotiation

    plain = load_scenario("platform-app-vendor")
    analysis = SpaceAnalysis(plain)
    first, second = (Negotiation(plain, analysis=analysis) for _ in range(2))
    # Its own referee, over the shared analysis (whose tables it reads).
    assert first.referee is not second.referee
    assert first.referee.analysis is second.referee.analysis is analysis
    plugin(EXCLUSIVITY)
    custom = Scenario.model_validate(with_custom("no_long_exclusivity", {"max_months": 12}))
    analysis = SpaceAnalysis(custom)
    first, second = (Negotiation(custom, analysis=analysis) for _ in range(2))
    # A custom check is the scenario's own code and may keep state: one instance per run.
    assert first.referee is not second.referee
    assert first.referee.checks[-1] is not second.referee.checks[-1]
