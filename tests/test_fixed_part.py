"""The fixed part of a negotiation (its set-up, header and outcome) built without
re-validating what the engine itself has just computed records what validation gives."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from negotiation.checks.base import Finding, finding
from negotiation.guardrails import Verdict, verdict_of


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
