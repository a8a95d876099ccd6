"""The interface every negotiation protocol implements: a pure, synchronous state machine.

A protocol never does I/O, never reads a clock and never draws a random number it was not
given; that is what lets two drivers (the plain loop and the LangGraph graph) produce the
same transcript for the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from negotiation.model import Action, ActionKind, Offer

Status = Literal["running", "agreement", "no_agreement"]


class IllegalActionError(ValueError):
    """An action the protocol does not allow from this party at this point."""


@dataclass(frozen=True, slots=True)
class ProtocolState:
    """What every protocol exposes to drivers and agents."""

    parties: tuple[str, ...]
    max_rounds: int
    round: int
    turn: int
    status: Status
    standing_offer: Offer | None
    standing_proposer: str | None
    accepted_by: frozenset[str]
    reason: str
    #: What the parties asked for this round (protocols that collect requests use it).
    requests: tuple[Offer, ...] = ()
    #: Parties that left while the others went on (a sub-coalition negotiation).
    left: tuple[str, ...] = ()
    #: Fewest parties that may go on negotiating; ``None``: anyone leaving ends it.
    min_parties: int | None = None

    @property
    def current_party(self) -> str:
        return self.parties[self.turn]

    @property
    def done(self) -> bool:
        return self.status != "running"


class NegotiationProtocol(Protocol):
    """Rules of a negotiation: who may do what, and what happens when they do."""

    name: str
    description: str

    def start(self, parties: Sequence[str], max_rounds: int, *,
              min_parties: int | None = None) -> ProtocolState: ...

    def legal_actions(self, state: ProtocolState, party: str) -> frozenset[ActionKind]: ...

    def apply(self, state: ProtocolState, party: str, action: Action) -> ProtocolState: ...

    def pass_turn(self, state: ProtocolState) -> ProtocolState:
        """End the current party's turn without a move (its proposal was blocked)."""
        ...
