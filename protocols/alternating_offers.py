"""Stacked alternating offers for 2..N parties (Aydoğan et al. 2017, "SAOP").

Parties speak in a fixed cyclic order.  On its turn a party accepts the standing offer,
replaces it with a counter-offer, or walks away.  An agreement forms when every party other
than the proposer has accepted the same standing offer; a counter-offer clears all earlier
acceptances.  A round is one turn for each party; after ``max_rounds`` rounds without
agreement the negotiation ends with "no agreement".  Walking away ends it at once.

A passed turn (a proposal the referee blocked, or a seat left idle past its turn timeout)
leaves the table as it is — the standing offer and the acceptances it already has — and
the next party speaks, as after any move: nobody accepts anything by passing, and the
deadline still ends a run of passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from negotiation.model import (
    Accept,
    Action,
    ActionKind,
    Offer,
    Propose,
    ProtocolConfig,
    WalkAway,
)
from protocols.base import IllegalActionError, ProtocolBase, ProtocolState

_OPENING: frozenset[ActionKind] = frozenset({"propose", "walk_away"})
_RESPONDING: frozenset[ActionKind] = frozenset({"propose", "accept", "walk_away"})
_NOTHING: frozenset[ActionKind] = frozenset()
_NOBODY: frozenset[str] = frozenset()


class AlternatingOffers(ProtocolBase):
    """The stacked alternating-offers protocol as a pure state machine."""

    name = "alternating_offers"
    description = "Stacked alternating offers: parties take turns to accept, counter or leave."
    rules = ("parties take turns; an agreement forms when every other party accepts the "
             "same standing offer.")

    def start(self, parties: Sequence[str], max_rounds: int,
              config: ProtocolConfig | None = None) -> ProtocolState:
        if config is not None and config.min_coalition is not None:
            raise ValueError("alternating_offers ends when a party walks away; for "
                             "sub-coalitions use mediated_single_text")
        if len(parties) < 2:
            raise ValueError("a negotiation needs at least two parties")
        if len(set(parties)) != len(parties):
            raise ValueError(f"party ids must be unique, got {list(parties)}")
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        return ProtocolState(
            parties=tuple(parties),
            max_rounds=max_rounds,
            round=0,
            turn=0,
            status="running",
            standing_offer=None,
            standing_proposer=None,
            accepted_by=frozenset(),
            reason="",
        )

    def legal_actions(self, state: ProtocolState, party: str) -> frozenset[ActionKind]:
        if state.status != "running" or party != state.parties[state.turn]:
            return _NOTHING  # ended, or not this party's turn
        if state.standing_offer is None or state.standing_proposer == party:
            return _OPENING
        return _RESPONDING

    def apply(self, state: ProtocolState, party: str, action: Action) -> ProtocolState:
        # ``state.done`` and ``state.current_party``, read without their properties (this
        # runs on every turn).
        if state.status != "running":
            raise IllegalActionError(f"the negotiation has ended ({state.status}); no more moves")
        if party != state.parties[state.turn]:
            raise IllegalActionError(
                f"it is {state.current_party}'s turn, not {party}'s"
            )
        if isinstance(action, Propose):  # the common move first: asked on every turn
            return self._advance(state, action.offer, party, _NOBODY)
        if isinstance(action, WalkAway):
            return replace(state, status="no_agreement", reason=f"{party} walked away")
        if isinstance(action, Accept):
            if state.standing_offer is None:
                raise IllegalActionError(f"{party} cannot accept: there is no offer on the table")
            if state.standing_proposer == party:
                raise IllegalActionError(f"{party} cannot accept its own offer")
            accepted = state.accepted_by | {party}
            if len(accepted) == len(state.parties) - 1:
                return replace(state, accepted_by=accepted, status="agreement",
                               reason="every party accepted the standing offer")
            return self._advance(state, state.standing_offer, state.standing_proposer,
                                 accepted)
        raise IllegalActionError(f"unknown action {action!r}")

    def pass_turn(self, state: ProtocolState) -> ProtocolState:
        """End the current party's turn without a move (its proposal was blocked, or its
        seat idled): the standing offer and its acceptances stay, the turn moves on."""
        if state.done:
            raise IllegalActionError("the negotiation has ended; no more moves")
        return self._advance(state, state.standing_offer, state.standing_proposer,
                             state.accepted_by)

    @staticmethod
    def _advance(state: ProtocolState, standing_offer: Offer | None,
                 standing_proposer: str | None, accepted_by: frozenset[str]) -> ProtocolState:
        """The next party's turn, with the table as given.  Called on every turn: one
        constructor call is several times faster than replace()."""
        turn, round_, status, reason = state.turn + 1, state.round, state.status, state.reason
        if turn == len(state.parties):
            turn, round_ = 0, round_ + 1
            if round_ >= state.max_rounds:
                status = "no_agreement"
                reason = f"deadline: no agreement after {state.max_rounds} rounds"
        return ProtocolState(state.parties, state.max_rounds, round_, turn, status,
                             standing_offer, standing_proposer, accepted_by, reason)
