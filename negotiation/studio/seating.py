"""What each person in the studio may see: a seat's projection and the observer's, built
from the transcript's events and the scenario — never the raw events themselves.

A transcript holds every organisation's confidential brief (in its header), every party's
utility of every proposal, and the referee's findings.  A seat sees only its own
organisation's brief, the public profiles, the delivered moves (terms and rationales) with
*its own* utility computed here, the referee's feedback on *its own* blocked proposals and,
at the end, its own utility and gain with the fairness measures that name no party.  The
observer sees the public conversation and the referee's verdicts, no utilities at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from negotiation.checks.builtin import red_line_text
from negotiation.conversation import pass_note
from negotiation.events import EventType
from negotiation.model import Issue, Preferences, Scenario, SplitIssue, TermValue
from negotiation.safe_text import plain
from negotiation.session import analysis_of
from negotiation.terms import describe_terms, format_value
from negotiation.utility import InvalidOfferError, UtilityFunction, violates

#: Fairness measures a seat may see: none of them names a party or its numbers.
SEAT_FAIRNESS = ("nash_ratio", "ks_distance", "pareto_distance", "pareto_dominated", "method")
#: Checks of the agreement verdict whose messages name no party's private numbers.
SEAT_FINDINGS = frozenset({"fairness", "validity"})


def text(value: object) -> str:
    """Text from a scenario, an agent or a transcript, safe to place in JSON for the page
    (which shows it as text, never as markup)."""
    return plain(value)


@dataclass
class Table:
    """A rehearsal's scenario with the parts every projection needs, computed once."""

    scenario: Scenario

    @cached_property
    def issues(self) -> dict[str, Issue]:
        return {issue.id: issue for issue in self.scenario.issues}

    @cached_property
    def names(self) -> dict[str, str]:
        return {org.id: text(org.name) for org in self.scenario.organizations}

    def preferences(self, party: str) -> Preferences:
        return self.scenario.organization(party).preferences

    def utility(self, party: str) -> UtilityFunction:
        """The engine's own utility function of ``party``, shared with the run (and with
        every rehearsal of the same scenario)."""
        return analysis_of(self.scenario).functions[party]

    def describe(self, terms: Mapping[str, Any]) -> list[dict[str, str]]:
        return [{"issue": text(issue.name), "value": text(format_value(issue, terms[issue.id]))}
                for issue in self.scenario.issues if issue.id in terms]

    def summary(self, terms: Mapping[str, TermValue]) -> str:
        return text(describe_terms(self.scenario.issues, terms))


def evaluate(table: Table, party: str, terms: Mapping[str, TermValue]) -> dict[str, Any]:
    """A draft offer as its author sees it: the engine's utility, and the warnings a person
    gets before proposing (below their reservation value, across their own red line)."""
    preferences = table.preferences(party)
    try:
        utility = table.utility(party)(terms)
    except (InvalidOfferError, KeyError, TypeError, ValueError) as error:
        return {"valid": False, "problem": text(error)}
    crossed = [text(red_line_text(line)) for line in preferences.red_lines
               if line.issue in terms and violates(line, terms)]
    return {"valid": True, "utility": round(utility, 6),
            "reservation_value": preferences.reservation_value,
            "below_reservation": utility < preferences.reservation_value,
            "red_lines": crossed}


def brief(table: Table, party: str) -> dict[str, Any]:
    """A seat's own confidential brief, for its own page only."""
    preferences = table.preferences(party)
    rows = []
    for issue in table.scenario.issues:
        function = preferences.values.get(issue.id)
        if function is None:
            wanted = "—"
        elif function.scores is not None:
            wanted = ", ".join(f"{format_value(issue, option)} {score:g}" for option, score in
                               sorted(function.scores.items(), key=lambda item: -item[1]))
        elif function.points is not None:
            unit = "%" if isinstance(issue, SplitIssue) else f" {getattr(issue, 'unit', '')}"
            wanted = " · ".join(f"{x:g}{unit.rstrip()}→{u:g}" for x, u in function.points)
        else:
            wanted = f"the {'higher' if function.prefer == 'high' else 'lower'} the better"
        rows.append({"issue": text(issue.name), "weight": preferences.weights.get(issue.id, 0),
                     "wanted": text(wanted)})
    return {"rows": rows, "reservation_value": preferences.reservation_value,
            "batna": text(preferences.batna),
            "red_lines": [text(red_line_text(line)) + (f" — {text(line.reason)}"
                                                       if line.reason else "")
                          for line in preferences.red_lines]}


def controls(table: Table) -> list[dict[str, Any]]:
    """One control per issue for the offer builder (public: the issues' own definitions)."""
    built: list[dict[str, Any]] = []
    for issue in table.scenario.issues:
        entry: dict[str, Any] = {"id": issue.id, "name": text(issue.name), "kind": issue.kind}
        if isinstance(issue, SplitIssue):
            entry.update(parties=[{"id": p, "name": table.names.get(p, p)}
                                  for p in issue.parties], step=issue.step)
        elif issue.kind == "numeric":
            entry.update(min=issue.min, max=issue.max, step=issue.step,
                         unit=text(issue.unit))
        else:
            entry["options"] = [{"value": option, "label": text(format_value(issue, option))}
                                for option in issue.options]
        built.append(entry)
    return built


