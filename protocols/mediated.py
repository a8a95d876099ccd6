"""Mediated single negotiating text for 2..N parties (Fisher 1978; Raiffa 1982, ch. 14).

A neutral mediator keeps one text.  In each round every party, in turn, approves the text
(``accept``), asks for changes by stating the full terms it wants (``propose``: an
amendment request), or leaves (``walk_away``).  When a round ends with every party
approving the same text, that text is the agreement.  Otherwise the mediator revises it
issue by issue, using only what the parties said: for each issue it takes the *medoid* of
the values requested this round — the requested value closest, in total, to all of them
(a plurality vote for options, a median for numbers and shares) — counting an approval as
a request for the current text's value; ties keep the current text.  The first round has
no text: every party states its terms and the mediator composes the first text from them.

The mediator never sees a preference: it is this pure function of the public requests.

A passed turn (a request the referee blocked, or a seat left idle past its turn timeout)
is neither an approval nor a request — the conservative reading of silence: a round in
which anyone passed cannot end in agreement, and the mediator revises the text from the
others' requests alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

from negotiation.model import (
    Accept,
    Action,
    ActionKind,
    Offer,
    Propose,
    ProtocolConfig,
    TermValue,
    WalkAway,
)
from protocols.base import IllegalActionError, ProtocolBase, ProtocolState

MEDIATOR = "mediator"

_FIRST_ROUND: frozenset[ActionKind] = frozenset({"propose", "walk_away"})
_LATER: frozenset[ActionKind] = frozenset({"propose", "accept", "walk_away"})
_NOTHING: frozenset[ActionKind] = frozenset()


def _distance(a: TermValue, b: TermValue) -> float:
    if isinstance(a, dict) and isinstance(b, dict):
        return float(sum(abs(a[p] - b.get(p, 0)) for p in a))
    if isinstance(a, int | float) and isinstance(b, int | float) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return abs(float(a) - float(b))
    return 0.0 if a == b else 1.0


def medoid(values: Sequence[TermValue], current: TermValue | None = None) -> TermValue:
    """The value among ``values`` with the least total distance to all of them; ties go
    to ``current``, then to the earliest value."""
    best, best_cost = values[0], float("inf")
    for value in values:
        cost = sum(_distance(value, other) for other in values)
        if cost < best_cost - 1e-12 or (abs(cost - best_cost) <= 1e-12 and value == current
                                        and best != current):
            best, best_cost = value, cost
    return best


def revise(text: Offer | None, requests: Sequence[Offer]) -> Offer:
    """The mediator's new text from this round's requests (approvals included)."""
    issues = list(requests[0].terms)
    terms: dict[str, TermValue] = {}
    for issue in issues:
        current = text.terms.get(issue) if text is not None else None
        terms[issue] = medoid([r.terms[issue] for r in requests], current)
    return Offer(terms=terms)


@dataclass(frozen=True, slots=True)
class MediatedTable:
    """What the mediated protocol keeps besides the common state (``ProtocolState.extra``)."""

    #: What the parties asked for this round, approvals included.
    requests: tuple[Offer, ...] = ()
    #: Parties that left while the others went on (a sub-coalition negotiation).
    left: tuple[str, ...] = ()
    #: Fewest parties that may go on negotiating; ``None``: anyone leaving ends it.
    min_parties: int | None = None


class MediatedSingleText(ProtocolBase):
    """The mediated single-text protocol as a pure state machine.

    Per round it keeps each party's answer in its :class:`MediatedTable`; ``accepted_by``
    holds the parties that approved the current text this round.
    """

    name = "mediated_single_text"
    description = ("Mediated single text: parties approve or amend one text; a neutral "
                   "mediator revises it from what they asked for.")
    rules = ("a neutral mediator keeps one text; each round you approve it (accept) or state "
             "the full terms you want (propose); the mediator revises the text from what "
             "the parties asked for; the text is agreed when every party approves it in one "
             "round.")

    def start(self, parties: Sequence[str], max_rounds: int,
              config: ProtocolConfig | None = None) -> ProtocolState:
        min_parties = config.min_coalition if config is not None else None
        if min_parties is not None and not 2 <= min_parties <= len(parties):
            raise ValueError(f"min_coalition must lie between 2 and {len(parties)}")
        if len(parties) < 2:
            raise ValueError("a negotiation needs at least two parties")
        if len(set(parties)) != len(parties) or MEDIATOR in parties:
            raise ValueError(f"party ids must be unique and not '{MEDIATOR}'")
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        return ProtocolState(parties=tuple(parties), max_rounds=max_rounds, round=0, turn=0,
                             status="running", standing_offer=None, standing_proposer=None,
                             accepted_by=frozenset(), reason="",
                             extra=MediatedTable(min_parties=min_parties))

    def config_problems(self, config: ProtocolConfig, parties: Sequence[str]
                        ) -> dict[str, str]:
        if config.min_coalition is not None and config.min_coalition > len(parties):
            return {"min_coalition": f"{config.min_coalition} is more than the "
                                     f"{len(parties)} organisations"}
        return {}

    def departed(self, state: ProtocolState) -> tuple[str, ...]:
        return _table(state).left

    def published(self, before: ProtocolState, after: ProtocolState) -> Offer | None:
        """The mediator's revised text, once per revision (not when the run has ended)."""
        if after.done or after.standing_proposer != MEDIATOR \
                or after.standing_offer is before.standing_offer:
            return None
        return after.standing_offer

    def describe_proposer(self, proposer: str) -> str | None:
        return "composed by the mediator from the parties' requests" \
            if proposer == MEDIATOR else None

    def legal_actions(self, state: ProtocolState, party: str) -> frozenset[ActionKind]:
        if state.done or party != state.current_party:
            return _NOTHING
        return _FIRST_ROUND if state.standing_offer is None else _LATER

    def apply(self, state: ProtocolState, party: str, action: Action) -> ProtocolState:
        if state.done:
            raise IllegalActionError(f"the negotiation has ended ({state.status}); no more moves")
        if party != state.current_party:
            raise IllegalActionError(f"it is {state.current_party}'s turn, not {party}'s")
        if isinstance(action, WalkAway):
            remaining = tuple(p for p in state.parties if p != party)
            min_parties = _table(state).min_parties
            if min_parties is None or len(remaining) < min_parties:
                return _with(state, status="no_agreement", reason=f"{party} walked away")
            return self._leave(state, party, remaining)
        if isinstance(action, Accept):
            if state.standing_offer is None:
                raise IllegalActionError(f"{party} cannot approve: the mediator has no text "
                                         "yet")
            return self._next(_with(state, accepted_by=state.accepted_by | {party},
                                    extra=_requested(state, state.standing_offer)))
        if isinstance(action, Propose):
            return self._next(_with(state, extra=_requested(state, action.offer)))
        raise IllegalActionError(f"unknown action {action!r}")

    def pass_turn(self, state: ProtocolState) -> ProtocolState:
        """Neither an approval nor a request: the text cannot be agreed this round."""
        if state.done:
            raise IllegalActionError("the negotiation has ended; no more moves")
        return self._next(state)

    def _leave(self, state: ProtocolState, party: str,
               remaining: tuple[str, ...]) -> ProtocolState:
        """The others go on; the party whose turn comes next keeps the same position."""
        table = _table(state)
        left = _with(state, parties=remaining,
                     extra=replace(table, left=(*table.left, party)))
        if state.turn < len(remaining):
            return left
        return self._next(_with(left, turn=len(remaining) - 1))

    @staticmethod
    def _next(state: ProtocolState) -> ProtocolState:
        turn = state.turn + 1
        if turn < len(state.parties):
            return _with(state, turn=turn)
        # End of a round: unanimity ends it; otherwise the mediator revises the text.
        table = _table(state)
        if state.standing_offer is not None and len(state.accepted_by) == len(state.parties):
            without = f" (without {', '.join(table.left)}, who left)" if table.left else ""
            return _with(state, status="agreement",
                         reason=f"every party approved the mediator's text{without}")
        text = revise(state.standing_offer, table.requests) if table.requests \
            else state.standing_offer
        round_ = state.round + 1
        cleared = replace(table, requests=())
        if round_ >= state.max_rounds:
            return _with(state, round=round_, turn=0, status="no_agreement",
                         reason=f"deadline: no agreement after {state.max_rounds} rounds",
                         extra=cleared)
        return _with(state, round=round_, turn=0, standing_offer=text,
                     standing_proposer=MEDIATOR if text is not None else None,
                     accepted_by=frozenset(), extra=cleared)


def _with(state: ProtocolState, **changes: object) -> ProtocolState:
    return replace(state, **changes)  # type: ignore[arg-type]


def _table(state: ProtocolState) -> MediatedTable:
    return cast(MediatedTable, state.extra)


def _requested(state: ProtocolState, offer: Offer) -> MediatedTable:
    table = _table(state)
    return replace(table, requests=(*table.requests, offer))
