"""GENIUS import and export: GENIUS's semantics, exact round trips, clear refusals, safe XML."""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as StdElementTree
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from negotiation.analysis import SpaceAnalysis
from negotiation.cli import app
from negotiation.genius import ExportRefused, GeniusError, export_scenario, import_genius
from negotiation.genius.exporter import write_export
from negotiation.model import Scenario
from negotiation.scenario import parse_scenario
from negotiation.utility import OutcomeSpace, utility_functions

DATA = Path(__file__).parent / "data" / "genius"
CATERING, OFFICE = DATA / "catering", DATA / "office"
NEGOTIATE = Path(sys.executable).with_name("negotiate")
ENV = {"NO_COLOR": "1", "COLUMNS": "200"}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=ENV)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def utility(scenario: Scenario, org: str, **terms: Any) -> float:
    return utility_functions(scenario)[org](terms)


# --- import: GENIUS's semantics, computed by hand ---------------------------------------------


def test_import_normalises_weights_and_discrete_evaluations_by_hand() -> None:
    scenario, _ = import_genius(CATERING)
    host = scenario.organization("host").preferences
    assert host.weights == {"menu": 0.5, "guests": 0.25, "price_per_head": 0.25}  # 2:1:1
    assert host.values["menu"].scores == {"vegan": 0.5, "fish": 1.0, "meat": 0.25}  # /8
    caterer = scenario.organization("caterer").preferences
    assert caterer.values["menu"].scores == pytest.approx(
        {"vegan": 1 / 6, "fish": 0.5, "meat": 1.0})


def test_import_reads_reservation_value_and_discount_with_genius_defaults() -> None:
    scenario, _ = import_genius(CATERING)
    assert scenario.organization("host").preferences.reservation_value == 0.3
    assert scenario.organization("host").preferences.discount == 0.8
    # caterer.xml has neither element: reservation 0, no discounting
    assert scenario.organization("caterer").preferences.reservation_value == 0.0
    assert scenario.organization("caterer").preferences.discount == 1.0


def test_integer_and_real_issues_become_numeric_issues_on_their_grid() -> None:
    scenario, _ = import_genius(CATERING)
    space = OutcomeSpace.of(scenario)
    guests, price = space.values[1], space.values[2]
    assert list(guests) == list(range(50, 61))  # every integer of the range
    assert list(price) == list(range(10, 31))  # 20 equal steps of the real range


def test_linear_evaluators_follow_genius_formulas_clipped_to_0_1_by_hand() -> None:
    scenario, _ = import_genius(CATERING)
    # host: 0.5·1 + 0.25·(0.1·(55−50)) + 0.25·(1.5 − 0.05·20) = 0.5 + 0.125 + 0.125
    assert utility(scenario, "host", menu="fish", guests=55, price_per_head=20) == \
        pytest.approx(0.75, abs=1e-12)
    # caterer: 0.2·0.5 + 0.3·(−0.5 + 0.2·5) + 0.5·(−0.5 + 0.05·20) = 0.1 + 0.15 + 0.25
    assert utility(scenario, "caterer", menu="fish", guests=55, price_per_head=20) == \
        pytest.approx(0.5, abs=1e-12)
    # clipped: caterer's guests line is −0.5 at 50 (→ 0) and 1.5 at 60 (→ 1)
    assert utility(scenario, "caterer", menu="vegan", guests=50, price_per_head=10) == \
        pytest.approx(0.2 / 6, abs=1e-12)
    assert utility(scenario, "caterer", menu="meat", guests=60, price_per_head=30) == \
        pytest.approx(1.0, abs=1e-12)
    assert utility(scenario, "caterer", menu="meat", guests=53, price_per_head=30) == \
        pytest.approx(0.2 + 0.3 * 0.1 + 0.5, abs=1e-12)


