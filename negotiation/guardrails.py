"""The referee: deterministic checks on every proposal and every agreement.

Each check returns findings with a machine-readable ``code``, the numbers behind it and
one human sentence; the scenario's ``guardrails:`` policy decides whether a failed check
blocks, warns or is off, separately for proposals and agreements.  The referee sees every
organisation's private preferences; what it tells a blocked proposer is limited to the
constraint that was crossed (``Feedback``), never another party's utilities or
reservation value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from negotiation.analysis import BoolArray, SpaceAnalysis, shapley_values
from negotiation.model import (
    Action,
    CheckLevel,
    Propose,
    RedLine,
    Scenario,
    SplitIssue,
    TermValue,
)
from negotiation.plugins import load_check
from negotiation.terms import format_value
from negotiation.utility import InvalidOfferError, violates

Level = Literal["pass", "warn", "block"]
Subject = Literal["proposal", "agreement"]
_RANK: dict[str, int] = {"pass": 0, "off": 0, "warn": 1, "block": 2}


class Finding(BaseModel):
    """One check's result on one proposal or agreement."""

    model_config = ConfigDict(frozen=True)

    check: str
    level: Level
    code: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class Verdict(BaseModel):
    """The referee's decision: the worst level among the findings."""

    model_config = ConfigDict(frozen=True)

    subject: Subject
    level: Level
    findings: list[Finding]

    @property
    def blocked(self) -> bool:
        return self.level == "block"

    def with_findings(self, extra: list[Finding]) -> Verdict:
        return verdict_of(self.subject, [*self.findings, *extra])

    def summary(self) -> str:
        worst = [f.message for f in self.findings if f.level == self.level]
        return "; ".join(worst) if worst else "all checks passed"


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


class Feedback(BaseModel):
    """What a blocked proposer is told: why, without anyone else's private numbers."""

    model_config = ConfigDict(frozen=True)

    message: str
    codes: list[str]
    red_lines: list[RedLine] = Field(default_factory=list)


PASSED_PROPOSAL = Verdict(subject="proposal", level="pass", findings=[])

#: Phrases that address a negotiator as if they were its instructions, not its counterpart.
INSTRUCTION_PATTERNS = [
    r"\bignore\b.{0,40}\b(instructions?|brief|rules|prompt|guidelines)\b",
    r"\bdisregard\b",
    r"\b(system|developer)\s+(prompt|message|instructions?)\b",
    r"\bnew instructions?\b",
    r"\byou (must|should|have to|are required to|will) (now )?(accept|agree|sign|concede)\b",
    r"\breveal\b.{0,30}\b(brief|reservation|instructions?|prompt|red lines?)\b",
    r"\bas an ai\b",
    r"</?\s*untrusted",
]
#: All of them in one pattern: one scan per text instead of one per phrase.
INSTRUCTION_LIKE = re.compile("|".join(f"(?:{p})" for p in INSTRUCTION_PATTERNS),
                              re.IGNORECASE)
#: A word every pattern needs: texts with none of them (nearly all) skip the full scan,
#: which costs several times more than one literal scan, on every move.
INSTRUCTION_WORDS = ("ignore", "disregard", "system", "developer", "instruction", "you",
                     "reveal", "as an ai", "untrusted")
#: The regex's case-insensitive matching equates İ, ı and ſ with ASCII letters, which
#: ``str.lower`` does not (İ becomes i + U+0307): a lower-cased text holding ı, ſ or U+0307
#: gets the full scan too.
_MAY_BE_INSTRUCTION = re.compile("|".join([*map(re.escape, INSTRUCTION_WORDS),
                                           "[\u0131\u017f\u0307]"]))


def instruction_like(text: str) -> re.Match[str] | None:
    """The first phrase of ``text`` that reads like instructions to a negotiator."""
    if _MAY_BE_INSTRUCTION.search(text.lower()) is None:
        return None
    return INSTRUCTION_LIKE.search(text)


def _level(failed: bool, setting: CheckLevel) -> Level:
    if not failed or setting == "off":
        return "pass"
    return setting


