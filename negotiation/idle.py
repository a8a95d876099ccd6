"""A person's seat left idle past the turn timeout, in the studio and at the terminal alike.

What happens is the driver's decision on a paused (durable) turn, as configured:

- ``pass``: :meth:`Session.pass_idle`; the session records a ``passed`` event and the
  protocol's ``pass_turn`` moves the table on (never an acceptance);
- ``strategy``: a rule-based strategy plays that one turn, checked by the referee like
  the person's move would be; its rationale says who played it, so the transcript does.

A terminal seat waits with an interval timer (``SIGALRM``) around the person's prompt, so
it works only in the main thread of a Unix process (the CLI's); the studio waits on its
turn's future instead.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from agents import View, make_agent
from agents.base import STAND_IN_FAILED, STAND_IN_MARK
from negotiation.errors import InputError
from negotiation.model import Action

if TYPE_CHECKING:
    from negotiation.session import Session

#: What happens to a seat left idle past the turn timeout: its turn passes, or the idle
#: strategy plays it.
OnIdle = Literal["strategy", "pass"]


#: The longest turn a person may be given (a week): an interval timer refuses far longer
#: ones (``setitimer`` overflows past ~1e9 s), and no rehearsal waits longer for a move.
MAX_TIMEOUT = 7 * 24 * 3600.0


class IdleSettingError(InputError):
    """An idle timeout or policy that no run can honour."""


def check_timeout(seconds: float) -> float:
    """``seconds`` if it is a turn's timeout a run can honour, else :class:`IdleSettingError`."""
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT):
        raise IdleSettingError(f"the idle timeout (--idle-timeout) must be a number of "
                               f"seconds above 0 and at most {MAX_TIMEOUT:g} (a week), "
                               f"not {seconds}")
    return seconds


def check_settings(timeout: float | None, strategy: str) -> None:
    """Refuse idle settings no run can honour before anything starts: a timeout out of
    range, or an unknown idle strategy (it would fail only at the first idle turn)."""
    if timeout is not None:
        check_timeout(timeout)
    make_agent(strategy, party="-", seed=0)


class SeatIdle(Exception):
    """The person did not answer within the turn's timeout."""


async def stand_in(view: View, strategy: str, seed: int, waited: float) -> Action:
    """An idle seat's turn, played by the rule-based ``strategy``; the move's rationale
    says so, so the transcript records it."""
    agent = make_agent(strategy, party=view.party, seed=seed)
    action = await agent.act(view)
    note = f"{STAND_IN_MARK}{waited:g} s: the {strategy} strategy played this turn] "
    return action.model_copy(update={"rationale": note + action.rationale})


@dataclass(frozen=True)
class IdlePolicy:
    """How long a person's turn waits, and what their turn gets after that."""

    timeout: float
    on_idle: OnIdle = "strategy"
    strategy: str = "conceder"

    def consequence(self) -> str:
        """What happens to the turn, told to the person ("…; after that, <this>")."""
        if self.on_idle == "pass":
            return "your turn passes (no move: the offer on the table stays)"
        return f"the {self.strategy} strategy plays it for you"

    async def take_over(self, session: Session, view: View, seed: int) -> Any:
        """What the paused turn resumes with once the seat has been idle too long: the
        session's pass, or the stand-in strategy's move."""
        if self.on_idle == "pass":
            return session.pass_idle(self.timeout)
        try:
            action = await stand_in(view, self.strategy, seed, self.timeout)
        except Exception as error:  # the seat's turn fails as an agent's would, recorded
            return {"kind": STAND_IN_FAILED,
                    "error": f"the {self.strategy} strategy standing in for the idle seat "
                             f"failed: {type(error).__name__}: {error}"}
        return action.model_dump(mode="json", exclude_none=True)

    def record(self) -> dict[str, Any]:
        """The policy as a run's header records it, so a resumed run keeps it."""
        return {"timeout": self.timeout, "on_idle": self.on_idle, "strategy": self.strategy}

    @classmethod
    def recorded(cls, options: Mapping[str, Any]) -> IdlePolicy | None:
        """The policy a header's ``options`` record (``None``: the turns were not timed);
        :class:`IdleSettingError` when it is not one this run can honour."""
        idle = options.get("idle")
        if idle is None:
            return None
        try:
            policy = cls(float(idle["timeout"]), idle["on_idle"], str(idle["strategy"]))
        except (TypeError, KeyError, ValueError) as error:
            raise IdleSettingError(f"the recorded idle policy is malformed ({error!r})") \
                from None
        if policy.on_idle not in ("pass", "strategy"):
            raise IdleSettingError(f"the recorded idle policy's on_idle is "
                                   f"{policy.on_idle!r}, not 'pass' or 'strategy'")
        check_settings(policy.timeout, policy.strategy)
        return policy


class TerminalPerson(Protocol):
    def prompt(self, view: View) -> Action: ...


@contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raise :class:`SeatIdle` in this (main) thread after ``seconds``, even while it
    blocks reading the terminal."""
    def ring(signum: int, frame: object) -> None:
        raise SeatIdle(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, ring)
    try:
        signal.setitimer(signal.ITIMER_REAL, check_timeout(seconds))
        yield
    finally:
        try:  # the timer may ring in here: the handler is put back whatever happens
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, previous)


def discard_typed_ahead() -> None:
    """Drop what the person typed without pressing Enter before the turn timed out: the
    terminal keeps it for the next read, so "wal" typed then made the next turn's "k" a
    walk-away."""
    import termios

    if sys.stdin.isatty():
        termios.tcflush(sys.stdin, termios.TCIFLUSH)


def timed_answer(person: TerminalPerson, policy: IdlePolicy, seed: int,
                 tell: Callable[[str], None]) -> Callable[[Any, Session], Any]:
    """The answer of a durable run's pauses for a person at this terminal: each turn is
    asked of ``person`` for at most ``policy.timeout`` seconds, then taken over as the
    policy says (``tell`` shows the person what happens).  Only the main thread of a
    Unix process receives ``SIGALRM``: anywhere else this is refused up front."""
    if not hasattr(signal, "setitimer") or \
            threading.current_thread() is not threading.main_thread():
        raise IdleSettingError("a person's timed turn at the terminal needs the main thread "
                               "of a Unix process (an interval timer); elsewhere, time the "
                               "turns with the studio's seats")

    async def answer(payload: Any, session: Session) -> Any:
        if not (isinstance(payload, dict) and payload.get("kind") == "human_turn"):
            return None
        view = session.current_view()
        tell(f"You have {policy.timeout:g} s for this turn; after that "
             f"{policy.consequence()}.")
        try:
            with alarm(policy.timeout):
                action = person.prompt(view)
        except SeatIdle:
            discard_typed_ahead()
            tell(f"\nYou did not answer within {policy.timeout:g} s: "
                 f"{policy.consequence()}.")
            return await policy.take_over(session, view, seed)
        return action.model_dump(mode="json", exclude_none=True)

    return answer
