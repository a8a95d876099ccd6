"""The referee: deterministic checks on every proposal and every agreement.

Each check returns findings with a machine-readable ``code``, the numbers behind it and
one human sentence; the scenario's ``guardrails:`` policy decides whether a failed check
blocks, warns or is off, separately for proposals and agreements.  The referee sees every
organisation's private preferences; what it tells a blocked proposer is limited to the
constraint that was crossed (``Feedback``), never another party's utilities or
reservation value.

The checks themselves live in :mod:`negotiation.checks` (one interface and one registry
for built-in and custom checks); the referee runs them in registry order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from negotiation.analysis import BoolArray, SpaceAnalysis, shapley_values
from negotiation.checks import Case, CustomCheck, checks_for
from negotiation.checks.base import Check, Failure, Finding, GuardrailCheck, Level, Subject
from negotiation.checks.builtin import (
    INSTRUCTION_LIKE,
    INSTRUCTION_PATTERNS,
    Injection,
    instruction_like,
    red_line_text,
)
from negotiation.frozen import built
from negotiation.model import Action, Propose, RedLine, Scenario, SplitIssue, TermValue
from negotiation.utility import (
    FloatArray,
    InvalidOfferError,
    discount_factors,
    read_only_offer,
    violates,
)

#: At most this many cleared texts are remembered per referee (a run of an LLM's moves
#: rarely repeats one).
CLEAR_TEXTS_LIMIT = 1_024


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


class Feedback(BaseModel):
    """What a blocked proposer is told: why, without anyone else's private numbers."""

    model_config = ConfigDict(frozen=True)

    message: str
    codes: list[str]
    red_lines: list[RedLine] = Field(default_factory=list)


PASSED_PROPOSAL = Verdict(subject="proposal", level="pass", findings=[])

def verdict_of(subject: Subject, findings: list[Finding]) -> Verdict:
    """The verdict of ``findings`` (checked ``Finding`` s, not validated again): the worst
    level among them."""
    levels = {f.level for f in findings}
    level: Level = "block" if "block" in levels else "warn" if "warn" in levels else "pass"
    return built(Verdict, {"subject": subject, "level": level, "findings": list(findings)})


#: What a blocked proposer is told instead of the message of a proposal check's finding
#: computed from the other parties' private utilities (it names a party and its gain).
PRIVATE_FINDINGS = {
    "below_reservation": "the terms leave another party worse off than its alternative to "
                         "a deal",
    "pareto_dominated": "another feasible outcome is better for some party and worse for "
                        "none",
}


