"""What an agent is given and what it returns.

An agent sees a ``View``: the public scenario, its own organisation's private preferences
(with a compiled utility function over the shared outcome space), the protocol state and
the public history.  It never receives the ``Scenario`` itself, so another organisation's
weights, scores, reservation value and red lines are out of its reach by construction.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, overload, runtime_checkable

from negotiation.frozen import quick_init
from negotiation.guardrails import Feedback
from negotiation.model import (
    Action,
    ActionKind,
    Offer,
    Preferences,
    PublicScenario,
    TermValue,
)
from negotiation.utility import OutcomeSpace, UtilityFunction, discount_factor
from protocols.base import ProtocolState


@quick_init  # built on every turn
@dataclass(frozen=True, slots=True)
class Move:
    """One public move: who did what, in which round, and which of its texts
    (``rationale``, ``message``) the referee flagged as instruction-like (policy warn)."""

    round: int
    party: str
    action: Action
    flagged: tuple[str, ...] = ()


class History(Sequence[Move]):
    """A read-only window on the moves so far (shared, never copied, per turn)."""

    __slots__ = ("_moves",)

    def __init__(self, moves: list[Move]) -> None:
        self._moves = moves

    @overload
    def __getitem__(self, index: int) -> Move: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Move]: ...
    def __getitem__(self, index: int | slice) -> Move | Sequence[Move]:
        return self._moves[index]

    def __len__(self) -> int:
        return len(self._moves)

    def __iter__(self) -> Iterator[Move]:
        return iter(self._moves)

    def __reversed__(self) -> Iterator[Move]:
        return reversed(self._moves)


@dataclass(frozen=True, slots=True)
class StageRecord:
    """What one party remembers of an earlier stage of a campaign (its own view only)."""

    stage: str
    kind: str
    status: str
    #: The terms agreed in that stage (public to everyone who was at the table).
    agreement: Mapping[str, TermValue] | None = None
    #: The public moves of that stage, when this party took part in it.
    moves: tuple[Move, ...] = ()
    #: This party's trust in each partner after the stage, in [0, 1].
    trust: Mapping[str, float] = field(default_factory=dict)
    #: This party's realised value of the agreement in force (evaluation stages).
    realised: float | None = None


@dataclass(frozen=True, slots=True)
class Memory:
    """Earlier stages of a campaign, as one party remembers them."""

    earlier: tuple[StageRecord, ...]
    #: The agreement in force, expressed in this stage's outcome space (``None``: none).
    status_quo: Offer | None = None
    #: This party's current trust in each partner at the table.
    trust: Mapping[str, float] = field(default_factory=dict)


@quick_init  # built on every turn
@dataclass(frozen=True, slots=True)
class View:
    """Everything one party may know when it is its turn."""

    party: str
    scenario: PublicScenario
    preferences: Preferences
    space: OutcomeSpace
    utility: UtilityFunction
    state: ProtocolState
    history: History
    legal: frozenset[ActionKind]
    feedback: Feedback | None = None
    memory: Memory | None = None
    #: Parties that left while the others went on (the protocol says who): whoever left
    #: gets and pays nothing.
    departed: tuple[str, ...] = ()
    #: Seconds of negotiation so far and the deadline in seconds, when the scenario sets
    #: one (``protocol.seconds``); read from the driver's clock, recorded in the transcript.
    elapsed: float | None = None
    deadline_seconds: float | None = None

    @property
    def time(self) -> float:
        """Relative time ``t ∈ [0, 1]``: the share of the deadline already used (of the
        rounds, or of the seconds when that is larger)."""
        state = self.state
        rounds = (state.round + state.turn / len(state.parties)) / state.max_rounds
        if self.elapsed is None or not self.deadline_seconds:
            return rounds
        return max(rounds, min(self.elapsed / self.deadline_seconds, 1.0))

    @property
    def discount_factor(self) -> float:
        """d^t: what each unit of utility of an agreement reached now is worth to this
        party (GENIUS-style discounting; 1 when its organisation does not discount)."""
        return discount_factor(self.preferences.discount, self.time)

    @property
    def standing_offer(self) -> Offer | None:
        return self.state.standing_offer


#: The ``kind`` of a paused person's turn resumed with the driver's pass (an idle seat).
IDLE_PASS = "idle_pass"


#: How the rationale of a move the idle strategy played for a person begins: what the
#: transcript says of who played it, so no person may write it themselves.
STAND_IN_MARK = "[seat idle for "


def claims_stand_in(rationale: str) -> bool:
    """Whether ``rationale`` says, however spelt (width, case, spacing, invisible
    characters), that the idle strategy played the move: a person's own may not."""
    folded = unicodedata.normalize("NFKC", rationale)
    folded = "".join(c for c in folded if unicodedata.category(c) != "Cf")
    return STAND_IN_MARK.strip().casefold() in " ".join(folded.split()).casefold()


#: The ``kind`` of a paused person's turn resumed with the idle strategy's failure: the
#: seat's turn then fails like any agent's (an ``error`` event ends the run).
STAND_IN_FAILED = "idle_stand_in_failed"


class StandInFailed(Exception):
    """The strategy standing in for an idle seat failed to play its turn."""


class TurnPassed(Exception):
    """A person's paused seat was resumed with the driver's decision to pass its turn
    (``Session.pass_idle``), replayed by the graph after a crash before the pass was
    recorded: the session records ``passed``, as if the turn had been taken again then."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"the turn was passed after {timeout:g} s")
        self.timeout = timeout


@runtime_checkable
class Agent(Protocol):
    """A negotiator for one organisation."""

    async def act(self, view: View) -> Action:
        """Choose this turn's action from ``view.legal``."""
        ...


def derive_seed(seed: int, party: str) -> int:
    """A per-party seed that does not depend on Python's randomised ``hash``."""
    digest = hashlib.sha256(f"{seed}:{party}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
