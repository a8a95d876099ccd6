"""The fixed part of a negotiation (its set-up, header and outcome) built without
re-validating what the engine itself has just computed records what validation gives."""

from __future__ import annotations

import itertools

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from negotiation.checks.base import Finding, finding
from negotiation.engine import run_scenario
from negotiation.guardrails import Referee, Verdict, provenance, verdict_of
from negotiation.scenario import load_scenario, scenario_from_data


@pytest.mark.parametrize("data", [None, {"distance": 0.0, "terms": {"i0": "v1"}}])
def test_a_built_in_finding_is_the_finding_validation_makes(data: dict | None) -> None:
    fields = {"check": "pareto", "level": "warn", "code": "pareto_near", "message": "near"}
    made = finding(**fields, data=data)
    validated = Finding(**fields) if data is None else Finding(**fields, data=data)
    assert made == validated
    assert made.model_fields_set == validated.model_fields_set
    assert made.model_dump(mode="json") == validated.model_dump(mode="json")
    assert made.model_dump_json() == validated.model_dump_json()
    assert repr(made) == repr(validated)
    assert made.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
    with pytest.raises(ValidationError):
        made.level = "pass"  # type: ignore[misc]  # frozen, as a validated finding is


def test_two_built_findings_without_data_do_not_share_it() -> None:
    first = finding(check="validity", level="pass", code="valid_terms", message="ok")
    second = finding(check="validity", level="pass", code="valid_terms", message="ok")
    first.data["edited"] = True
    assert second.data == {}


def test_a_verdict_of_findings_is_the_verdict_validation_makes() -> None:
    findings = [Finding(check="a", level="pass", code="x", message="m"),
                Finding(check="b", level="warn", code="y", message="n", data={"v": 1.5})]
    made = verdict_of("agreement", findings)
    validated = Verdict(subject="agreement", level="warn", findings=findings)
    assert made == validated
    assert made.model_fields_set == validated.model_fields_set
    assert made.model_dump(mode="json") == validated.model_dump(mode="json")
    findings.clear()  # the verdict keeps its own list, as validation copies it
    assert len(made.findings) == 2
    assert verdict_of("proposal", []).level == "pass"
    assert verdict_of("proposal", [*made.findings, Finding(
        check="c", level="block", code="z", message="o")]).blocked


@pytest.mark.parametrize("reservation", [None, 0.0, -0.0, 0.25])
def test_an_agreement_reports_each_party_s_rounded_utility_and_gain(reservation: float | None
                                                                    ) -> None:
    data = load_scenario("rd-joint-venture").model_dump()
    if reservation is not None:  # None: the scenario's own reservation values
        for org in data["organizations"]:
            org["preferences"]["reservation_value"] = reservation
    referee = Referee(scenario_from_data(data))
    analysis = referee.analysis
    rounded = {outcome: dict(analysis.recorded_utilities(outcome))
               for outcome in range(0, referee.space.size, 7)}
    for outcome in rounded:
        report = referee.report(outcome)
        values = analysis.full_utilities[outcome].tolist()
        reservations = analysis.reservation.tolist()
        expected = {p: round(u, 6) for p, u in zip(analysis.parties, values, strict=True)}
        gains = {p: round(u - r, 6)
                 for p, u, r in zip(analysis.parties, values, reservations, strict=True)}
        # repr: 0.0 and -0.0 are equal but written differently.
        assert repr(report["utilities"]) == repr(expected)
        assert repr(report["gains"]) == repr(gains)
        report["utilities"].clear()  # the report's own dict, not the recorded one
        assert analysis.recorded_utilities(outcome) == rounded[outcome]


def _first_offers(moves: list[tuple[int, str, dict, str]], terms: dict) -> list[tuple]:
    """Who first offered each agreed value, issue by issue (the reference)."""
    found = []
    for issue, value in terms.items():
        origin = next(((round_, proposer, rationale) for round_, proposer, offered, rationale
                       in moves if offered.get(issue) == value), None)
        if origin is not None:
            found.append((issue, origin))
    return found


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["a", "b", "c"]),
                          st.dictionaries(st.sampled_from(["x", "y", "z"]),
                                          st.integers(0, 3)),
                          st.sampled_from(["", "moves on X (1 → 2)", "opens"])),
                max_size=12),
       st.dictionaries(st.sampled_from(["x", "y", "z"]), st.integers(0, 3), min_size=1))
def test_accountability_credits_the_first_offer_of_each_agreed_value(moves: list, terms: dict
                                                                     ) -> None:
    table = provenance(iter(moves), terms, {"x": "X"})  # read once, as a run's moves are
    assert [(row["issue"], (row["round"], row["proposer"])) for row in table] == [
        (issue, origin[:2]) for issue, origin in _first_offers(moves, terms)]


@pytest.mark.parametrize(("name", "seed"), [("rd-joint-venture", 0), ("rd-joint-venture", 5),
                                           ("park-redevelopment", 1),
                                           ("species-reintroduction", 2)])
def test_a_run_credits_each_agreed_value_to_its_first_delivered_offer(name: str, seed: int
                                                                       ) -> None:
    result = anyio.run(lambda: run_scenario(load_scenario(name), seed=seed, fsync=False))
    events = result.transcript.events
    outcome = events[-1]
    assert outcome["status"] == "agreement"
    moves = [(e["round"], e["party"], e["action"]["offer"]["terms"], e["action"]["rationale"])
             for e in events if e["type"] == "move" and e["action"]["kind"] == "propose"]
    credited = [(row["issue"], (row["round"], row["proposer"]))
                for row in outcome["accountability"]]
    assert credited == [(issue, origin[:2]) for issue, origin
                        in _first_offers(moves, outcome["agreement"]["terms"])]


@pytest.mark.parametrize("levels", [levels for size in range(4)
                                    for levels in itertools.product(("pass", "warn", "block"),
                                                                    repeat=size)])
def test_a_verdict_is_at_the_worst_level_of_its_findings(levels: tuple[str, ...]) -> None:
    rank = {"pass": 0, "warn": 1, "block": 2}
    findings = [Finding(check="c", level=level, code="x", message="m") for level in levels]
    assert verdict_of("proposal", findings).level == max(levels, key=rank.__getitem__,
                                                         default="pass")