class Referee:
    """Checks proposals and agreements for one scenario under its guardrail policy."""

    def __init__(self, scenario: Scenario, analysis: SpaceAnalysis | None = None) -> None:
        if analysis is not None and analysis.scenario is not scenario:
            raise ValueError("the analysis is of another scenario object: pass the analysis of "
                             "this one (SpaceAnalysis(scenario)) or none")
        self.scenario = scenario
        self.policy = scenario.guardrails
        self.analysis = analysis or SpaceAnalysis(scenario)
        self.space = self.analysis.space
        self.fair_shares = self._fair_shares()
        self._parties = frozenset(scenario.party_ids)
        self.checks = checks_for(self.policy)
        self._custom = [check for check in self.checks if isinstance(check, CustomCheck)]
        # Every move's text is checked: ask only the checks that look at text at all.
        self._text_checks = [check for check in self.checks
                             if type(check).on_text is not Check.on_text]
        #: Whether the built-in injection check is the only one: then a move whose texts
        #: hold no instruction-like phrase (nearly every move) is cleared by one scan each.
        self._injection_only = all(isinstance(check, Injection) for check in self._text_checks)
        #: Texts of this referee's moves that hold no instruction-like phrase: a referee
        #: serves one run, whose agents often repeat a rationale word for word.
        self._clear_texts: set[str] = set()
        # The proposal levels the fast path reads on every move, looked up once.
        policy = self.policy
        self._proposal_red_lines = policy.red_lines.proposals != "off"
        self._proposal_rationality = policy.individual_rationality.proposals != "off"
        self._proposal_pareto = policy.pareto.proposals != "off"
        self._proposal_fairness = policy.fairness.proposals != "off" and bool(self.fair_shares)
        self.organizations = self.analysis.organizations
        self._discounting = any(org.preferences.discount != 1.0 for org in self.organizations)
        self._subsets: dict[tuple[str, ...], Referee] = {}

    def for_members(self, members: Sequence[str]) -> Referee:
        """The referee of a sub-coalition: only its members' preferences count."""
        key = tuple(members)
        if key not in self._subsets:
            self._subsets[key] = Referee(self.scenario, self.analysis.of_members(key))
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

    def delivered(self, action: Propose, outcome: int) -> Propose:
        """``action`` as checked, with terms nobody can edit any more: an offer object of
        the proposer's own could be edited once checked (by whoever it is shown to, before
        it is accepted).  The space's offer of ``outcome`` is read-only already."""
        if action.offer is self.space.offer(outcome):
            return action
        return action.model_copy(update={"offer": read_only_offer(action.offer.terms)})

    def check_proposal(self, proposer: str, action: Propose, departed: Sequence[str] = (),
                       own: int | None = None) -> tuple[Verdict, int | None]:
        """The verdict on a proposal, and its outcome number when the terms are valid.
        With ``departed`` parties, the remaining sub-coalition's referee decides.  ``own``:
        the number of the offer when it is one the space built (``read_move`` found it)."""
        if departed:
            members = [p for p in self.scenario.party_ids if p not in departed]
            verdict, outcome = self.for_members(members).check_proposal(proposer, action)
            gone = self._departed(action.offer.terms, departed)
            return (verdict.with_findings(gone) if gone else verdict), outcome
        outcome = own
        if outcome is None:
            try:
                outcome = self.space.index_of_offer(action.offer)
            except InvalidOfferError:
                outcome = None
        if outcome is not None and self._clean(proposer, action, outcome) \
                and not (self._custom and self._custom_findings(action.offer.terms)):
            return PASSED_PROPOSAL, outcome
        invalid = None
        try:
            outcome = self.space.index_of(action.offer.terms)
        except InvalidOfferError as error:
            outcome, invalid = None, str(error)
        case = Case("proposal", proposer, action.rationale, action.offer.terms, outcome,
                    invalid)
        findings = [finding for check in self.checks
                    if outcome is not None or not check.needs_valid_terms
                    for finding in check.on_proposal(self, case)]
        if outcome is None:
            return verdict_of("proposal", findings), None
        return verdict_of("proposal", [f for f in findings if f.level != "pass"]), outcome

    def _custom_findings(self, terms: dict[str, TermValue]) -> list[Finding]:
        """Findings of the scenario's custom checks that a proposal's terms fail."""
        return [finding for check in self._custom
                for finding in check.failures(self.shown_scenario, terms, "proposal")]

    @property
    def shown_scenario(self) -> Scenario:
        """The scenario as custom checks see it: a read-only copy (the analysis's, made once
        per scenario), never the caller's object."""
        return self.analysis.shown_scenario

    def _clean(self, proposer: str, action: Propose, outcome: int) -> bool:
        """Fast path for the common case: a proposal no proposal check objects to."""
        rationale = action.rationale
        if proposer not in self._parties or not rationale or rationale.isspace():
            return False
        if self._proposal_red_lines and not self.analysis.feasible_full[outcome]:
            return False
        if self._proposal_rationality and not self._rational_full[outcome]:
            return False
        if self._proposal_pareto:
            return False
        if self._proposal_fairness:
            limit = self.policy.fairness.max_share_deviation
            terms = action.offer.terms
            for issue_id, fair in self.fair_shares.items():
                shares = terms[issue_id]
                assert isinstance(shares, dict)
                if max(abs(shares[p] - v) for p, v in fair.items()) > limit:
                    return False
        return True

    @property
    def _rational_full(self) -> BoolArray:
        return self.analysis.rational_full  # a per-scenario table, not one per run

    def feedback(self, verdict: Verdict, terms: dict[str, TermValue],
                 departed: Sequence[str] = (), move: str = "propose") -> Feedback:
        """What the party whose move (a proposal unless ``move`` says otherwise) was
        blocked may learn."""
        # The constraint is what a counterpart would say ("that is a deal-breaker"); why it
        # holds (its reason) is the owner's private brief and is never passed on.
        # A deep copy: the agent may edit what it is given, never the owner's red line.
        crossed = [red_line.model_copy(update={"reason": ""}, deep=True)
                   for org in self.organizations if org.id not in departed
                   for red_line in org.preferences.red_lines
                   if red_line.issue in terms and self._safe_violates(red_line, terms)]
        crossed += [RedLine(issue=f.data["issue"], party=f.data["party"], op="==", value=0,
                            reason=f"{f.data['party']} has left the negotiation")
                    for f in verdict.findings if f.code == "share_for_departed"]
        sentences = []
        if any(f.code == "red_line_crossed" and f.level == "block" for f in verdict.findings):
            sentences += [f"the terms cross a red line: {red_line_text(red_line)}"
                          for red_line in crossed]
        for finding in verdict.findings:
            if finding.level != "block" or finding.code == "red_line_crossed":
                continue
            sentences.append(PRIVATE_FINDINGS.get(finding.code, finding.message))
        subject = "Proposal" if move == "propose" else f"Your {move} move was"
        return Feedback(message=f"{subject} blocked by the referee: " + "; ".join(sentences),
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
        if self._injection_only and self._clear(action.rationale) and (
                not action.message or self._clear(action.message)):
            return []
        return [finding for check in self._text_checks
                for finding in check.on_text(self, party, action)]

    def _clear(self, text: str) -> bool:
        """Whether ``text`` holds no instruction-like phrase: scanned, or equal to a text
        this referee scanned before (a plain ``str`` only: a subclass may compare equal to
        what it is not)."""
        plain = type(text) is str
        if plain and text in self._clear_texts:
            return True
        if instruction_like(text) is not None:
            return False
        if plain and len(self._clear_texts) < CLEAR_TEXTS_LIMIT:
            self._clear_texts.add(text)
        return True

    # --- agreements ------------------------------------------------------------------

    def check_agreement(self, terms: dict[str, TermValue], proposer: str, rationale: str,
                        members: Sequence[str] | None = None, departed: Sequence[str] = (),
                        composed: str | None = None, time: float = 0.0,
                        outcome: int | None = None) -> tuple[Verdict, dict[str, Any]]:
        """The verdict on an agreement and its full fairness report; for a sub-coalition
        (``departed`` non-empty) only its ``members`` count, and whoever left must get and
        pay nothing.  ``composed`` says how the protocol composed the terms when no party
        proposed them (a mediator's text): then nobody owes a rationale.  ``time`` is the
        normalised time of the agreement: parties that discount judge it at u · d^t.
        ``outcome``: the terms' number in the space, when the caller knows it."""
        if departed:
            kept = list(members or [p for p in self.scenario.party_ids if p not in departed])
            verdict, report = self.for_members(kept).check_agreement(
                terms, proposer, rationale, composed=composed, time=time)
            gone = self._departed(terms, departed)
            report = {**report, "members": kept, "departed": list(departed)}
            return (verdict.with_findings(gone) if gone else verdict), report
        if outcome is None:
            outcome = self.space.index_of(terms)
        efficiency = self._efficiency(outcome)
        factors = self.discount_factors(time)
        report = self.report(outcome, efficiency=efficiency, time=time)
        case = Case("agreement", proposer, rationale, terms, outcome, composed=composed,
                    report=report, efficiency=efficiency,
                    factors=None if factors is None else tuple(factors.tolist()))
        findings = [finding for check in self.checks
                    for finding in check.on_agreement(self, case)]
        return verdict_of("agreement", findings), report

    def _efficiency(self, outcome: int) -> tuple[float, int | None]:
        """Distance to the Pareto frontier and a dominating outcome, if any."""
        return self.analysis.efficiency(outcome)

    def discount_factors(self, time: float) -> FloatArray | None:
        """Each organisation's d^t at normalised time ``time``; ``None`` if nobody
        discounts (then every report reads exactly as before discounting existed)."""
        if not self._discounting:
            return None
        return discount_factors([org.preferences for org in self.organizations], time)

    def report(self, outcome: int, efficiency: tuple[float, int | None] | None = None,
               time: float = 0.0) -> dict[str, Any]:
        """Every fairness and efficiency measure of one outcome (``efficiency``: the
        result of ``_efficiency`` when the caller has it already).  When parties discount,
        utilities, gains and the Nash and Kalai–Smorodinsky measures use the discounted
        utility u · d^t at normalised time ``time`` (the report's ``discount`` says so);
        the Pareto distance does not change (a positive factor per party keeps dominance)."""
        distance, better = efficiency or self._efficiency(outcome)
        analysis = self.analysis
        undiscounted = analysis.utilities_of(outcome)
        factors = self.discount_factors(time)
        utilities = undiscounted if factors is None else undiscounted * factors
        # One point: plain floats (the same sums, in the same order) beat numpy's per-call
        # overhead here.
        values = utilities.tolist()
        reservation = analysis.reservation.tolist()
        gains = [u - r for u, r in zip(values, reservation, strict=True)]
        best_nash = analysis.best_nash_product
        product = math.prod(max(gain, 0.0) for gain in gains)
        ks = analysis.kalai_smorodinsky
        parties = analysis.parties
        if factors is None:  # the outcome's rounded utilities, as its moves record them
            reported = analysis.recorded_utilities(outcome).copy()
            # u - 0.0 is u (-0.0 too): a party whose reservation value is 0.0 gains its
            # utility, rounded already.
            rounded_gains = {p: reported[p] if r == 0.0 and math.copysign(1.0, r) > 0
                             else round(g, 6)
                             for p, g, r in zip(parties, gains, reservation, strict=True)}
        else:
            reported = {p: round(u, 6) for p, u in zip(parties, values, strict=True)}
            rounded_gains = {p: round(g, 6) for p, g in zip(parties, gains, strict=True)}
        report: dict[str, Any] = {
            "method": analysis.method,
            "utilities": reported,
            "gains": rounded_gains,
            "nash_product": round(product, 9),
            "nash_ratio": round(product / best_nash, 6) if best_nash > 0 else None,
            "ks_distance": None if ks is None else round(math.sqrt(sum(
                (u - ks.utilities[p]) ** 2 for p, u in zip(parties, values, strict=True))), 6),
            "lowest_gain": round(min(gains), 6),
            "welfare": round(sum(values), 6),
            "pareto_distance": round(distance, 6),
            "pareto_dominated": better is not None,
            "shares": self.share_report(self.space.terms(outcome)) if self.fair_shares else {},
            # Copies: the points are the scenario's, shared by every run's report.
            "reference_points": {p.name: dict(p.utilities) for p in analysis.special_points()},
        }
        if factors is not None:
            report["discount"] = {
                "time": round(time, 6),
                "factors": {p: round(float(f), 6) for p, f in zip(parties, factors, strict=True)},
                "undiscounted_utilities": {p: round(float(u), 6) for p, u in
                                           zip(parties, undiscounted, strict=True)},
                "note": "utilities, gains, the Nash product and the Kalai-Smorodinsky distance "
                        "are discounted: u × d^t at the moment of agreement (t = "
                        f"{time:.3f} of the deadline); reservation values are not",
            }
        return report

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

OFFER_LEVEL = "(offer-level rationale)"


def provenance(moves: Iterable[tuple[int, str, dict[str, TermValue], str]],
               terms: dict[str, TermValue],
               names: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """For each agreed clause: who first put the agreed value on the table, in which round,
    and the part of that proposal's rationale about this clause.

    ``moves`` are the delivered proposals in order, as (round, proposer, terms, rationale);
    ``names`` maps issue ids to the names rationales use (``"moves on Revenue share (…)"``).
    """
    names = names or {}
    # Whether a rationale names any clause depends only on the rationale: asked once each.
    markers = clause_markers(names)
    names_a_clause: dict[str, bool] = {}
    # Each agreed value's first proposal, in one pass over the moves that ends once every
    # value is found (a run's agreed values are mostly offered early).
    agreed = list(terms.items())
    origins: dict[str, tuple[int, str, str]] = {}
    for round_, proposer, offered, rationale in moves:
        for issue_id, value in agreed:
            if issue_id not in origins and offered.get(issue_id) == value:
                origins[issue_id] = (round_, proposer, rationale)
        if len(origins) == len(agreed):
            break
    table = []
    for issue_id, value in agreed:
        origin = origins.get(issue_id)
        if origin is not None:
            rationale = origin[2]
            if rationale not in names_a_clause:
                names_a_clause[rationale] = any(marker in rationale for marker in markers)
            # A split is the agreed offer's own dict (shared with the space's offers): the
            # record gets a copy, so editing the event edits no later run's offers.
            table.append({"issue": issue_id,
                          "value": dict(value) if isinstance(value, dict) else value,
                          "proposer": origin[1],
                          "round": origin[0],
                          "rationale": clause_rationale(rationale, issue_id, names,
                                                        names_a_clause[rationale])})
    return table


def clause_markers(names: Mapping[str, str]) -> list[str]:
    """What a rationale holds when it names a clause: ``"<name or id> ("``."""
    return [f"{name} (" for name in (*names.values(), *names)]


def clause_rationale(rationale: str, issue_id: str, names: Mapping[str, str],
                     names_a_clause: bool | None = None) -> str:
    """The part of an offer's rationale about one clause (``"moves on X (a → b)"``), or the
    rationale marked plainly as being about the whole offer (``names_a_clause``: whether
    the rationale names any clause, when the caller knows)."""
    for name in (names.get(issue_id), issue_id):
        if name and (start := rationale.find(f"{name} (")) >= 0:
            end = rationale.find(")", start)
            return "moves on " + rationale[start:end + 1 if end >= 0 else len(rationale)]
    if names_a_clause is None:
        names_a_clause = any(marker in rationale for marker in clause_markers(names))
    if names_a_clause or not rationale.strip():
        return OFFER_LEVEL
    return f"{OFFER_LEVEL} {rationale}"


__all__ = [
    "INSTRUCTION_LIKE",
    "INSTRUCTION_PATTERNS",
    "PASSED_PROPOSAL",
    "Failure",
    "Feedback",
    "Finding",
    "GuardrailCheck",
    "Level",
    "Referee",
    "Subject",
    "Verdict",
    "instruction_like",
    "provenance",
    "verdict_of",
]
