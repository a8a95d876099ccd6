"""The built-in guardrail checks: accountability, validity, red lines, individual
rationality, Pareto efficiency, fairness and prompt injection.

Each reads the scenario's ``guardrails:`` policy for its level and thresholds and the
referee's precomputed analysis of the outcome space for the numbers, so a check on one
outcome is a lookup rather than a recomputation.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from negotiation.checks.base import Case, Check, Finding, finding, level_of
from negotiation.model import Action, CheckLevel, RedLine
from negotiation.terms import format_value
from negotiation.utility import violates

if TYPE_CHECKING:
    from negotiation.guardrails import Referee


class Accountability(Check):
    """A known proposer and a rationale on every proposal."""

    name = "accountability"
    policy = "accountability"
    codes = ("accountable", "unknown_proposer", "missing_rationale")
    needs_valid_terms = False

    def on_proposal(self, referee: Referee, case: Case) -> list[Finding]:
        return self._judge(referee, case, referee.policy.accountability.proposals)

    def on_agreement(self, referee: Referee, case: Case) -> list[Finding]:
        return self._judge(referee, case, referee.policy.accountability.agreements)

    def _judge(self, referee: Referee, case: Case, setting: CheckLevel) -> list[Finding]:
        proposer = case.proposer
        if case.composed is not None:  # the protocol's text: validated
            return [Finding(check=self.name, level="pass", code="accountable",
                            message=case.composed, data={"proposer": proposer})]
        if proposer not in referee.scenario.party_ids:
            return [finding(check=self.name, level=level_of(True, setting),
                            code="unknown_proposer",
                            message=f"the proposer '{proposer}' is not a party")]
        if not case.rationale.strip():
            return [finding(check=self.name, level=level_of(True, setting),
                            code="missing_rationale",
                            message=f"{proposer} gave no rationale for its proposal",
                            data={"proposer": proposer})]
        return [finding(check=self.name, level="pass", code="accountable",
                        message=f"proposed by {proposer} with a rationale",
                        data={"proposer": proposer})]


class Validity(Check):
    """Every issue set, values in domain, splits summing to 100 (always blocks)."""

    name = "validity"
    codes = ("valid_terms", "invalid_terms", "share_for_departed")
    needs_valid_terms = False

    def on_proposal(self, referee: Referee, case: Case) -> list[Finding]:
        if case.invalid is None:
            return []
        return [finding(check=self.name, level="block", code="invalid_terms",
                        message=f"invalid terms: {case.invalid}")]

    def on_agreement(self, referee: Referee, case: Case) -> list[Finding]:
        return [finding(check=self.name, level="pass", code="valid_terms",
                        message="every issue is set to an allowed value")]


class RedLines(Check):
    """Each organisation's declarative constraints."""

    name = "red_lines"
    policy = "red_lines"
    codes = ("red_line_crossed", "red_lines_kept")

    def on_proposal(self, referee: Referee, case: Case) -> list[Finding]:
        return self._judge(referee, case, referee.policy.red_lines.proposals)

    def on_agreement(self, referee: Referee, case: Case) -> list[Finding]:
        return self._judge(referee, case, referee.policy.red_lines.agreements)

    def _judge(self, referee: Referee, case: Case, setting: CheckLevel) -> list[Finding]:
        assert case.outcome is not None
        findings = []
        for org in referee.organizations:
            if referee.analysis.keeps_red_lines[org.id][case.outcome]:
                continue
            for red_line in org.preferences.red_lines:
                if violates(red_line, case.terms):
                    findings.append(finding(
                        check=self.name, level=level_of(True, setting), code="red_line_crossed",
                        message=f"crosses a red line of {org.name}: "
                                f"{red_line_text(red_line)}"
                                + (f" ({red_line.reason})" if red_line.reason else ""),
                        data={"party": org.id, **red_line.model_dump(exclude_none=True)}))
        if not findings:
            findings.append(finding(check=self.name, level="pass", code="red_lines_kept",
                                    message="no organisation's red line is crossed"))
        return findings


