"""The bodies of the events a session records about moves and agreements: a move's action
and verdict, and the referee's judgement of an agreement in the outcome event.

Every body is the event's own: nothing in it is shared with another event, another run or
the scenario, so whoever edits an event (an ``on_event`` hook) edits nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from negotiation.checks.base import Finding
from negotiation.guardrails import PASSED_PROPOSAL, provenance
from negotiation.model import Accept, Action, Agreement, Offer, Propose, TermValue, WalkAway

if TYPE_CHECKING:
    from agents.base import Move
    from negotiation.session import Negotiation
    from negotiation.utility import OutcomeSpace
    from protocols import ProtocolState

#: The record of an unflagged proposal's verdict, copied into each event (with its own
#: ``findings`` list): a record shared by events would let whoever edits one event's
#: verdict (an ``on_event`` hook) edit every later event's, in every run of the process.
_PASSED: dict[str, Any] = PASSED_PROPOSAL.model_dump(mode="json")


def passed_verdict() -> dict[str, Any]:
    """The record of a proposal every check passed, the event's own copy."""
    return {**_PASSED, "findings": []}


def action_record(action: Action) -> dict[str, Any]:
    """``action.model_dump(mode="json", exclude_none=True)``, the action as a move event
    records it; built directly for the three move kinds (a test pins that both agree),
    since pydantic's serializer costs more than the rest of the record on every move."""
    kind = type(action)
    if kind is Propose:
        assert isinstance(action, Propose)
        terms = action.offer.terms.copy()
        for issue, value in terms.items():
            if isinstance(value, dict):
                terms[issue] = dict(value)  # the record's own copy of a split
        record: dict[str, Any] = {"kind": "propose", "offer": {"terms": terms},
                                  "rationale": action.rationale}
    elif kind is Accept or kind is WalkAway:
        record = {"kind": action.kind, "rationale": action.rationale}
    else:
        return action.model_dump(mode="json", exclude_none=True)
    if action.message is not None:
        record["message"] = action.message
    return record


def plain_action(action: Action, space: OutcomeSpace) -> Action:
    """An agent's move read once, as exactly one of the three move models: the referee
    checks, the transcript records and the parties are shown the same terms and texts.  A
    subclass (of a move, an offer, its terms, a text or a term value) could answer each
    read differently: the referee passed one offer while the parties were shown another.
    A move of the space's own offer (read-only) in plain ``str`` texts is already plain;
    otherwise fields are copied, texts and term values as exactly ``str``, ``int`` or
    ``float``, unvalidated, so that an invalid move is refused and explained by the
    referee as before."""
    return read_move(action, space)[0]


def read_move(action: Action, space: OutcomeSpace) -> tuple[Action, int | None]:
    """:func:`plain_action`, with the outcome number of a proposal of one of the space's
    own offers (``None`` for any other move): what the referee would look up next."""
    kind = type(action)
    if kind is Propose or kind is Accept or kind is WalkAway:
        message = action.message
        if type(action.rationale) is str and (message is None or type(message) is str):
            if kind is not Propose:
                return action, None
            own = space.number_of_own(action.offer)  # type: ignore[union-attr]  # (a Propose)
            if own is not None:
                return action, own
    model = next((m for m in (Propose, Accept, WalkAway) if isinstance(action, m)), None)
    if model is None:
        return action, None  # not a move at all: the turn fails as before
    fields = dict(dict.items(object.__getattribute__(action, "__dict__")))
    for name in ("rationale", "message"):
        if name in fields:
            fields[name] = _plain(fields[name])
    offer = fields.get("offer")
    if isinstance(offer, Offer):
        terms = object.__getattribute__(offer, "__dict__").get("terms")
        if isinstance(terms, dict):
            terms = {_plain(key): {_plain(party): _plain(share)
                                   for party, share in dict.items(value)}
                     if isinstance(value, dict) else _plain(value)
                     for key, value in dict.items(terms)}
        fields["offer"] = Offer.model_construct(terms=terms)
    fields["kind"] = model.model_fields["kind"].default
    plain: Action = model.model_construct(**fields)
    return plain, None