#: What every page says of a run rehearsed although no outcome meets every reservation
#: value (the recorded reasons quote those values, so they stay in the transcript).
UNJUSTIFIED = ("Partnership not justified: no outcome meets every organisation's "
               "reservation value (the set-up warned of it); the rehearsal was run anyway.")


def zopa_note(outcome: Mapping[str, Any]) -> str | None:
    """:data:`UNJUSTIFIED` when the outcome records that there was no ZOPA."""
    verdict = outcome.get("zopa")
    return UNJUSTIFIED if isinstance(verdict, Mapping) and not verdict.get("justified") \
        else None


#: Finding codes whose messages quote only public facts (the issues, the terms, the
#: public contributions, the policy's thresholds).  Any other finding is told without its
#: message, which may quote a party's private numbers or a red line and its reason.
PUBLIC_CODES = frozenset({"accountable", "unknown_proposer", "missing_rationale",
                          "valid_terms", "invalid_terms", "share_for_departed",
                          "red_lines_kept", "rational", "pareto_efficient", "nash_ratio",
                          "ks_distance", "share_deviation", "share_proportional",
                          "instruction_like_text"})
#: What is said instead, per code (``{name}``: the organisation the finding is about).
PRIVATE_SAYS = {
    "red_line_crossed": "crosses a red line of {name}",
    "below_reservation": "leaves {name} below its reservation value",
    "pareto_dominated": "dominated: another outcome is better for someone and worse for "
                        "no one",
    "pareto_near": "dominated, but within the policy's distance of the frontier",
    "egalitarian_gain": "the worst-off party's gain over its reservation value",
}


def public_message(table: Table, finding: Mapping[str, Any]) -> str:
    """A referee finding's message as anyone but the referee may read it: no party's
    private numbers, red lines or reasons (those stay in the transcript)."""
    code = finding.get("code", "")
    if code in PUBLIC_CODES:
        return text(finding.get("message", ""))
    data = finding.get("data") or {}
    party = data.get("party") or data.get("org") or ""
    name = table.names.get(str(party), "an organisation")
    said = PRIVATE_SAYS.get(code, f"{finding.get('check', 'check')}: {code}")
    return text(said.format(name=name)) + f" ({finding.get('level', '')})"


_TURNS = (EventType.MOVE, EventType.BLOCKED, EventType.PASSED)


def _turns(events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in events if e["type"] in _TURNS]


def passed_line(table: Table, event: Mapping[str, Any], seat: str | None = None
                ) -> dict[str, Any]:
    """A turn passed because the seat stayed idle, as everyone sees it (it is public);
    addressed as "You" on the page of the ``seat`` that passed."""
    name = table.names.get(event["party"], text(event["party"]))
    who = "You" if event["party"] == seat else name
    return {"kind": "pass", "round": event["round"] + 1, "party": event["party"],
            "name": name, "blocked": False, "verdict": "", "findings": [],
            "rationale": text(f"{who} {pass_note(float(event['timeout']))}")}


def current_round(events: Sequence[Mapping[str, Any]], pending: int | None) -> int:
    """The round under way (1-based): the pending turn's, else the last turn's."""
    if pending is not None:
        return pending + 1
    return max((e["round"] + 1 for e in _turns(events)), default=1)


def seat_view(table: Table, party: str, events: Sequence[Mapping[str, Any]],
              legal: Sequence[str] | None, round_: int) -> dict[str, Any]:
    """Everything the seat of ``party`` is sent after a change: ``legal`` is its legal
    moves when it is its turn (else ``None``), ``round_`` the round under way."""
    utility = table.utility(party)
    reservation = table.preferences(party).reservation_value
    history: list[dict[str, Any]] = []
    standing: dict[str, Any] | None = None
    for event in _turns(events):
        if event["type"] == EventType.PASSED:
            history.append(passed_line(table, event, party))
            continue
        mine = event["party"] == party
        blocked = event["type"] == EventType.BLOCKED
        if blocked and not mine:
            continue  # never delivered: the others never see it
        action = event["action"]
        entry: dict[str, Any] = {"round": event["round"] + 1, "party": event["party"],
                                 "name": table.names.get(event["party"], event["party"]),
                                 "kind": action["kind"], "blocked": blocked,
                                 "rationale": text(action.get("rationale", ""))}
        offer = action.get("offer")
        if offer is not None:
            terms = offer["terms"]
            entry["terms"] = terms
            entry["summary"] = table.summary(terms)
            entry["utility"] = round(utility(terms), 6)
            if not blocked:
                standing = {**entry}
        if blocked:
            entry["feedback"] = text(event.get("feedback", {}).get("message", ""))
        history.append(entry)
    state: dict[str, Any] = {
        "party": party, "history": history, "reservation_value": reservation,
        "standing": standing, "your_turn": legal is not None, "legal": sorted(legal or []),
        "round": round_,
        "rounds": _rounds(events), "outcome": None,
    }
    outcome = _last(events, EventType.OUTCOME)
    if outcome is not None:
        state["outcome"] = _seat_outcome(table, party, outcome)
    return state