def test_organisation_ids_come_from_profile_file_names_and_profiles_are_neutral() -> None:
    scenario, _ = import_genius(OFFICE)
    assert scenario.party_ids == ["office_alice", "office_bob", "office_carol"]
    for org in scenario.organizations:
        assert "Imported from the GENIUS profile" in org.mission
    assert [issue.id for issue in scenario.issues] == ["desk", "chair"]


# --- analysis of an imported domain = brute force over GENIUS's formulas ---------------------


def genius_utilities(folder: Path) -> tuple[list[str], list[list[Any]], dict[str, Any]]:
    """Every bid of a GENIUS folder and each profile's utility of it, straight from the
    XML with GENIUS's formulas (written here independently of negotiation.genius)."""
    roots = {p: StdElementTree.parse(p).getroot() for p in sorted(folder.glob("*.xml"))}
    domain = next(r for r in roots.values() if r.find(".//weight") is None)
    grids: list[list[Any]] = []
    for issue in domain.iter("issue"):
        kind = issue.get("type")
        if kind == "discrete":
            grids.append([item.get("value") for item in issue.iter("item")])
            continue
        bounds = issue.find("range")
        assert bounds is not None
        low, high = float(bounds.get("lowerbound", "")), float(bounds.get("upperbound", ""))
        grids.append([low + k * (high - low) / 20 for k in range(21)] if kind == "real"
                     else list(range(int(low), int(high) + 1)))
    bids = [list(bid) for bid in itertools.product(*grids)]
    table: dict[str, Any] = {}
    for path, root in roots.items():
        if root is domain:
            continue
        weights = {int(w.get("index", "")): float(w.get("value", "")) for w in root.iter("weight")}
        total = sum(weights.values())
        issues = list(root.iter("issue"))
        row = []
        for bid in bids:
            u = 0.0
            for issue, value in zip(issues, bid, strict=True):
                w = weights[int(issue.get("index", ""))] / total
                kind = issue.get("type")
                evaluator = issue.find("evaluator")
                if kind == "discrete":
                    evals = {i.get("value"): float(i.get("evaluation", ""))
                             for i in issue.iter("item")}
                    e = evals[value] / max(evals.values())
                elif kind == "integer":
                    assert evaluator is not None
                    e = float(evaluator.get("offset", "")) + float(evaluator.get("slope", "")) * (
                        value - float(issue.get("lowerbound", "")))
                else:
                    assert evaluator is not None
                    e = float(evaluator.get("parameter0", "")) + float(
                        evaluator.get("parameter1", "")) * value
                u += w * min(1.0, max(0.0, e))
            row.append(u)
        reservation = root.find("reservation")
        table[path.stem] = (row, 0.0 if reservation is None
                            else float(reservation.get("value", "")))
    return [str(p.stem) for p in roots if roots[p] is not domain], bids, table


@pytest.mark.parametrize("folder", [CATERING, OFFICE], ids=["catering", "office"])
def test_analysis_of_an_imported_domain_equals_brute_force_genius_formulas(folder: Path) -> None:
    scenario, _ = import_genius(folder)
    analysis = SpaceAnalysis(scenario)
    names, bids, table = genius_utilities(folder)
    assert analysis.space.size == len(bids)
    utilities = np.array([table[name][0] for name in names]).T
    reservation = np.array([table[name][1] for name in names])
    np.testing.assert_allclose(analysis.full_utilities, utilities, atol=1e-9)
    # ZOPA, Pareto frontier and the bargaining points by brute force
    rational = [k for k in range(len(bids)) if all(utilities[k] >= reservation - 1e-12)]
    assert analysis.zopa_size == len(rational)
    frontier = {k for k in range(len(bids)) if not any(
        all(utilities[j] >= utilities[k]) and any(utilities[j] > utilities[k])
        for j in range(len(bids)))}
    assert set(analysis.frontier.tolist()) == frontier
    nash = max(math.prod(utilities[k] - reservation) for k in rational)
    assert analysis.nash is not None
    assert math.prod(utilities[analysis.nash.outcome] - reservation) == pytest.approx(nash)
    welfare = max(sum(utilities[k]) for k in rational)
    assert analysis.utilitarian is not None
    assert sum(utilities[analysis.utilitarian.outcome]) == pytest.approx(welfare)


