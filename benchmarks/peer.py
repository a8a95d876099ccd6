"""The same domains expressed in NegMAS, for side-by-side measurements (optional)."""

from __future__ import annotations

from typing import Any

from negotiation.model import DiscreteIssue, Scenario


def negmas_available() -> bool:
    try:
        import negmas  # noqa: F401
    except ImportError:
        return False
    return True


def negmas_domain(scenario: Scenario) -> tuple[list[Any], list[Any]]:
    """NegMAS issues and linear-additive utility functions equal to ours (discrete issues)."""
    from negmas import make_issue
    from negmas.preferences import LinearAdditiveUtilityFunction
    from negmas.preferences.value_fun import TableFun

    issues = []
    for issue in scenario.issues:
        assert isinstance(issue, DiscreteIssue), "the peer benchmarks use discrete issues"
        issues.append(make_issue(list(issue.options), name=issue.id))
    ufuns = []
    for org in scenario.organizations:
        prefs = org.preferences
        ufuns.append(LinearAdditiveUtilityFunction(
            values=[TableFun(dict(prefs.values[i.id].scores or {})) for i in scenario.issues],
            weights=[prefs.weights[i.id] for i in scenario.issues], issues=issues,
            reserved_value=prefs.reservation_value))
    return issues, ufuns
