"""Scenario files: shipped ones are valid; broken ones get one clear error, never a crash."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from negotiation.cli import scenario_json_schema
from negotiation.model import Scenario
from negotiation.scenario import ScenarioError, load_scenario, parse_scenario, shipped_scenarios
from tests.conftest import REPO, TINY_YAML


def test_at_least_the_four_required_scenarios_ship() -> None:
    names = {p.stem for p in shipped_scenarios()}
    assert {"platform-app-vendor", "park-redevelopment", "species-reintroduction",
            "rd-joint-venture"} <= names


def test_shipped_scenarios_are_valid(shipped_name: str) -> None:
    scenario = load_scenario(shipped_name)
    assert len(scenario.organizations) >= 2
    assert all(org.mission and org.capabilities and org.needs for org in scenario.organizations)


def test_the_committed_json_schema_is_current() -> None:
    committed = json.loads((REPO / "scenarios" / "scenario.schema.json").read_text())
    assert committed == scenario_json_schema(), "run: negotiate scenarios schema --out " \
                                                "scenarios/scenario.schema.json"


def tiny_data() -> dict[str, Any]:
    data = yaml.safe_load(TINY_YAML)
    assert isinstance(data, dict)
    return data


def broken(edit: Any) -> str:
    data = tiny_data()
    edit(data)
    return yaml.safe_dump(data)


CASES = [
    ("yaml syntax", "id: x\ntitle: [unclosed\n", "", "not valid YAML at line"),
    ("not a mapping", "- just\n- a list\n", "", "expected a mapping"),
    ("unknown field", broken(lambda d: d.update(colour="red")), "colour", "remove this field"),
    ("missing field", broken(lambda d: d.pop("title")), "title", "add this field"),
    ("weights do not sum",
     broken(lambda d: d["organizations"][0]["preferences"]["weights"].update(colour=0.9)),
     "organizations[0].preferences.weights", "rescale"),
    ("red line on unknown issue",
     broken(lambda d: d["organizations"][1]["preferences"]["red_lines"][0].update(issue="fee")),
     "organizations[1].preferences.red_lines[0].issue", "unknown issue 'fee'"),
    ("split cannot reach 100",
     broken(lambda d: d["issues"][2].update(step=30)), "issues[2].step", "divisor of 100"),
    ("duplicate organisation ids",
     broken(lambda d: d["organizations"][1].update(id="a")), "organizations[1]", "duplicate"),
    ("duplicate issue ids",
     broken(lambda d: d["issues"][1].update(id="colour")), "issues[1]", "duplicate"),
    ("unscored option",
     broken(lambda d: d["organizations"][0]["preferences"]["values"]["colour"]["scores"]
            .pop("blue")), "organizations[0].preferences.values.colour.scores", "score every"),
    ("score out of range",
     broken(lambda d: d["organizations"][0]["preferences"]["values"]["colour"]["scores"]
            .update(red=3)), "organizations[0].preferences.values.colour.scores.red",
     "less than or equal to 1"),
    ("numeric step does not divide",
     broken(lambda d: d["issues"][1].update(step=3)), "issues[1].step", "whole number"),
    ("split names a stranger",
     broken(lambda d: d["issues"][2].update(parties=["a", "zed"])), "issues[2].parties[1]",
     "not an organisation"),
    ("bad id", broken(lambda d: d.update(id="Tiny Deal")), "id", "not a valid id"),
    ("fixed term of an unknown issue", broken(lambda d: d.update(fixed={"size": 3})),
     "fixed.size", "not an issue"),
    ("fixed term outside the issue", broken(lambda d: d.update(fixed={"price": 7})),
     "fixed.price", "give one of the issue's values"),
    ("unknown issue kind", broken(lambda d: d["issues"][0].update(kind="colourful")),
     "issues[0]", "set kind to one of"),
]


@pytest.mark.parametrize("name, text, field, fix", CASES, ids=[c[0] for c in CASES])
def test_broken_scenarios_name_the_file_the_field_and_the_fix(
        name: str, text: str, field: str, fix: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "deal.yaml")
    message = str(caught.value)
    assert message.startswith("deal.yaml: invalid scenario")
    assert any(p.path == field for p in caught.value.problems) or not field, message
    assert fix in message


def test_a_missing_file_lists_the_shipped_scenarios(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"file not found.*platform-app-vendor"):
        load_scenario(tmp_path / "nope.yaml")


# --- fuzzing -------------------------------------------------------------------------------

def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                 st.floats(allow_nan=True), st.text(max_size=12),
                 st.lists(st.integers(-3, 3), max_size=3),
                 st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@st.composite
def mutated_scenarios(draw: st.DrawFn) -> str:
    data = tiny_data()
    for _ in range(draw(st.integers(1, 3))):
        targets = paths(data)
        path = draw(st.sampled_from(targets))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(JUNK)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(JUNK)
        else:
            parent.append(copy.deepcopy(draw(JUNK)))
    return yaml.safe_dump(data, allow_unicode=True)


def assert_valid_or_clear_error(text: str) -> None:
    try:
        scenario = parse_scenario(text, "fuzz.yaml")
    except ScenarioError as error:
        assert str(error).startswith("fuzz.yaml: invalid scenario")
        assert error.problems and all(p.message for p in error.problems)
    else:
        assert isinstance(scenario, Scenario)


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_scenarios())
def test_fuzzed_scenarios_load_or_fail_clearly(text: str) -> None:
    assert_valid_or_clear_error(text)


@settings(max_examples=200, deadline=2000)
@given(st.text(max_size=200))
def test_arbitrary_text_loads_or_fails_clearly(text: str) -> None:
    assert_valid_or_clear_error(text)
