"""Where an agreement stands, derived from its transcript alone, and human sign-off.

    proposed → checked → accepted by all → pending sign-off → ratified | rejected

A run without agreement ends ``no agreement`` (with its reason); an interrupted one
``aborted``; a transcript whose hash chain fails is ``TAMPERED`` whatever it says.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from negotiation.errors import RefusedError
from negotiation.transcript import TranscriptError, TranscriptWriter, verify


class Status(StrEnum):
    IN_PROGRESS = "in progress"
    ABORTED = "aborted"
    NO_AGREEMENT = "no agreement"
    PENDING = "pending sign-off"
    RATIFIED = "ratified"
    REJECTED = "rejected"
    EVALUATED = "evaluated"
    TAMPERED = "TAMPERED"


class SignOffError(RefusedError):
    """A transcript that cannot be signed; nothing was written."""


@dataclass(frozen=True)
class Stage:
    """One step of the lifecycle as the transcript records it."""

    name: str
    seq: int
    detail: str


def status_of(events: list[dict[str, Any]]) -> Status:
    """The lifecycle status of a verified transcript's events."""
    types = [e["type"] for e in events]
    if "signoff" in types:
        decision = next(e for e in reversed(events) if e["type"] == "signoff")["decision"]
        return Status.RATIFIED if decision == "approve" else Status.REJECTED
    if "evaluation" in types:  # a campaign's evaluation stage: nothing to sign
        return Status.EVALUATED
    if "outcome" in types:
        outcome = next(e for e in events if e["type"] == "outcome")
        return Status.PENDING if outcome["status"] == "agreement" else Status.NO_AGREEMENT
    if types and types[-1] == "aborted":
        return Status.ABORTED
    return Status.IN_PROGRESS


def stages(events: list[dict[str, Any]]) -> list[Stage]:
    """The lifecycle steps reached, each with the event that shows it."""
    result: list[Stage] = []
    outcome = next((e for e in events if e["type"] == "outcome"), None)
    proposals = [e for e in events if e["type"] == "move" and e["action"]["kind"] == "propose"]
    if outcome is not None and "accountability" in outcome:
        terms = (outcome.get("agreement") or outcome.get("blocked_agreement") or {})["terms"]
        final = next(p for p in reversed(proposals) if p["action"]["offer"]["terms"] == terms)
        result.append(Stage("proposed", final["seq"], f"by {final['party']} in round "
                                                      f"{final['round'] + 1}"))
        result.append(Stage("checked", final["seq"], f"referee: {final['verdict']['level']} "
                                                     "on the proposal"))
        result.append(Stage("accepted by all", outcome["seq"], outcome["reason"]))
        if outcome["status"] == "agreement":
            result.append(Stage("pending sign-off", outcome["seq"],
                                f"referee: {outcome['verdict']['level']} on the agreement"))
        else:
            result.append(Stage("no agreement", outcome["seq"], outcome["reason"]))
    elif outcome is not None:
        result.append(Stage("no agreement", outcome["seq"], outcome["reason"]))
    for event in events:
        if event["type"] == "signoff":
            name = "ratified" if event["decision"] == "approve" else "rejected"
            result.append(Stage(name, event["seq"], f"by {event['reviewer']}: "
                                                    f"{event['comment'] or 'no comment'}"))
        elif event["type"] == "aborted":
            result.append(Stage("aborted", event["seq"], event["reason"]))
    return result


def transcript_status(path: Path) -> tuple[Status, list[dict[str, Any]]]:
    """Status of a transcript file: TAMPERED when its chain fails."""
    result = verify(path)
    if not result.ok:
        return Status.TAMPERED, result.events
    return status_of(result.events), result.events


def sign_off(path: Path, *, approve: bool, reviewer: str, comment: str = ""
             ) -> dict[str, Any]:
    """Append the reviewer's decision as a hash-chained ``signoff`` event.

    Refuses, writing nothing, when the transcript is tampered, has no agreement, or is
    already decided.
    """
    reviewer = reviewer.strip()
    if not reviewer:
        raise SignOffError("a sign-off needs the reviewer's name (--reviewer NAME)")
    try:
        result = verify(path)
    except TranscriptError as error:
        raise SignOffError(str(error)) from None
    if not result.ok:
        raise SignOffError(f"{path} is tampered or damaged ({result.reason}); it cannot be "
                           "signed. Re-run the negotiation.")
    status = status_of(result.events)
    if status in {Status.RATIFIED, Status.REJECTED}:
        raise SignOffError(f"{path} is already {status.value}; a decision cannot be changed. "
                           "Re-run the negotiation to decide again.")
    if status is not Status.PENDING:
        raise SignOffError(f"{path} has no agreement to sign (status: {status.value}).")
    outcome = next(e for e in result.events if e["type"] == "outcome")
    decision: Literal["approve", "reject"] = "approve" if approve else "reject"
    writer = TranscriptWriter.append_to(path)
    try:
        return writer.append("signoff", {
            "decision": decision,
            "status": Status.RATIFIED.value if approve else Status.REJECTED.value,
            "reviewer": reviewer,
            "comment": comment.strip(),
            "agreement_event": {"seq": outcome["seq"], "hash": outcome["hash"]},
        })
    finally:
        writer.close()
