"""A run as a conversation: who said what, why, and what the referee made of it.

Pure data from transcript events, for the console (:mod:`negotiation.render_conversation`)
and the charter to render.  Texts here are as recorded (a model's or a scenario's words):
every renderer escapes them for its medium (``negotiation.safe_text``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from negotiation.events import Blocked, MediatorText, Move, Passed
from negotiation.model import Scenario
from negotiation.terms import format_value

TEXT_AUTHOR = "mediator"  # who speaks a mediator_text event (no party does)
INJECTION_CODE = "instruction_like_text"


@dataclass(frozen=True)
class Utterance:
    """One turn of the conversation.

    ``kind`` is the move (``propose``, ``accept``, ``walk_away``), ``text`` for a
    mediator's single text or ``pass`` for a turn passed because the seat stayed idle
    (``note`` then says so); ``flagged`` names the fields (``message``, ``rationale``) the
    injection check found instruction-like; ``warnings`` are the referee's warn-level
    findings; ``blocked`` is what the party was told when its move was not delivered."""

    round: int
    party: str
    kind: str
    terms: str | None = None
    message: str = ""
    rationale: str = ""
    utilities: Mapping[str, float] | None = None
    flagged: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    blocked: str | None = None
    note: str = ""


def pass_note(timeout: float) -> str:
    """What a passed turn says after the party's name: "did not answer within 30 s: passed"."""
    return f"did not answer within {timeout:g} s: passed"


def terms_line(scenario: Scenario, terms: Mapping[str, Any]) -> str:
    """The terms on one line, in the scenario's words (unescaped)."""
    return " · ".join(format_value(issue, terms[issue.id])
                      for issue in scenario.issues if issue.id in terms)


def _flagged_field(finding: Mapping[str, Any]) -> str:
    """Which text an injection finding is about (its message when the record omits it)."""
    data = finding.get("data")
    field = data.get("field") if isinstance(data, Mapping) else None
    return str(field) if field else "message"


def utterance(scenario: Scenario, event: Move | Blocked | MediatorText | Passed
              ) -> Utterance:
    """The conversation turn of one move, blocked move, passed turn or mediator text."""
    if isinstance(event, MediatorText):
        return Utterance(event.round, TEXT_AUTHOR, "text", terms_line(scenario, event.terms),
                         utilities=event.utilities)
    if isinstance(event, Passed):
        return Utterance(event.round, event.party, "pass", note=pass_note(event.timeout))
    action = event.action
    findings = event.verdict.findings if event.verdict is not None else []
    flagged = tuple(dict.fromkeys(
        _flagged_field(finding) for finding in findings
        if finding.get("code") == INJECTION_CODE))
    warnings = tuple(str(finding.get("message", "")) for finding in findings
                     if finding.get("level") == "warn")
    blocked = str(event.feedback.get("message", "")) if isinstance(event, Blocked) else None
    return Utterance(
        round=event.round, party=event.party, kind=action.kind,
        terms=terms_line(scenario, event.terms) if event.terms is not None else None,
        message=action.message or "", rationale=action.rationale,
        utilities=event.utilities, flagged=flagged, warnings=warnings, blocked=blocked)


def conversation(scenario: Scenario, events: Iterable[object]) -> list[Utterance]:
    """Every turn of a run, in order (other events are skipped)."""
    return [utterance(scenario, event) for event in events
            if isinstance(event, Move | Blocked | MediatorText | Passed)]