class IndividualRationality(Check):
    """Each party's utility ≥ its reservation."""

    name = "individual_rationality"
    policy = "individual_rationality"
    codes = ("below_reservation", "rational")

    def on_proposal(self, referee: Referee, case: Case) -> list[Finding]:
        return self._judge(referee, case, referee.policy.individual_rationality.proposals)

    def on_agreement(self, referee: Referee, case: Case) -> list[Finding]:
        return self._judge(referee, case, referee.policy.individual_rationality.agreements)

    def _judge(self, referee: Referee, case: Case, setting: CheckLevel) -> list[Finding]:
        assert case.outcome is not None
        analysis = referee.analysis
        utilities = analysis.utilities_of(case.outcome)
        discounted = ""
        if case.factors is not None:
            utilities = utilities * np.array(case.factors)
            discounted = " (discounted at the moment of agreement)"
        findings = []
        # Plain floats: the same values, compared without numpy's per-element overhead.
        for org, utility, reservation in zip(referee.organizations, utilities.tolist(),
                                             analysis.reservation.tolist(), strict=True):
            if utility < reservation - 1e-12:
                findings.append(finding(
                    check=self.name, level=level_of(True, setting),
                    code="below_reservation",
                    message=f"{org.name} would get {utility:.3f}{discounted}, below its "
                            f"reservation value {reservation:.3f}",
                    data={"party": org.id, "utility": round(float(utility), 6),
                          "reservation_value": float(reservation)}))
        if not findings:
            findings.append(finding(check=self.name, level="pass",
                                    code="rational", message="every party beats its "
                                                             "alternative to a deal"))
        return findings


class Pareto(Check):
    """Whether a feasible outcome dominates; distance to frontier."""

    name = "pareto"
    policy = "pareto"
    codes = ("pareto_efficient", "pareto_near", "pareto_dominated")

    def on_proposal(self, referee: Referee, case: Case) -> list[Finding]:
        setting = referee.policy.pareto.proposals
        if setting == "off":  # the distance to the frontier is not free: skip it
            return []
        return self._judge(referee, case, setting)

    def on_agreement(self, referee: Referee, case: Case) -> list[Finding]:
        return self._judge(referee, case, referee.policy.pareto.agreements)

    def _judge(self, referee: Referee, case: Case, setting: CheckLevel) -> list[Finding]:
        assert case.outcome is not None
        distance, better = case.efficiency or referee.analysis.efficiency(case.outcome)
        limit = referee.policy.pareto.max_distance
        if better is None:
            return [finding(check=self.name, level="pass", code="pareto_efficient",
                            message="no feasible outcome is better for someone and worse for "
                                    "no one", data={"distance": round(distance, 6)})]
        data = {"distance": round(distance, 6), "max_distance": limit,
                "dominating_terms": referee.space.terms(better)}
        # Say what the better outcome gives, with significant digits: a dominated outcome
        # can lie a hair from the frontier, and "distance 0.000" would read as efficient.
        analysis = referee.analysis
        gains = (analysis.utilities_of(better) - analysis.utilities_of(case.outcome)).tolist()
        gainer = max(range(len(gains)), key=gains.__getitem__)
        better_by = (f"another feasible outcome gives {analysis.parties[gainer]} "
                     f"{gains[gainer]:+.3g} and no one less")
        if distance <= limit:
            return [finding(check=self.name, level="pass", code="pareto_near",
                            message=f"dominated ({better_by}), but within {limit:g} of the "
                                    f"frontier (distance {distance:.3g})", data=data)]
        return [finding(check=self.name, level=level_of(True, setting),
                        code="pareto_dominated",
                        message=f"dominated: {better_by} (distance to the frontier "
                                f"{distance:.3g} > {limit:g})", data=data)]