def _plain(value: object) -> object:
    """A text or number of a move as exactly ``str``, ``int`` or ``float``: a subclass
    could answer the referee's reads (``lower``, ``==``, ``hash``) differently from what it
    says in the transcript and to the other agents.  Anything else is kept as given."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:
        return value
    if isinstance(value, str):
        return str.__str__(value)  # the characters themselves, whatever __str__ says
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    return value


def flagged_fields(findings: Sequence[Finding]) -> tuple[str, ...]:
    """The texts of a move (``rationale``, ``message``) that the text checks flagged."""
    return tuple(sorted({str(finding.data.get("field", "message")) for finding in findings}))


_NOT_PROPOSALS = (Accept, WalkAway)


def proposals_of(moves: Iterable[Move]) -> Iterator[tuple[int, str, dict[str, TermValue], str]]:
    """The delivered proposals among ``moves``, in order: (round, proposer, terms,
    rationale), made as they are read (an agreement's accountability reads only as far as
    the first offer of each agreed value)."""
    # A move's action is read as exactly its model (read_move): its type tells a proposal
    # at once, where isinstance asks the models' metaclass (~60 ns a move).
    return ((move.round, move.party, action.offer.terms, action.rationale)
            for move in moves
            if type(action := move.action) is Propose or (
                type(action) not in _NOT_PROPOSALS and isinstance(action, Propose)))


@dataclass(frozen=True, slots=True)
class Judged:
    """The referee's judgement of the standing offer the protocol agreed on: what the
    outcome event records about it, the agreement (``None``: blocked) and what it is worth
    to each party, and why the run ended without one when it was blocked."""

    body: dict[str, Any]
    agreement: Agreement | None
    utilities: dict[str, float]
    blocked_reason: str | None


def judge_agreement(negotiation: Negotiation, state: ProtocolState, moves: Sequence[Move],
                    move_time: float) -> Judged:
    """Referee the agreement of ``state`` (its standing offer, accepted), reached at
    normalised time ``move_time`` after the delivered ``moves``."""
    assert state.standing_offer is not None and state.standing_proposer is not None
    scenario, protocol, referee = negotiation.scenario, negotiation.protocol, negotiation.referee
    terms = state.standing_offer.terms
    departed = protocol.departed(state)
    # Its number, once: free for an offer the space built (the terms are read-only since
    # they were checked); a sub-coalition's referee numbers them in its own space.
    outcome = None if departed else negotiation.space.index_of_offer(state.standing_offer)
    rationale = next((proposal[3] for proposal in proposals_of(reversed(moves))), "")
    verdict, report = referee.check_agreement(
        terms, state.standing_proposer, rationale, members=state.parties, departed=departed,
        composed=protocol.describe_proposer(state.standing_proposer), time=move_time,
        outcome=outcome)
    body: dict[str, Any] = {
        "verdict": verdict.model_dump(mode="json"),
        "fairness": report,
        "accountability": provenance(proposals_of(moves), terms,
                                     {issue.id: issue.name for issue in scenario.issues}),
    }
    candidate = Agreement(terms=terms, proposer=state.standing_proposer, round=state.round,
                          parties=list(state.parties))
    if verdict.blocked:
        body["blocked_agreement"] = candidate.model_dump(mode="json")
        return Judged(body, None, {}, f"the referee blocked the agreement: {verdict.summary()}")
    utilities = negotiation.utilities_of(negotiation.space.index_of(terms) if outcome is None
                                         else outcome)
    factors = referee.discount_factors(move_time)
    if factors is not None:  # worth when reached; fairness.discount has the rest
        utilities = {party: round(value * float(factor), 6) for (party, value), factor
                     in zip(utilities.items(), factors, strict=True)}
    body["agreement"] = candidate.model_dump(mode="json")
    body["utilities"] = utilities
    return Judged(body, candidate, utilities, None)


__all__ = ["Judged", "action_record", "flagged_fields", "judge_agreement", "passed_verdict",
           "plain_action", "proposals_of", "read_move"]