def verdict_of(subject: Subject, findings: list[Finding]) -> Verdict:
    level: Level = max((f.level for f in findings), key=_RANK.__getitem__, default="pass")
    return Verdict(subject=subject, level=level, findings=findings)


class Referee:
    """Checks proposals and agreements for one scenario under its guardrail policy."""

    def __init__(self, scenario: Scenario, analysis: SpaceAnalysis | None = None) -> None:
        self.scenario = scenario
        self.policy = scenario.guardrails
        self.analysis = analysis or SpaceAnalysis(scenario)
        self.space = self.analysis.space
        self.fair_shares = self._fair_shares()
        self._parties = frozenset(scenario.party_ids)
        self.custom = [(spec, load_check(spec.use, spec.options))
                       for spec in self.policy.custom]
        self.organizations = self.analysis.organizations
        self._subsets: dict[tuple[str, ...], Referee] = {}

    def for_members(self, members: Sequence[str]) -> Referee:
        """The referee of a sub-coalition: only its members' preferences count."""
        key = tuple(members)
        if key not in self._subsets:
            self._subsets[key] = Referee(self.scenario, SpaceAnalysis(self.scenario,
                                                                      members=key))
        return self._subsets[key]

    def _departed(self, terms: dict[str, TermValue], departed: Sequence[str]
                  ) -> list[Finding]:
        """A party that left neither receives nor pays: its shares must be zero."""
        findings = []
        for issue in self.scenario.issues:
            if not isinstance(issue, SplitIssue):
                continue
            shares = terms.get(issue.id)
            for party in departed:
                if isinstance(shares, dict) and shares.get(party, 0) > 0:
                    findings.append(Finding(
                        check="validity", level="block", code="share_for_departed",
                        message=f"{party} has left, but {issue.name} gives it "
                                f"{shares[party]}%", data={"issue": issue.id, "party": party,
                                                           "share": shares[party]}))
        return findings

    # --- proposals -------------------------------------------------------------------

    def check_proposal(self, proposer: str, action: Propose, departed: Sequence[str] = ()
                       ) -> tuple[Verdict, int | None]:
        """The verdict on a proposal, and its outcome number when the terms are valid.
        With ``departed`` parties, the remaining sub-coalition's referee decides."""
        if departed:
            members = [p for p in self.scenario.party_ids if p not in departed]
            verdict, outcome = self.for_members(members).check_proposal(proposer, action)
            gone = self._departed(action.offer.terms, departed)
            return (verdict.with_findings(gone) if gone else verdict), outcome
        try:
            outcome = self.space.index_of_offer(action.offer)
        except InvalidOfferError:
            outcome = None
        if outcome is not None and self._clean(proposer, action, outcome) \
                and not self._custom(action.offer.terms, "proposal"):
            return PASSED_PROPOSAL, outcome
        findings: list[Finding] = []
        findings += self._accountability(proposer, action.rationale, "proposals")
        try:
            outcome = self.space.index_of(action.offer.terms)
        except InvalidOfferError as error:
            findings.append(Finding(check="validity", level="block", code="invalid_terms",
                                    message=f"invalid terms: {error}"))
            return verdict_of("proposal", findings), None
        terms = action.offer.terms
        findings += self._red_lines(terms, outcome, self.policy.red_lines.proposals)
        findings += self._rationality(outcome, self.policy.individual_rationality.proposals)
        if self.policy.pareto.proposals != "off":
            findings += self._pareto(outcome, self.policy.pareto.proposals)
        findings += self._shares(terms, self.policy.fairness.proposals)
        findings += self._custom(terms, "proposal")
        return verdict_of("proposal", [f for f in findings if f.level != "pass"]), outcome

    def _custom(self, terms: dict[str, TermValue], subject: Subject) -> list[Finding]:
        """Findings of the scenario's custom checks that the terms fail."""
        findings = []
        for spec, check in self.custom:
            setting = spec.proposals if subject == "proposal" else spec.agreements
            if setting == "off":
                continue
            for failure in check.check(self.scenario, terms, subject):
                findings.append(Finding(check=getattr(check, "name", spec.use),
                                        level=setting, code=failure.code,
                                        message=failure.message, data=dict(failure.data)))
        return findings

    def _clean(self, proposer: str, action: Propose, outcome: int) -> bool:
        """Fast path for the common case: a proposal no proposal check objects to."""
        if proposer not in self._parties or not action.rationale.strip():
            return False
        if self.policy.red_lines.proposals != "off" and not self.analysis.feasible_full[outcome]:
            return False
        if (self.policy.individual_rationality.proposals != "off"
                and not self._rational_full[outcome]):
            return False
        if self.policy.pareto.proposals != "off":
            return False
        if self.policy.fairness.proposals != "off" and self.fair_shares:
            limit = self.policy.fairness.max_share_deviation
            terms = action.offer.terms
            for issue_id, fair in self.fair_shares.items():
                shares = terms[issue_id]
                assert isinstance(shares, dict)
                if max(abs(shares[p] - v) for p, v in fair.items()) > limit:
                    return False
        return True

    @cached_property
    def _rational_full(self) -> BoolArray:
        utilities = self.analysis.full_utilities
        return np.asarray(np.all(utilities >= self.analysis.reservation - 1e-12, axis=1),
                          dtype=bool)

    def feedback(self, verdict: Verdict, terms: dict[str, TermValue],
                 departed: Sequence[str] = ()) -> Feedback:
        """What the proposer of a blocked proposal may learn."""
        # The constraint is what a counterpart would say ("that is a deal-breaker"); why it
        # holds (its reason) is the owner's private brief and is never passed on.
        crossed = [red_line.model_copy(update={"reason": ""})
                   for org in self.organizations if org.id not in departed
                   for red_line in org.preferences.red_lines
                   if red_line.issue in terms and self._safe_violates(red_line, terms)]
        crossed += [RedLine(issue=f.data["issue"], party=f.data["party"], op="==", value=0,
                            reason=f"{f.data['party']} has left the negotiation")
                    for f in verdict.findings if f.code == "share_for_departed"]
        sentences = []
        if any(f.code == "red_line_crossed" and f.level == "block" for f in verdict.findings):
            sentences += [f"the terms cross a red line: {_red_line_text(red_line)}"
                          for red_line in crossed]
        for finding in verdict.findings:
            if finding.level != "block" or finding.code == "red_line_crossed":
                continue
            if finding.code == "below_reservation":
                sentences.append("the terms leave another party worse off than its "
                                 "alternative to a deal")
            else:
                sentences.append(finding.message)
        return Feedback(message="Proposal blocked by the referee: " + "; ".join(sentences),
                        codes=sorted({f.code for f in verdict.findings if f.level == "block"}),
                        red_lines=crossed)

    @staticmethod
    def _safe_violates(red_line: RedLine, terms: dict[str, TermValue]) -> bool:
        try:
            return violates(red_line, terms)
        except (KeyError, TypeError):
            return False

    def check_text(self, party: str, action: Action) -> list[Finding]:
        """Flag a move whose rationale or message reads like instructions to other agents
        (prompt injection); other parties' text is data, never commands."""
        setting = self.policy.injection
        if setting == "off":
            return []
        findings = []
        for field_name in ("rationale", "message"):
            text = getattr(action, field_name) or ""
            hit = instruction_like(text) if text else None
            if hit is not None:
                findings.append(Finding(
                    check="injection", level=setting, code="instruction_like_text",
                    message=f"{party}'s {field_name} addresses the other negotiators with "
                            f"instructions (\"{hit.group(0)}\"); it is passed on only as "
                            "quoted data",
                    data={"party": party, "field": field_name, "excerpt": text[:200]}))
        return findings

    # --- agreements ------------------------------------------------------------------

    def check_agreement(self, terms: dict[str, TermValue], proposer: str, rationale: str,
                        members: Sequence[str] | None = None, departed: Sequence[str] = (),
                        composed: str | None = None) -> tuple[Verdict, dict[str, Any]]:
        """The verdict on an agreement and its full fairness report; for a sub-coalition
        (``departed`` non-empty) only its ``members`` count, and whoever left must get and
        pay nothing.  ``composed`` says how the protocol composed the terms when no party
        proposed them (a mediator's text): then nobody owes a rationale."""
        if departed:
            kept = list(members or [p for p in self.scenario.party_ids if p not in departed])
            verdict, report = self.for_members(kept).check_agreement(
                terms, proposer, rationale, composed=composed)
            gone = self._departed(terms, departed)
            report = {**report, "members": kept, "departed": list(departed)}
            return (verdict.with_findings(gone) if gone else verdict), report
        outcome = self.space.index_of(terms)
        policy = self.policy
        findings: list[Finding] = [Finding(check="validity", level="pass", code="valid_terms",
                                           message="every issue is set to an allowed value")]
        findings += self._accountability(proposer, rationale, "agreements", composed)
        findings += self._red_lines(terms, outcome, policy.red_lines.agreements)
        findings += self._rationality(outcome, policy.individual_rationality.agreements)
        distance, better = self._efficiency(outcome)
        report = self.report(outcome, efficiency=(distance, better))
        findings += self._pareto(outcome, policy.pareto.agreements, (distance, better))
        findings += self._fairness(report, policy.fairness.agreements)
        findings += self._shares(terms, policy.fairness.agreements)
        findings += self._custom(terms, "agreement")
        return verdict_of("agreement", findings), report

    def _efficiency(self, outcome: int) -> tuple[float, int | None]:
        """Distance to the Pareto frontier and a dominating outcome, if any."""
        return self.analysis.efficiency(outcome)

    def report(self, outcome: int, efficiency: tuple[float, int | None] | None = None
               ) -> dict[str, Any]:
        """Every fairness and efficiency measure of one outcome (``efficiency``: the
        result of ``_efficiency`` when the caller has it already)."""
        distance, better = efficiency or self._efficiency(outcome)
        analysis = self.analysis
        utilities = analysis.utilities_of(outcome)
        gains = utilities - analysis.reservation
        best_nash = analysis.best_nash_product
        # One point: plain floats beat numpy's per-call overhead here.
        product = math.prod(max(gain, 0.0) for gain in gains.tolist())
        ks = analysis.kalai_smorodinsky
        parties = analysis.parties
        report: dict[str, Any] = {
            "method": analysis.method,
            "utilities": {p: round(float(u), 6) for p, u in zip(parties, utilities, strict=True)},
            "gains": {p: round(float(g), 6) for p, g in zip(parties, gains, strict=True)},
            "nash_product": round(product, 9),
            "nash_ratio": round(product / best_nash, 6) if best_nash > 0 else None,
            "ks_distance": None if ks is None else round(float(np.linalg.norm(
                utilities - np.array([ks.utilities[p] for p in parties]))), 6),
            "lowest_gain": round(float(gains.min()), 6),
            "welfare": round(float(utilities.sum()), 6),
            "pareto_distance": round(distance, 6),
            "pareto_dominated": better is not None,
            "shares": self.share_report(self.space.terms(outcome)),
            "reference_points": {p.name: p.utilities for p in analysis.special_points()},
        }
        return report

    # --- checks ------------------------------------------------------------------------

    def _accountability(self, proposer: str, rationale: str,
                        which: Literal["proposals", "agreements"],
                        composed: str | None = None) -> list[Finding]:
        setting = getattr(self.policy.accountability, which)
        if composed is not None:
            return [Finding(check="accountability", level="pass", code="accountable",
                            message=composed, data={"proposer": proposer})]
        if proposer not in self.scenario.party_ids:
            return [Finding(check="accountability", level=_level(True, setting),
                            code="unknown_proposer",
                            message=f"the proposer '{proposer}' is not a party")]
        if not rationale.strip():
            return [Finding(check="accountability", level=_level(True, setting),
                            code="missing_rationale",
                            message=f"{proposer} gave no rationale for its proposal",
                            data={"proposer": proposer})]
        return [Finding(check="accountability", level="pass", code="accountable",
                        message=f"proposed by {proposer} with a rationale",
                        data={"proposer": proposer})]

    def _red_lines(self, terms: dict[str, TermValue], outcome: int,
                   setting: CheckLevel) -> list[Finding]:
        findings = []
        for org in self.organizations:
            if self.analysis.keeps_red_lines[org.id][outcome]:
                continue
            for red_line in org.preferences.red_lines:
                if violates(red_line, terms):
                    findings.append(Finding(
                        check="red_lines", level=_level(True, setting), code="red_line_crossed",
                        message=f"crosses a red line of {org.name}: "
                                f"{_red_line_text(red_line)}"
                                + (f" ({red_line.reason})" if red_line.reason else ""),
                        data={"party": org.id, **red_line.model_dump(exclude_none=True)}))
        if not findings:
            findings.append(Finding(check="red_lines", level="pass", code="red_lines_kept",
                                    message="no organisation's red line is crossed"))
        return findings

    def _rationality(self, outcome: int, setting: CheckLevel) -> list[Finding]:
        utilities = self.analysis.utilities_of(outcome)
        findings = []
        for org, utility, reservation in zip(self.organizations, utilities,
                                             self.analysis.reservation, strict=True):
            if utility < reservation - 1e-12:
                findings.append(Finding(
                    check="individual_rationality", level=_level(True, setting),
                    code="below_reservation",
                    message=f"{org.name} would get {utility:.3f}, below its reservation "
                            f"value {reservation:.3f}",
                    data={"party": org.id, "utility": round(float(utility), 6),
                          "reservation_value": float(reservation)}))
        if not findings:
            findings.append(Finding(check="individual_rationality", level="pass",
                                    code="rational", message="every party beats its "
                                                             "alternative to a deal"))
        return findings

    def _pareto(self, outcome: int, setting: CheckLevel,
                efficiency: tuple[float, int | None] | None = None) -> list[Finding]:
        distance, better = efficiency or self._efficiency(outcome)
        limit = self.policy.pareto.max_distance
        if better is None:
            return [Finding(check="pareto", level="pass", code="pareto_efficient",
                            message="no feasible outcome is better for someone and worse for "
                                    "no one", data={"distance": round(distance, 6)})]
        data = {"distance": round(distance, 6), "max_distance": limit,
                "dominating_terms": self.space.terms(better)}
        if distance <= limit:
            return [Finding(check="pareto", level="pass", code="pareto_near",
                            message=f"dominated, but within {limit} of the frontier "
                                    f"(distance {distance:.3f})", data=data)]
        return [Finding(check="pareto", level=_level(True, setting), code="pareto_dominated",
                        message=f"another feasible outcome is better for some parties and "
                                f"worse for none (distance to the frontier {distance:.3f} > "
                                f"{limit})", data=data)]

    def _fairness(self, report: dict[str, Any], setting: CheckLevel) -> list[Finding]:
        policy = self.policy.fairness
        findings = []
        ratio = report["nash_ratio"]
        if ratio is not None:
            findings.append(Finding(
                check="fairness", level=_level(ratio < policy.min_nash_ratio, setting),
                code="nash_ratio", message=f"Nash product is {ratio:.0%} of the best possible "
                                           f"(minimum {policy.min_nash_ratio:.0%})",
                data={"nash_ratio": ratio, "min_nash_ratio": policy.min_nash_ratio}))
        distance = report["ks_distance"]
        if distance is not None:
            findings.append(Finding(
                check="fairness", level=_level(distance > policy.max_ks_distance, setting),
                code="ks_distance", message=f"distance to the Kalai–Smorodinsky point is "
                                            f"{distance:.3f} (maximum {policy.max_ks_distance})",
                data={"ks_distance": distance, "max_ks_distance": policy.max_ks_distance}))
        lowest = report["lowest_gain"]
        findings.append(Finding(
            check="fairness", level=_level(lowest < policy.min_egalitarian_gain, setting),
            code="egalitarian_gain", message=f"the worst-off party gains {lowest:+.3f} over its "
                                             f"reservation value (minimum "
                                             f"{policy.min_egalitarian_gain:+.3f})",
            data={"lowest_gain": lowest, "min_egalitarian_gain": policy.min_egalitarian_gain}))
        return findings

    def _fair_shares(self) -> dict[str, dict[str, float]]:
        """Per benefit split, each party's contribution-based (or Shapley) share in %."""
        shapley: dict[str, float] | None = None
        if self.scenario.coalition_values:
            game = {frozenset(c.members): c.value for c in self.scenario.coalition_values}
            shapley = shapley_values(self.scenario.party_ids, game)
        shares = {}
        for issue in self.scenario.issues:
            if not isinstance(issue, SplitIssue) or issue.nature != "benefit":
                continue
            sharing = [p for p in issue.parties if p in self.analysis.parties]
            if shapley is not None:
                basis = {p: max(shapley.get(p, 0.0), 0.0) for p in sharing}
            else:
                basis = {p: self.scenario.organization(p).contribution.value for p in sharing}
            total = sum(basis.values())
            shares[issue.id] = {p: (100.0 * v / total if total else 100.0 / len(basis))
                                for p, v in basis.items()}
        return shares

    def share_report(self, terms: dict[str, TermValue]) -> dict[str, Any]:
        report = {}
        for issue_id, fair in self.fair_shares.items():
            actual = terms[issue_id]
            assert isinstance(actual, dict)
            report[issue_id] = {
                "basis": "shapley" if self.scenario.coalition_values else "contribution",
                "fair": {p: round(v, 2) for p, v in fair.items()},
                "actual": dict(actual),
                "deviation": round(max(abs(actual[p] - v) for p, v in fair.items()), 2),
            }
        return report

    def _shares(self, terms: dict[str, TermValue], setting: CheckLevel) -> list[Finding]:
        limit = self.policy.fairness.max_share_deviation
        findings = []
        for issue_id, entry in self.share_report(terms).items():
            issue = next(i for i in self.scenario.issues if i.id == issue_id)
            failed = entry["deviation"] > limit
            fair_text = format_value(issue, {p: round(v) for p, v in entry["fair"].items()})
            findings.append(Finding(
                check="fairness", level=_level(failed, setting),
                code="share_deviation" if failed else "share_proportional",
                message=f"{issue.name}: {format_value(issue, entry['actual'])} is "
                        f"{entry['deviation']:.0f} points from the {entry['basis']}-based "
                        f"share {fair_text} (maximum {limit:.0f})",
                data={"issue": issue_id, **entry, "max_deviation": limit}))
        return findings


