"""``--json``: one documented JSON object per command on stdout (docs/json-output.md).

The shapes are built here, from the same data the tables print, so that scripts and
notebooks need not parse tables.  With ``--json`` stdout holds only the JSON; progress and
human text go to stderr or are not printed.  An error still exits with its usual code and,
besides the message on stderr, prints ``{"error": {"message": …, "exit_code": …}}``.
Fields may be added; none is renamed or removed without a new major version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from negotiation.analysis import Point, SpaceAnalysis
    from negotiation.engine import RunResult
    from negotiation.events import Outcome
    from negotiation.lifecycle import SignOffs

#: The ``--json`` option every command that has one declares as its ``as_json`` parameter
#: (the name :func:`negotiation.cli.common.friendly_errors` looks for).
JsonFlag = Annotated[bool, typer.Option(
    "--json", help="Print one JSON object on stdout instead of tables (shape: "
                   "docs/json-output.md); errors keep their exit code.")]


#: What JSON may carry raw but a terminal would obey: C1 controls and bidi overrides (the
#: C0 ones, ESC among them, json.dumps always escapes).
_TERMINAL_CONTROLS = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def emit(data: Mapping[str, Any]) -> None:
    """Print ``data`` as the command's one JSON object (UTF-8, keys in a stable order).
    Text from files is written as is, except that characters a terminal would act on are
    ``\\uXXXX`` escapes: the same JSON to a parser, inert on a screen."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=_plain)
    typer.echo(_TERMINAL_CONTROLS.sub(lambda found: f"\\u{ord(found.group()):04x}", text))


def _plain(value: Any) -> Any:
    """numpy scalars and paths, as JSON numbers and strings."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def error_object(message: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "exit_code": code}}


# --- analyze ---------------------------------------------------------------------------


def analysis_json(analysis: SpaceAnalysis) -> dict[str, Any]:
    """``analyze --json`` (issue #19): counts, reservation values and the four bargaining
    solutions, each ``null`` when there is no zone of possible agreement."""
    scenario = analysis.scenario
    return {
        "scenario": scenario.id,
        "parties": list(analysis.parties),
        "outcomes": int(analysis.space.size),
        "exact": analysis.exact,
        "analysed": len(analysis.outcomes),
        "feasible": int(analysis.feasible.sum()),
        "zopa": analysis.zopa_size,
        "pareto": len(analysis.frontier),
        "reservation": dict(zip(analysis.parties, map(float, analysis.reservation),
                                strict=True)),
        "justified": analysis.zopa_size > 0,
        "blockers": analysis.blockers() if analysis.zopa_size == 0 else {},
        "nash": _point(analysis, analysis.nash),
        "kalai_smorodinsky": _point(analysis, analysis.kalai_smorodinsky),
        "egalitarian": _point(analysis, analysis.egalitarian),
        "utilitarian": _point(analysis, analysis.utilitarian),
    }


def _point(analysis: SpaceAnalysis, point: Point | None) -> dict[str, Any] | None:
    if point is None:
        return None
    utilities = analysis.utilities_of(point.outcome)
    return {"outcome": point.outcome, "terms": point.terms,
            "utilities": dict(zip(analysis.parties, map(float, utilities), strict=True))}


# --- runs and transcripts --------------------------------------------------------------


def outcome_json(outcome: Outcome | None) -> dict[str, Any] | None:
    """How a run ended, as its outcome event records it (``null``: no outcome yet)."""
    if outcome is None:
        return None
    agreement = outcome.agreement
    return {
        "status": outcome.status,
        "reason": outcome.reason,
        "rounds": outcome.rounds,
        "agreement": None if agreement is None else {
            "round": agreement.round, "proposer": agreement.proposer,
            "parties": agreement.parties, "terms": agreement.terms},
        "utilities": outcome.utilities,
        "reservation_values": outcome.reservation_values,
        "verdict": None if outcome.verdict is None else outcome.verdict.level,
        "findings": [] if outcome.verdict is None else outcome.verdict.findings,
        "fairness": outcome.fairness,
        "zopa": outcome.zopa,
    }


def signoffs_json(signed: SignOffs) -> dict[str, Any]:
    return {
        "decision": None if signed.decision is None else signed.decision.value,
        "attributable": signed.attributable,
        "required": signed.required,
        "missing": signed.missing(),
        "signatures": [{"seq": s.seq, "decision": s.decision, "org": s.org,
                        "signer": s.signer, "fingerprint": s.fingerprint,
                        "comment": s.comment, "at": s.at} for s in signed.signatures],
        "problems": signed.problems,
    }


def run_json(result: RunResult, *, scenario_id: str, seed: int) -> dict[str, Any]:
    """``run --json`` and ``resume --json``: the transcript written and how the run ended
    (``failure``: why an agent's failure ended it, the run then exits 3)."""
    path = result.path
    return {
        "transcript": None if path is None else str(path),
        "run_id": None if path is None else path.stem,
        "scenario": scenario_id,
        "seed": seed,
        "agents": dict(result.agents),
        "status": result.status,
        "events": len(result.transcript.events),
        "head": result.transcript.head_hash,
        "outcome": outcome_json(result.transcript.outcome),
        "failure": result.failure,
    }


def verified_json(path: Path, state: str, reason: str, *, events: int = 0,
                  head: str | None = None, finished: bool = False,
                  problems: Sequence[str] = (), signoffs: SignOffs | None = None
                  ) -> dict[str, Any]:
    """One transcript as ``verify --json`` reports it; ``state`` is ``ok``, ``tampered``,
    ``interrupted``, ``failed`` (chain intact, a signature or the head does not check out)
    or ``skipped`` (not a transcript)."""
    return {"path": str(path), "ok": state == "ok", "state": state, "reason": reason,
            "events": events, "head": head, "finished": finished,
            "problems": list(problems),
            "signoffs": None if signoffs is None else signoffs_json(signoffs)}
