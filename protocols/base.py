"""The interface every negotiation protocol implements: a pure, synchronous state machine.

A protocol never does I/O, never reads a clock and never draws a random number it was not
given; that is what lets two drivers (the plain loop and the LangGraph graph) produce the
same transcript for the same seed.

Besides its moves, a protocol answers a few questions the engine, the referee, the
agents and the LLM prompt would otherwise answer by testing its name (its *hooks*):
who has left the table, which text it published after a move, how it describes an
agreement it composed itself, what a negotiator is told about its rules, and whether the
scenario's ``protocol:`` section suits it.  :class:`ProtocolBase` gives each hook the
answer of a protocol where parties only make offers; subclass it and override what your
protocol does differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from negotiation.frozen import quick_init
from negotiation.model import Action, ActionKind, Offer, ProtocolConfig

Status = Literal["running", "agreement", "no_agreement"]


class IllegalActionError(ValueError):
    """An action the protocol does not allow from this party at this point."""


@quick_init  # built on every turn
@dataclass(frozen=True, slots=True)
class ProtocolState:
    """What every protocol exposes to drivers and agents.

    ``parties`` are the parties still at the table, in speaking order.  ``extra`` is the
    protocol's own state (a frozen dataclass of its choosing, ``None`` if it needs
    none): only the protocol reads it; everyone else asks the protocol's hooks.
    """

    parties: tuple[str, ...]
    max_rounds: int
    round: int
    turn: int
    status: Status
    standing_offer: Offer | None
    standing_proposer: str | None
    accepted_by: frozenset[str]
    reason: str
    extra: object = None

    @property
    def current_party(self) -> str:
        return self.parties[self.turn]

    @property
    def done(self) -> bool:
        return self.status != "running"


class NegotiationProtocol(Protocol):
    """Rules of a negotiation: who may do what, and what happens when they do."""

    #: The name a scenario uses (``protocol: {name: ...}``).
    name: str
    #: One line for ``negotiate protocols list``.
    description: str

    @property
    def rules(self) -> str:
        """The rules as a negotiator must know them, addressed to it ("you"): the LLM
        prompt quotes this text."""
        ...

    def start(self, parties: Sequence[str], max_rounds: int,
              config: ProtocolConfig | None = None) -> ProtocolState:
        """The opening state.  ``config`` is the scenario's ``protocol:`` section, for the
        settings the protocol reads (``min_coalition``); ``max_rounds`` wins over its
        ``rounds`` (the command line may override them)."""
        ...

    def legal_actions(self, state: ProtocolState, party: str) -> frozenset[ActionKind]: ...

    def apply(self, state: ProtocolState, party: str, action: Action) -> ProtocolState: ...

    def pass_turn(self, state: ProtocolState) -> ProtocolState:
        """End the current party's turn without a move: the referee blocked its move, or
        the driver passed the turn of a seat left idle past its timeout.  A pass is never
        an acceptance (nor an approval): it may not add to ``accepted_by``, so passes
        alone never make an agreement; and it advances the turn and the round clock as a
        move would, so the deadline still ends a run of passes."""
        ...

    def config_problems(self, config: ProtocolConfig, parties: Sequence[str]
                        ) -> dict[str, str]:
        """What in the scenario's ``protocol:`` section does not suit this protocol:
        field name → what to change (empty when it suits)."""
        ...

    def departed(self, state: ProtocolState) -> tuple[str, ...]:
        """Parties that left while the others went on (they get and pay nothing)."""
        ...

    def published(self, before: ProtocolState, after: ProtocolState) -> Offer | None:
        """The text the protocol itself put on the table with this move (a mediator's
        revision), or ``None``; the engine records it as a ``mediator_text`` event."""
        ...

    def describe_proposer(self, proposer: str) -> str | None:
        """How the referee describes an agreement whose standing proposer is
        ``proposer`` when the protocol composed it (e.g. a mediator); ``None`` when a
        party proposed it and must answer for it with a rationale."""
        ...


class ProtocolBase:
    """The hooks of a protocol in which parties make every offer and nobody leaves early:
    subclass it and override what your protocol does differently."""

    name: str
    description: str

    @property
    def rules(self) -> str:
        return self.description

    def config_problems(self, config: ProtocolConfig, parties: Sequence[str]
                        ) -> dict[str, str]:
        if config.min_coalition is not None:
            return {"min_coalition": f"{self.name} ends when a party walks away; use "
                                     "mediated_single_text or remove min_coalition"}
        return {}

    def departed(self, state: ProtocolState) -> tuple[str, ...]:
        return ()

    def published(self, before: ProtocolState, after: ProtocolState) -> Offer | None:
        return None

    def describe_proposer(self, proposer: str) -> str | None:
        return None