_RED_LINE_VERBS = {"==": "must be", "!=": "must not be", "in": "must be one of",
                   "not_in": "must not be any of", ">=": "must be at least",
                   "<=": "must be at most", ">": "must be more than", "<": "must be less than"}


def _red_line_text(red_line: RedLine) -> str:
    """A red line in words: ``data_access must not be full_customer_data``, or for a split
    ``revenue_share: vendor's share must be at least 60``."""
    value = red_line.value
    shown = ", ".join(value) if isinstance(value, list) else f"{value:g}" \
        if isinstance(value, float) else f"{value}"
    subject = f"{red_line.issue}: {red_line.party}'s share" if red_line.party \
        else red_line.issue
    return f"{subject} {_RED_LINE_VERBS[red_line.op]} {shown}"


def provenance(moves: Sequence[tuple[int, str, dict[str, TermValue], str]],
               terms: dict[str, TermValue]) -> list[dict[str, Any]]:
    """For each agreed clause: who first put the agreed value on the table in the run of
    proposals leading to the agreement, in which round, and with what rationale.

    ``moves`` are the delivered proposals in order, as (round, proposer, terms, rationale).
    """
    table = []
    for issue_id, value in terms.items():
        origin = None
        for round_, proposer, offered, rationale in reversed(moves):
            if offered.get(issue_id) != value:
                break
            origin = (round_, proposer, rationale)
        if origin is not None:
            table.append({"issue": issue_id, "value": value, "proposer": origin[1],
                          "round": origin[0], "rationale": origin[2]})
    return table