# --- export and round trips --------------------------------------------------------------------

EXPRESSIBLE = """
id: expressible
title: Everything GENIUS can express, and the corners of it
issues:
  - {id: colour, kind: discrete, name: Colour, options: [red, blue, green],
     labels: {red: Bright red}}
  - {id: price, kind: numeric, name: Price, min: 0, max: 10, step: 2.5}
  - {id: seats, kind: numeric, name: Seats, min: 1, max: 6, step: 1}
organizations:
  - id: a
    name: Alpha
    preferences:
      reservation_value: 0.2
      discount: 0.9
      weights: {colour: 0.5, price: 0.3, seats: 0.2}
      values:
        colour: {scores: {red: 0.8, blue: 0.25, green: 0.0}}
        price: {prefer: high}
        seats: {points: [[1, 0.0], [3, 0.5], [5, 1.0], [6, 1.0]]}
  - id: b
    name: Beta
    preferences:
      reservation_value: 0.3
      weights: {colour: 0.0, price: 0.6, seats: 0.4}
      values:
        colour: {scores: {red: 0.0, blue: 1.0, green: 0.5}}
        price: {points: [[0, 0.9], [10, 0.1]]}
        seats: {prefer: low}
      red_lines:
        - {issue: price, op: "<=", value: 7.5, reason: Budget.}
"""


def round_trip(scenario: Scenario, tmp_path: Path) -> Scenario:
    export = export_scenario(scenario)
    folder = tmp_path / scenario.id
    write_export(export, folder)
    imported, _ = import_genius(folder)
    return imported


def assert_same_space_and_utilities(first: Scenario, second: Scenario) -> None:
    space, again = OutcomeSpace.of(first), OutcomeSpace.of(second)
    assert [issue.id for issue in first.issues] == [issue.id for issue in second.issues]
    assert space.values == again.values
    assert first.party_ids == second.party_ids
    before, after = utility_functions(first, space), utility_functions(second, again)
    for org in first.party_ids:
        np.testing.assert_allclose(after[org].vector, before[org].vector, atol=1e-9, rtol=0)
        assert second.organization(org).preferences.reservation_value == \
            first.organization(org).preferences.reservation_value
        assert second.organization(org).preferences.discount == \
            first.organization(org).preferences.discount


def test_import_of_the_export_gives_the_same_outcome_space_and_utilities(
        tmp_path: Path) -> None:
    scenario = parse_scenario(EXPRESSIBLE, "expressible.yaml")
    assert_same_space_and_utilities(scenario, round_trip(scenario, tmp_path))


def test_a_best_outcome_below_one_is_carried_by_a_numeric_issue(tmp_path: Path) -> None:
    scenario = parse_scenario(EXPRESSIBLE, "expressible.yaml")
    assert utility_functions(scenario)["a"].vector.max() < 1  # red scores only 0.8
    imported = round_trip(scenario, tmp_path)
    assert utility_functions(imported)["a"].vector.max() == pytest.approx(
        utility_functions(scenario)["a"].vector.max(), abs=1e-12)


def test_exporting_an_imported_domain_and_importing_again_changes_nothing(
        tmp_path: Path) -> None:
    for folder in (CATERING, OFFICE):
        scenario, _ = import_genius(folder)
        assert_same_space_and_utilities(scenario, round_trip(scenario, tmp_path))


def test_export_refuses_split_issues_with_the_fix(tiny: Scenario) -> None:
    with pytest.raises(ExportRefused, match=r"issues\[2\] \(pot\): GENIUS has no split issues.*"
                                            "numeric issue"):
        export_scenario(tiny, "tiny.yaml")