def _rounds(events: Sequence[Mapping[str, Any]]) -> int:
    header = events[0] if events else {}
    return int(header.get("protocol", {}).get("rounds", 0))


def _last(events: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((e for e in reversed(events) if e["type"] == kind), None)


def _seat_outcome(table: Table, party: str, outcome: Mapping[str, Any]) -> dict[str, Any]:
    # The referee's reasons for blocking an agreement may quote another party's numbers.
    reason = "the referee blocked the agreement" if outcome.get("blocked_agreement") \
        else text(outcome["reason"])
    seen: dict[str, Any] = {"status": outcome["status"], "reason": reason,
                            "rounds": outcome["rounds"], "zopa": zopa_note(outcome)}
    agreement = outcome.get("agreement")
    if agreement is not None:
        terms = agreement["terms"]
        mine = table.utility(party)(terms)
        seen.update(terms=table.describe(terms), utility=round(mine, 6),
                    gain=round(mine - table.preferences(party).reservation_value, 6))
        fairness = outcome.get("fairness") or {}
        seen["fairness"] = {key: fairness[key] for key in SEAT_FAIRNESS if key in fairness}
        verdict = outcome.get("verdict") or {}
        seen["verdict"] = verdict.get("level", "")
        seen["findings"] = [{"check": f["check"], "level": f["level"],
                             "message": public_message(table, f)}
                            for f in verdict.get("findings", [])
                            if f.get("check") in SEAT_FINDINGS]
    return seen


def observer_view(table: Table, events: Sequence[Mapping[str, Any]],
                  waiting_for: str | None) -> dict[str, Any]:
    """The public conversation, rationales and the referee's verdicts; no utilities."""
    lines: list[dict[str, Any]] = []
    for event in events:
        kind = event["type"]
        if kind in (EventType.MOVE, EventType.BLOCKED):
            action = event["action"]
            verdict = event.get("verdict") or {}
            line = {"kind": "blocked" if kind == EventType.BLOCKED else action["kind"],
                    "round": event["round"] + 1, "party": event["party"],
                    "name": table.names.get(event["party"], event["party"]),
                    "rationale": text(action.get("rationale", "")),
                    "verdict": verdict.get("level", ""),
                    "findings": [public_message(table, f)
                                 for f in verdict.get("findings", [])
                                 if f.get("level") != "pass"]}
            offer = action.get("offer")
            if offer is not None:
                line["summary"] = table.summary(offer["terms"])
            if kind == EventType.BLOCKED:  # the proposer's feedback quotes red lines
                line["feedback"] = "blocked by the referee: never delivered"
            lines.append(line)
        elif kind == EventType.PASSED:
            lines.append(passed_line(table, event))
        elif kind == EventType.MEDIATOR_TEXT:
            lines.append({"kind": "mediator_text", "round": event["round"] + 1,
                          "party": "mediator", "name": "Mediator", "rationale": "",
                          "summary": table.summary(event["terms"]), "verdict": "",
                          "findings": []})
        elif kind in (EventType.ERROR, EventType.ABORTED, EventType.RESUMED):
            lines.append({"kind": kind, "round": event.get("round", -1) + 1,
                          "party": event.get("party", ""), "name": "",
                          "rationale": text(event.get("error") or event.get("reason", "")),
                          "verdict": "", "findings": []})
    outcome = _last(events, EventType.OUTCOME)
    seen: dict[str, Any] | None = None
    if outcome is not None:
        reason = "the referee blocked the agreement" if outcome.get("blocked_agreement") \
            else text(outcome["reason"])
        seen = {"status": outcome["status"], "reason": reason, "zopa": zopa_note(outcome)}
        agreement = outcome.get("agreement")
        if agreement is not None:
            seen["terms"] = table.describe(agreement["terms"])
        verdict = outcome.get("verdict") or {}
        seen["verdict"] = verdict.get("level", "")
        seen["findings"] = [{"check": f["check"], "level": f["level"],
                             "message": public_message(table, f)}
                            for f in verdict.get("findings", [])]
    signoffs = [{"decision": e["decision"], "status": e.get("status", ""),
                 "who": text(e.get("signer") or e.get("reviewer") or ""),
                 "org": e.get("org") or "", "comment": text(e.get("comment", ""))}
                for e in events if e["type"] == EventType.SIGNOFF]
    return {"lines": lines, "outcome": seen, "signoffs": signoffs,
            "waiting_for": waiting_for, "rounds": _rounds(events)}
