"""The interface of a guardrail check, built in or custom, and what a check reports.

The referee runs every check through the same three hooks of :class:`Check`: one for a
proposal, one for an agreement and one for a move's free text.  A check returns
:class:`Finding` s (a machine-readable ``code``, a level, one human sentence and the numbers
behind it); the scenario's ``guardrails:`` policy sets the level of a failed check.

A custom check implements the smaller :class:`GuardrailCheck` interface — a name and
``check(scenario, terms, subject) -> list[Failure]`` — and the registry wraps it in
:class:`CustomCheck`, which applies the levels its ``guardrails.custom`` entry sets.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from negotiation.frozen import built, quick_init
from negotiation.model import Action, CheckLevel, Scenario, TermValue
from negotiation.model import CustomCheck as CustomCheckSpec

if TYPE_CHECKING:
    from negotiation.guardrails import Referee

Level = Literal["pass", "warn", "block"]
Subject = Literal["proposal", "agreement"]


class Finding(BaseModel):
    """One check's result on one proposal or agreement."""

    model_config = ConfigDict(frozen=True)

    check: str
    level: Level
    code: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


_FINDING_FIELDS = ("check", "level", "code", "message")


def finding(*, check: str, level: Level, code: str, message: str,
            data: dict[str, Any] | None = None) -> Finding:
    """A built-in check's finding: ``Finding(...)`` of the same keywords, not validated
    again (:func:`negotiation.frozen.built`: plain texts, a ``Level`` and a new ``data``
    dict the referee has just computed).  A custom check's failures are validated."""
    if data is None:
        return built(Finding, {"check": check, "level": level, "code": code,
                               "message": message, "data": {}}, set(_FINDING_FIELDS))
    return built(Finding, {"check": check, "level": level, "code": code, "message": message,
                           "data": data})


@dataclass(frozen=True)
class Failure:
    """What a custom check reports when terms fail it; the policy decides the level."""

    code: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


class GuardrailCheck(Protocol):
    """The interface of a custom check: a name and one method."""

    name: str

    def check(self, scenario: Scenario, terms: dict[str, TermValue],
              subject: Subject) -> list[Failure]: ...


@quick_init  # built for every agreement and every proposal a check objects to
@dataclass(frozen=True, slots=True)
class Case:
    """The proposal or agreement the referee is judging."""

    subject: Subject
    proposer: str
    rationale: str
    terms: dict[str, TermValue]
    #: The outcome's number in the scenario's outcome space; ``None``: the terms are invalid.
    outcome: int | None
    #: Why the terms are invalid (``outcome`` is ``None``).
    invalid: str | None = None
    #: How the protocol composed an agreement no party proposed (a mediator's text).
    composed: str | None = None
    #: An agreement's fairness report and (distance to the frontier, a dominating outcome).
    report: dict[str, Any] | None = None
    efficiency: tuple[float, int | None] | None = None
    #: Each organisation's discount factor d^t at the moment of agreement (the referee's
    #: organisations, in order); ``None`` when nobody discounts.
    factors: tuple[float, ...] | None = None


class Check:
    """A guardrail check: a registered ``name``, the finding ``codes`` it can report and a
    hook per thing the referee judges.  A hook that does not apply returns no finding."""

    name: ClassVar[str]
    codes: ClassVar[tuple[str, ...]] = ()
    #: The key of the scenario's ``guardrails:`` block that sets this check's levels.
    policy: ClassVar[str] = ""
    #: Whether the check reads the outcome, and so is skipped for invalid terms.
    needs_valid_terms: ClassVar[bool] = True

    @property
    def description(self) -> str:
        """The first paragraph of the check's docstring, on one line."""
        return " ".join((inspect.getdoc(self) or "").split("\n\n")[0].split())

    def on_proposal(self, referee: Referee, case: Case) -> list[Finding]:
        return []

    def on_agreement(self, referee: Referee, case: Case) -> list[Finding]:
        return []

    def on_text(self, referee: Referee, party: str, action: Action) -> list[Finding]:
        return []


def level_of(failed: bool, setting: CheckLevel) -> Level:
    """The level of a check's finding under the policy's ``setting``."""
    if not failed or setting == "off":
        return "pass"
    return setting


class CustomCheck(Check):
    """A custom check (``guardrails.custom``) at the levels its scenario entry sets."""

    policy = "custom"

    def __init__(self, spec: CustomCheckSpec, check: GuardrailCheck) -> None:
        self.spec = spec
        self.check = check
        self.name = getattr(check, "name", spec.use)  # type: ignore[misc]

    @property
    def description(self) -> str:
        return (inspect.getdoc(self.check) or self.spec.use).splitlines()[0]

    def on_proposal(self, referee: Referee, case: Case) -> list[Finding]:
        return self.failures(referee.shown_scenario, case.terms, "proposal")

    def on_agreement(self, referee: Referee, case: Case) -> list[Finding]:
        return self.failures(referee.shown_scenario, case.terms, "agreement")

    def failures(self, scenario: Scenario, terms: dict[str, TermValue], subject: Subject
                 ) -> list[Finding]:
        """The check's failures on ``terms`` as findings at the scenario's level.  The check
        gets its own copy of the terms: a plugin tidying the terms it is given must not
        edit the offer it checks (read-only when the space built it, and delivered as
        checked otherwise)."""
        setting = self.spec.proposals if subject == "proposal" else self.spec.agreements
        if setting == "off":
            return []
        own = {issue: dict(value) if isinstance(value, dict) else value
               for issue, value in terms.items()}
        return [Finding(check=self.name, level=setting, code=failure.code,
                        message=failure.message, data=dict(failure.data))
                for failure in self.check.check(scenario, own, subject)]