def test_export_refuses_a_bent_numeric_value_function(tiny: Scenario) -> None:
    data = EXPRESSIBLE.replace("price: {points: [[0, 0.9], [10, 0.1]]}",
                               "price: {points: [[0, 1.0], [5, 0.8], [10, 0.0]]}")
    with pytest.raises(ExportRefused, match=r"organizations\.b\.preferences\.values\.price: "
                                            r"GENIUS evaluates numeric issues with one straight"):
        export_scenario(parse_scenario(data, "bent.yaml"))


def test_export_refuses_a_best_outcome_below_one_without_a_numeric_issue() -> None:
    data = """
id: low
title: Best outcome below 1
issues:
  - {id: colour, kind: discrete, name: Colour, options: [red, blue]}
organizations:
  - {id: a, name: A, preferences: {reservation_value: 0, weights: {colour: 1},
     values: {colour: {scores: {red: 0.5, blue: 0.0}}}}}
  - {id: b, name: B, preferences: {reservation_value: 0, weights: {colour: 1},
     values: {colour: {scores: {red: 0.0, blue: 1.0}}}}}
"""
    with pytest.raises(ExportRefused, match=r"organizations\.a: its best possible agreement is "
                                            r"worth 0\.5.*score the best option"):
        export_scenario(parse_scenario(data, "low.yaml"))


def test_export_command_refuses_splits_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    code, output = invoke("export", "genius", "rd-joint-venture", "--out", str(tmp_path / "g"))
    assert code == 2
    assert "rd-joint-venture: cannot export to GENIUS: issues[2] (cost_split)" in output
    assert "Traceback" not in output
    assert not (tmp_path / "g").exists() or not any((tmp_path / "g").iterdir())


def test_export_never_overwrites_files(tmp_path: Path) -> None:
    scenario_file = tmp_path / "expressible.yaml"
    scenario_file.write_text(EXPRESSIBLE)
    folder = tmp_path / "out"
    assert invoke("export", "genius", str(scenario_file), "--out", str(folder))[0] == 0
    first = (folder / "a.xml").read_text()
    code, output = invoke("export", "genius", str(scenario_file), "--out", str(folder))
    assert code == 2 and "already exist" in output and "choose an empty folder" in output
    assert (folder / "a.xml").read_text() == first


def test_export_says_red_lines_are_left_out(tmp_path: Path) -> None:
    scenario_file = tmp_path / "expressible.yaml"
    scenario_file.write_text(EXPRESSIBLE)
    code, output = invoke("export", "genius", str(scenario_file), "--out", str(tmp_path / "o"))
    assert code == 0
    assert "b: 1 red line(s) left out (GENIUS has no hard constraints)" in output


# --- broken folders: exit 2, naming the file, the element and the fix ---------------------------


def broken_copy(tmp_path: Path, source: Path = CATERING) -> Path:
    folder = tmp_path / source.name
    shutil.copytree(source, folder)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


