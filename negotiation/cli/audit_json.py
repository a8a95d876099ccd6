"""``--json`` for the audit commands: ``verify``, ``report`` and ``transcripts``.

The same checks as the tables in :mod:`negotiation.cli.audit`, gathered into the objects
that docs/json-output.md describes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from negotiation.cli.audit import (
    CAMPAIGN_MANIFEST,
    audit_problems,
    checked,
    damage_reason,
    finished_run,
    interrupted,
    is_campaign,
    looks_like_transcript,
    rounds_of,
    transcript_files,
)
from negotiation.cli.common import UsageError
from negotiation.cli.output import outcome_json, signoffs_json, verified_json

if TYPE_CHECKING:
    from negotiation.signing import Expected
    from negotiation.transcript import Verification


def verify_object(target: Path, signatories: list[Path] | None, head: str | None
                  ) -> dict[str, Any]:
    """``verify --json``: ``{"path", "kind", "ok", "problems", "transcripts": [...]}`` for
    a transcript, a folder of runs or a campaign folder alike."""
    from negotiation.signing import read_expected

    if target.is_dir() and is_campaign(target):
        from negotiation.campaign import verify_campaign

        problems = verify_campaign(target)
        return {"path": str(target), "kind": "campaign", "ok": not problems,
                "problems": problems, "transcripts": []}
    if target.is_dir():
        paths = transcript_files(target)
        if not paths:
            raise UsageError(f"{target} holds no transcripts (.jsonl) and is not a campaign "
                             f"folder (no {CAMPAIGN_MANIFEST})")
        results = [_one(path, None, None, skip_strangers=True) for path in paths]
        return {"path": str(target), "kind": "folder",
                "ok": all(r["ok"] or r["state"] == "skipped" for r in results),
                "problems": [], "transcripts": results}
    expected = read_expected(signatories) if signatories else None
    if head is not None and not re.fullmatch(r"[0-9a-f]{64}", head):
        raise UsageError(f"--head {head!r} is not a chain head: give the full 64-character "
                         "hash as it was printed")
    result = _one(target, expected, head, skip_strangers=False, show_signoffs=True)
    return {"path": str(target), "kind": "transcript", "ok": result["ok"], "problems": [],
            "transcripts": [result]}


def _one(path: Path, expected: Expected | None, head: str | None, *, skip_strangers: bool,
         show_signoffs: bool = False) -> dict[str, Any]:
    from negotiation.lifecycle import sign_offs
    from negotiation.transcript import TranscriptError

    try:
        result = checked(path)
    except TranscriptError as error:
        if not skip_strangers:
            raise
        return verified_json(path, "skipped", str(error))
    if not result.ok or result.transcript is None:
        state = "interrupted" if interrupted(path, result) else "tampered"
        return verified_json(path, state, damage_reason(path, result),
                             events=_good_lines(result))
    events = result.transcript
    problems = audit_problems(events, expected, head)
    signed = None
    if show_signoffs and (events.signoffs or expected is not None):
        try:
            signed = sign_offs(events, expected)
        except TranscriptError:
            signed = None  # already among the problems
    return verified_json(path, "failed" if problems else "ok",
                         problems[0] if problems else "", events=len(events),
                         head=result.head_hash, finished=events.finished, problems=problems,
                         signoffs=signed)


def _good_lines(result: Verification) -> int:
    return max((result.bad_line or 1) - 1, 0)


def report_object(path: Path) -> dict[str, Any]:
    """``report --json``: the run's scenario, parties, moves and how it ended."""
    from negotiation.events import Blocked
    from negotiation.lifecycle import sign_offs

    events, header, scenario, outcome = finished_run(path)
    moves = events.turns
    return {
        "transcript": str(path),
        "run_id": path.stem,
        "scenario": {"id": scenario.id, "title": scenario.title,
                     "parties": scenario.party_ids},
        "seed": header.seed,
        "rounds": rounds_of(header),
        "agents": header.agents,
        "moves": len(moves),
        "blocked": sum(isinstance(event, Blocked) for event in moves),
        "outcome": outcome_json(outcome),
        "signoffs": signoffs_json(sign_offs(events)) if outcome.agreed else None,
    }


def report_plot(path: Path, plot: Path) -> tuple[Path, Path]:
    """``report --plot`` beside ``--json``: the offers over time, drawn to ``plot``, and the
    utility of each offer by round beside it."""
    from negotiation.analysis import SpaceAnalysis
    from negotiation.plots import plot_run

    events, _, scenario, outcome = finished_run(path)
    return plot_run(SpaceAnalysis(scenario), events.proposals, outcome.utilities, plot,
                    outcome.agreement.round if outcome.agreement else None)


def transcripts_object(folder: Path) -> dict[str, Any]:
    """``transcripts --json``: one row per file in the folder, as the table shows it."""
    from negotiation.cli.audit import signers
    from negotiation.events import Transcript
    from negotiation.lifecycle import verified_status
    from negotiation.transcript import TranscriptError, verify

    rows: list[dict[str, Any]] = []
    for path in transcript_files(folder):
        row: dict[str, Any] = {"file": path.name, "path": str(path), "scenario": None,
                               "date": None, "parties": [], "outcome": None,
                               "status": "not a transcript", "signed": ""}
        rows.append(row)
        try:
            result = verify(path)
        except TranscriptError as error:
            row["outcome"] = str(error)
            continue
        if not result.ok and not looks_like_transcript(path):
            continue
        status = verified_status(result)
        typed = result.transcript or Transcript.of(result.events)
        header, outcome = typed.header, typed.outcome
        row.update(status=status.value, signed=signers(typed, status),
                   outcome=outcome_json(outcome))
        if header is not None:
            row.update(scenario=header.scenario_id, date=header.wall.get("at"),
                       parties=header.parties)
        if interrupted(path, result):
            row["status"] = "interrupted"
    return {"folder": str(folder), "transcripts": rows}