class Fairness(Check):
    """Nash ratio, Kalai–Smorodinsky distance, egalitarian gain, contribution or Shapley
    share gap."""

    name = "fairness"
    policy = "fairness"
    codes = ("nash_ratio", "ks_distance", "egalitarian_gain", "share_deviation",
             "share_proportional")

    def on_proposal(self, referee: Referee, case: Case) -> list[Finding]:
        return self._shares(referee, case, referee.policy.fairness.proposals)

    def on_agreement(self, referee: Referee, case: Case) -> list[Finding]:
        setting = referee.policy.fairness.agreements
        assert case.report is not None
        return [*self._measures(referee, case.report, setting),
                *self._shares(referee, case, setting)]

    def _measures(self, referee: Referee, report: dict[str, Any], setting: CheckLevel
                  ) -> list[Finding]:
        policy = referee.policy.fairness
        findings = []
        # Thresholds are compared at the report's 6 decimals: a measure exactly at its
        # limit passes (ratio 1/3 is reported as 0.333333, not below a minimum of 1/3).
        ratio = report["nash_ratio"]
        if ratio is not None:
            findings.append(finding(
                check=self.name,
                level=level_of(ratio < round(policy.min_nash_ratio, 6), setting),
                code="nash_ratio", message=f"Nash product is {ratio:.0%} of the best possible "
                                           f"(minimum {policy.min_nash_ratio:.0%})",
                data={"nash_ratio": ratio, "min_nash_ratio": policy.min_nash_ratio}))
        distance = report["ks_distance"]
        if distance is not None:
            findings.append(finding(
                check=self.name,
                level=level_of(distance > round(policy.max_ks_distance, 6), setting),
                code="ks_distance", message=f"distance to the Kalai–Smorodinsky point is "
                                            f"{distance:.3f} (maximum {policy.max_ks_distance})",
                data={"ks_distance": distance, "max_ks_distance": policy.max_ks_distance}))
        lowest = report["lowest_gain"]
        findings.append(finding(
            check=self.name,
            level=level_of(lowest < round(policy.min_egalitarian_gain, 6), setting),
            code="egalitarian_gain", message=f"the worst-off party gains {lowest:+.3f} over its "
                                             f"reservation value (minimum "
                                             f"{policy.min_egalitarian_gain:+.3f})",
            data={"lowest_gain": lowest, "min_egalitarian_gain": policy.min_egalitarian_gain}))
        return findings

    def _shares(self, referee: Referee, case: Case, setting: CheckLevel) -> list[Finding]:
        limit = referee.policy.fairness.max_share_deviation
        findings = []
        for issue_id, entry in referee.share_report(case.terms).items():
            issue = next(i for i in referee.scenario.issues if i.id == issue_id)
            failed = entry["deviation"] > limit
            fair_text = format_value(issue, {p: round(v) for p, v in entry["fair"].items()})
            findings.append(finding(
                check=self.name, level=level_of(failed, setting),
                code="share_deviation" if failed else "share_proportional",
                message=f"{issue.name}: {format_value(issue, entry['actual'])} is "
                        f"{entry['deviation']:.0f} points from the {entry['basis']}-based "
                        f"share {fair_text} (maximum {limit:.0f})",
                data={"issue": issue_id, **entry, "max_deviation": limit}))
        return findings


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
#: gets the full scan too.  Looked for one by one: a substring test per word costs half of
#: one regex alternation over them all (on every move's text).
_MAY_BE_INSTRUCTION = (*INSTRUCTION_WORDS, "\u0131", "\u017f", "\u0307")


def instruction_like(text: str) -> re.Match[str] | None:
    """The first phrase of ``text`` that reads like instructions to a negotiator."""
    lowered = text.lower()
    for word in _MAY_BE_INSTRUCTION:
        if word in lowered:
            return INSTRUCTION_LIKE.search(text)
    return None


class Injection(Check):
    """Instruction-like text in messages from other parties."""

    name = "injection"
    policy = "injection"
    codes = ("instruction_like_text",)

    def on_text(self, referee: Referee, party: str, action: Action) -> list[Finding]:
        """Flag a move whose rationale or message reads like instructions to other agents
        (prompt injection); other parties' text is data, never commands."""
        setting = referee.policy.injection
        if setting == "off":
            return []
        findings = []
        for field_name in ("rationale", "message"):
            text = getattr(action, field_name) or ""
            hit = instruction_like(text) if text else None
            if hit is not None:
                findings.append(finding(
                    check=self.name, level=setting, code="instruction_like_text",
                    message=f"{party}'s {field_name} addresses the other negotiators with "
                            f"instructions (\"{hit.group(0)}\"); "
                            + ("the move is not delivered" if setting == "block"
                               else "it is passed on only as quoted data"),
                    data={"party": party, "field": field_name, "excerpt": text[:200]}))
        return findings


_RED_LINE_VERBS = {"==": "must be", "!=": "must not be", "in": "must be one of",
                   "not_in": "must not be any of", ">=": "must be at least",
                   "<=": "must be at most", ">": "must be more than", "<": "must be less than"}


def red_line_text(red_line: RedLine) -> str:
    """A red line in words: ``data_access must not be full_customer_data``, or for a split
    ``revenue_share: vendor's share must be at least 60``."""
    value = red_line.value
    shown = ", ".join(value) if isinstance(value, list) else f"{value:g}" \
        if isinstance(value, float) else f"{value}"
    subject = f"{red_line.issue}: {red_line.party}'s share" if red_line.party \
        else red_line.issue
    return f"{subject} {_RED_LINE_VERBS[red_line.op]} {shown}"