BROKEN = [
    ("no domain file", lambda f: (f / "catering_domain.xml").unlink(),
     ["catering", "no domain file", "add the domain XML"]),
    ("two domain files", lambda f: shutil.copy(f / "catering_domain.xml", f / "other.xml"),
     ["2 domain files", "catering_domain.xml, other.xml", "keep one domain"]),
    ("one profile only", lambda f: (f / "host.xml").unlink(),
     ["1 profile file(s)", "two or more utility-space XML files"]),
    ("profile for another domain",
     lambda f: edit(f / "host.xml", 'name="Menu"', 'name="Dessert"'),
     ["host.xml", '<issue index="1" name="Dessert">', "belongs to another domain"]),
    ("item of another domain",
     lambda f: edit(f / "caterer.xml", 'value="Fish"', 'value="Chicken"'),
     ["caterer.xml", '<item index="2" value="Chicken">', "belongs to another domain"]),
    ("unknown issue type",
     lambda f: edit(f / "catering_domain.xml",
                    'etype="integer" type="integer" vtype="integer"',
                    'etype="date" type="date" vtype="date"'),
     ["catering_domain.xml", '<issue index="2" name="Guests">', "unknown issue type 'date'",
      "use one of discrete, integer, real"]),
    ("weight for a missing issue",
     lambda f: edit(f / "host.xml", '<weight index="3"', '<weight index="7"'),
     ["host.xml", '<weight index="7"', "the domain does not have", "fix the index"]),
    ("issue without weight",
     lambda f: edit(f / "caterer.xml", '<weight index="2" value="0.3"/>', ""),
     ["caterer.xml", "<objective>", "no <weight> for issue(s) ['Guests']", "add"]),
    ("non-numeric evaluation",
     lambda f: edit(f / "host.xml", 'evaluation="8"', 'evaluation="high"'),
     ["host.xml", '<item index="2" value="Fish">', "evaluation 'high' is not a number",
      "evaluation=\"number"]),
    ("non-numeric slope",
     lambda f: edit(f / "host.xml", 'slope="0.1"', 'slope="steep"'),
     ["host.xml", '<issue index="2" name="Guests"> <evaluator ftype="linear">',
      "slope 'steep' is not a number"]),
    ("unsupported evaluator",
     lambda f: edit(f / "host.xml", 'ftype="linear" parameter0', 'ftype="triangular" parameter0'),
     ["host.xml", "evaluator type 'triangular' is not supported", 'use ftype="linear"']),
    ("missing bounds",
     lambda f: edit(f / "catering_domain.xml", '<range lowerbound="50" upperbound="60"/>', ""),
     ["catering_domain.xml", '<issue index="2" name="Guests">', "no lowerbound",
      "give lowerbound and upperbound"]),
    ("not well-formed", lambda f: edit(f / "host.xml", "</objective>", ""),
     ["host.xml", "not well-formed XML at line", "fix the syntax there"]),
    ("discount out of range",
     lambda f: edit(f / "host.xml", '<discount_factor value="0.8"/>',
                    '<discount_factor value="1.5"/>'),
     ["host.xml", '<discount_factor value="1.5">', "outside [0, 1]"]),
]


@pytest.mark.parametrize(("name", "damage", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_folders_end_with_exit_2_naming_file_element_and_fix(
        tmp_path: Path, name: str, damage: Any, expected: list[str]) -> None:
    folder = broken_copy(tmp_path)
    damage(folder)
    code, output = invoke("import", "genius", str(folder))
    assert code == 2, output
    flat = " ".join(output.split())
    for fragment in expected:
        assert " ".join(fragment.split()) in flat, (fragment, output)
    assert "Traceback" not in output


def test_a_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    code, output = invoke("import", "genius", str(tmp_path / "nowhere"))
    assert code == 2 and "not a folder" in output


# --- attacks: XML must never expand entities or reach outside -----------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<utility_space><objective index="0" name="&lol9;"></objective></utility_space>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE utility_space [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<utility_space><objective index="0" name="x">
<issue index="1" name="Menu" type="discrete"><item index="1" value="&secret;" evaluation="1"/>
<item index="2" value="Fish" evaluation="1"/></issue>
<weight index="1" value="1"/></objective></utility_space>
"""


@pytest.mark.parametrize("attack", [BILLION_LAUGHS, EXTERNAL_ENTITY],
                         ids=["billion-laughs", "external-entity"])
def test_xml_entities_are_refused_never_expanded(tmp_path: Path, attack: str) -> None:
    folder = broken_copy(tmp_path)
    (folder / "host.xml").write_text(attack)
    code, output = invoke("import", "genius", str(folder))
    assert code == 2
    assert "host.xml" in output and "refused: the XML declares entities" in output
    assert "root:" not in output and "lollol" not in output
    with pytest.raises(GeniusError, match="declares entities"):
        import_genius(folder)


# --- the command end to end ----------------------------------------------------------------------


def test_import_command_writes_a_scenario_that_runs(tmp_path: Path) -> None:
    out = tmp_path / "catering.yaml"
    done = subprocess.run([str(NEGOTIATE), "import", "genius", str(CATERING), "--out", str(out)],
                          capture_output=True, text=True, env={**ENV, "PATH": ""}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "organisations caterer, host" in done.stdout
    validated = subprocess.run([str(NEGOTIATE), "scenarios", "validate", str(out)],
                               capture_output=True, text=True, timeout=120)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    code, output = invoke("import", "genius", str(CATERING), "--out", str(out))
    assert code == 2 and "already exists" in output  # never overwrites


def test_import_without_out_prints_the_yaml(tmp_path: Path) -> None:
    code, output = invoke("import", "genius", str(OFFICE))
    assert code == 0
    assert parse_scenario(output, "stdout").party_ids == ["office_alice", "office_bob",
                                                          "office_carol"]


# --- property: any scenario GENIUS can express survives the round trip ------------------------


@st.composite
def expressible_scenarios(draw: st.DrawFn) -> Scenario:
    """Two or three parties; discrete issues with any scores (best option below 1 too), and
    one numeric issue (integer or real grid) valued by a line, possibly clipped."""
    n_discrete = draw(st.integers(1, 2))
    issues: list[dict[str, Any]] = [
        {"id": f"d{k}", "kind": "discrete", "name": f"D{k}",
         "options": [f"o{j}" for j in range(draw(st.integers(2, 4)))]}
        for k in range(n_discrete)]
    low = draw(st.integers(-5, 5))
    step = draw(st.sampled_from([1, 0.5, 2.5]))
    issues.append({"id": "n", "kind": "numeric", "name": "N", "min": low,
                   "max": low + step * draw(st.integers(1, 8)), "step": step})
    score = st.floats(0, 1).map(lambda x: round(x, 3))
    organizations = []
    for p in range(draw(st.integers(2, 3))):
        raw = [draw(st.integers(0, 10)) for _ in issues]
        raw[-1] = raw[-1] or 1
        weights = {issue["id"]: w / sum(raw) for issue, w in zip(issues, raw, strict=True)}
        values: dict[str, Any] = {
            issue["id"]: {"scores": {o: draw(score) for o in issue["options"]}}
            for issue in issues[:-1]}
        a, b = draw(score), draw(score)
        low_x, high_x = issues[-1]["min"], issues[-1]["max"]
        middle = (low_x + high_x) / 2
        values["n"] = draw(st.sampled_from([
            {"prefer": "high"}, {"prefer": "low"},
            {"points": [[low_x, a], [high_x, b]]},
            {"points": [[low_x, 0.0], [middle, 0.0], [high_x, b or 1.0]]},  # clipped at 0
            {"points": [[low_x, a], [middle, 1.0], [high_x, 1.0]]}]))  # clipped at 1
        organizations.append({
            "id": f"p{p}", "name": f"P{p}",
            "preferences": {"reservation_value": draw(score), "weights": weights,
                            "values": values, "discount": draw(st.sampled_from([1.0, 0.5]))}})
    data = {"id": "drawn", "title": "Drawn", "issues": issues, "organizations": organizations}
    return parse_scenario(yaml.safe_dump(data), "drawn.yaml")


@settings(max_examples=40, deadline=None)
@given(expressible_scenarios())
def test_every_expressible_scenario_round_trips_exactly(scenario: Scenario) -> None:
    with tempfile.TemporaryDirectory() as folder:
        try:
            imported = round_trip(scenario, Path(folder))
        except ExportRefused as refused:
            # The one refusal such a scenario can meet: a best outcome below 1 that no
            # numeric issue can carry (its line is clipped at 1 inside the range).
            assert "best possible agreement is worth" in str(refused)
            assert min(f.vector.max() for f in utility_functions(scenario).values()) < 1
            return
        assert_same_space_and_utilities(scenario, imported)
