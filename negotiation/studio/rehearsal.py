"""A rehearsal: one durable run of the graph driver with people in some seats.

Each rehearsal is an ordinary ``negotiate run`` (:func:`negotiation.graph.start_run`, or
:func:`~negotiation.graph.resume_run` after a restart) driven in the background.  A human
seat's turn is the graph's interrupt; :meth:`Rehearsal.answer` waits for that seat's move
over HTTP (or, past the idle timeout, passes the turn or lets a rule-based strategy play
it) and hands it back, so the move goes through the same session and referee as at the
terminal.  Sign-off
appends to the transcript through :func:`negotiation.lifecycle.sign_off`, signed with a
server-side key when the scenario declares signatories.

Next to the transcript a small ``<run>.studio.json`` keeps what the transcript does not:
the sha256 of each seat's secret token (never the token), the idle settings and the
approvals gathered so far, so that a restarted server recognises the same links.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents import View
from agents.base import claims_stand_in
from negotiation import files
from negotiation.engine import HUMAN
from negotiation.errors import InputError, NegotiationError, RefusedError
from negotiation.events import EventType
from negotiation.idle import IdlePolicy, OnIdle
from negotiation.lifecycle import SignOffError, Status, sign_off, status_of
from negotiation.model import ACTION, Action, Propose, Scenario
from negotiation.studio.seating import Table, current_round, observer_view, seat_view, text
from negotiation.transcript import verify
from negotiation.utility import InvalidOfferError

SIDECAR = ".studio.json"


class MoveRefused(RefusedError):
    """A seat's move that cannot be played now (not its turn, not legal, off the grid)."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sidecar_path(transcript: Path) -> Path:
    return transcript.with_suffix(SIDECAR)


class Sidecar(BaseModel):
    """What the studio keeps next to a rehearsal's transcript (no secret in clear)."""

    model_config = ConfigDict(extra="forbid")

    seats: dict[str, str]
    observer: str
    #: Seconds a seat may take for a turn (a time: "nan" or "inf" in an edited file
    #: would pass turns at random or record a number no transcript can hold).
    idle_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    idle_strategy: str = "conceder"
    on_idle: OnIdle = "strategy"
    approvals: dict[str, str] = {}
    rejections: dict[str, str] = {}


@dataclass
class Turn:
    """A person's turn in progress: the view the session built, and where the move goes
    (a future of the driver's loop)."""

    party: str
    view: View
    move: asyncio.Future[Action]
    loop: asyncio.AbstractEventLoop
    #: When the idle timeout takes the turn, on the driver loop's clock (``None``: never):
    #: the driver waits until then, and the pages count down to it.
    deadline: float | None = None
    #: Set once the seat's move (on the server's loop) or the timeout (on the driver's)
    #: has taken this turn: from then on the seat is no longer told it is its turn.
    taken: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self) -> bool:
        """Take the turn; ``False`` if it was already taken.  The two threads that may
        take it decide under a lock, so a move acknowledged to its seat is the move played,
        never dropped for the idle seat's stand-in."""
        with self._lock:
            if self.taken:
                return False
            self.taken = True
            return True


class _Seated:
    """The person ``open_run`` seats: every turn is answered by :meth:`Rehearsal.answer`."""

    def prompt(self, view: View) -> Action:
        raise RefusedError("a studio seat is answered over HTTP, not at a terminal")


@dataclass
class Rehearsal:
    """One rehearsal: its run, its seats, and what changed for whoever is watching."""

    transcript: Path
    scenario: Scenario
    specs: dict[str, str]
    sidecar: Sidecar
    seed: int = 0
    rounds: int | None = None
    signing_keys: Mapping[str, Ed25519PrivateKey] = field(default_factory=dict)
    #: The header options of a new run: the ZOPA verdict ``negotiate run --anyway`` records.
    options: Mapping[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    turn: Turn | None = None
    problem: str | None = None
    running: bool = False
    #: Counts the changes the pages are sent; a page skips a state no newer than the one
    #: it shows (a late answer to its own /state request).  It starts at the clock
    #: (microseconds), but a page compares versions only within one :attr:`epoch`.
    version: int = field(default_factory=lambda: time.time_ns() // 1000)
    #: This server's run of the rehearsal: a restarted server's count may start below the
    #: version a page shows (a clock set back, another machine), so a page shows the state
    #: of a new epoch whatever its version, and never again one of an epoch it has left.
    epoch: str = field(default_factory=lambda: secrets.token_hex(8))

    def __post_init__(self) -> None:
        self.table = Table(self.scenario)
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        #: The server's loop (pages, streams, moves); the run itself is driven on the
        #: studio's driver loop, and reaches this one only through ``call_soon_threadsafe``.
        self._loop = asyncio.get_running_loop()

    @property
    def id(self) -> str:
        return self.transcript.stem

    @property
    def people(self) -> list[str]:
        return [party for party, spec in self.specs.items() if spec == HUMAN]

    # --- who is asking ------------------------------------------------------------------

    def seat_of(self, token: str) -> str | None:
        """The organisation whose secret ``token`` this is, compared in constant time."""
        wanted = digest(token)
        found = None
        for party, stored in self.sidecar.seats.items():
            if hmac.compare_digest(stored, wanted):
                found = party
        return found

    def is_observer(self, token: str) -> bool:
        return hmac.compare_digest(self.sidecar.observer, digest(token))

    # --- live updates -------------------------------------------------------------------

    def record(self, event: dict[str, Any]) -> None:
        """An event just written by the run (on the driver's loop)."""
        self._loop.call_soon_threadsafe(self._append, event)

    def _append(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.notify()

    def notify_soon(self) -> None:
        """:meth:`notify`, from the driver's loop."""
        self._loop.call_soon_threadsafe(self.notify)

    def notify(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, seen: int, timeout: float) -> int:
        """Wait until the version moves past ``seen`` (or ``timeout`` passes)."""
        if self.version == seen:
            waiter = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), timeout)
        return self.version

    # --- the run ------------------------------------------------------------------------

    async def run(self, *, resume: bool) -> None:
        """Drive the run to its end (or until the server stops): a new one, or one that a
        restart left open, continued from its transcript and checkpoints."""
        from negotiation.graph import resume_run, start_run  # LangGraph loads with a run

        self.running = True
        self.notify_soon()
        try:
            if resume:
                await resume_run(self.transcript, on_event=self.record, answer=self.answer,
                                 person=_Seated())
            else:
                await start_run(self.scenario, transcript=self.transcript, seed=self.seed,
                                rounds=self.rounds, agents=self.specs, person=_Seated(),
                                on_event=self.record, answer=self.answer,
                                options=self.options)
        except NegotiationError as error:
            self.problem = text(error)
        except Exception as error:  # a bug must not leave the seats waiting in silence
            self.problem = text(f"the run failed: {type(error).__name__}: {error}")
            raise
        finally:
            self.running = False
            self._show_turn(None)

    async def answer(self, payload: Any, session: Any) -> Any:
        """The graph paused for a person: wait for their seat's move (or, past the idle
        timeout, pass the turn or stand in)."""
        if not isinstance(payload, dict) or payload.get("kind") != "human_turn":
            return None
        view: View = session.current_view()
        loop = asyncio.get_running_loop()
        timeout = self.sidecar.idle_timeout
        deadline = None if timeout is None else loop.time() + timeout
        turn = Turn(view.party, view, loop.create_future(), loop, deadline=deadline)
        self._show_turn(turn)
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    action = await asyncio.shield(turn.move)
            except TimeoutError:
                if not turn.take():  # the seat's move came in as time ran out: play it
                    action = await turn.move
                else:
                    self.notify_soon()  # the seat's page stops offering its moves
                    policy = self.idle_policy()
                    assert policy is not None  # only a timeout ends a turn unanswered
                    return await policy.take_over(session, view, self.seed)
        finally:
            self._show_turn(None)
        return action.model_dump(mode="json", exclude_none=True)

    def idle_policy(self) -> IdlePolicy | None:
        """How long a person's turn waits and what happens then (``None``: no limit)."""
        timeout = self.sidecar.idle_timeout
        return None if timeout is None else IdlePolicy(timeout, self.sidecar.on_idle,
                                                       self.sidecar.idle_strategy)

    def _show_turn(self, turn: Turn | None) -> None:
        """Whose turn it is, set on the server's loop (from the driver's) behind the events
        recorded before it: a seat is never told it is its turn without the moves that
        led to it."""
        self._loop.call_soon_threadsafe(self._set_turn, turn)

    def _set_turn(self, turn: Turn | None) -> None:
        self.turn = turn
        self.notify()

    def submit(self, party: str, move: Mapping[str, Any]) -> None:
        """A seat's move, checked as the session will check it before it is handed over."""
        turn = self.turn
        if turn is None or turn.party != party or turn.taken:
            raise MoveRefused("it is not your turn: wait for the other parties")
        try:
            action = ACTION.validate_python(dict(move))
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in error.errors()[:3])
            raise MoveRefused(f"the move is not valid: {problems}") from None
        if not action.rationale.strip():
            raise MoveRefused("give a short reason: every move is recorded with who made it "
                              "and why")
        if claims_stand_in(action.rationale):
            raise MoveRefused("say it in your own words: '[seat idle for …' marks the moves "
                              "the idle strategy plays, and this move is yours")
        if action.kind not in turn.view.legal:
            raise MoveRefused(f"'{action.kind}' is not allowed now; allowed: "
                              f"{sorted(turn.view.legal)}")
        if isinstance(action, Propose):
            try:
                turn.view.utility(action.offer)
            except (InvalidOfferError, KeyError, TypeError, ValueError) as error:
                raise MoveRefused(f"the offer is not valid: {text(error)}") from None
        if not turn.take():
            raise MoveRefused("your turn has ended: the seat was idle past the turn timeout")
        turn.loop.call_soon_threadsafe(_settle, turn.move, action)
        self.notify()

    # --- sign-off -----------------------------------------------------------------------

    async def decide(self, party: str, *, approve: bool, comment: str) -> None:
        """Record ``party``'s seat's approval or rejection of the agreement."""
        async with self._lock:
            status = status_of(self.events)
            if status is not Status.PENDING:
                raise SignOffError(f"there is nothing to sign now (status: {status.value})")
            names = self.table.names
            if self.scenario.signatories:
                key = self.signing_keys.get(party)
                if key is None:
                    raise SignOffError(
                        f"this server holds no signatory key for {party}: sign with "
                        f"'negotiate review {self.transcript} --as {party}' on the machine "
                        "that holds it")
                await asyncio.to_thread(sign_off, self.transcript, approve=approve,
                                        comment=comment, org=party, key=key)
            elif not approve:
                self.sidecar.rejections[party] = comment.strip()
                self.save()
                await asyncio.to_thread(sign_off, self.transcript, approve=False,
                                        comment=comment,
                                        reviewer=f"{names[party]} seat (studio)")
            else:
                if party in self.sidecar.approvals:
                    raise SignOffError("you have already approved; waiting for the others")
                self.sidecar.approvals[party] = comment.strip()
                self.save()
                if all(p in self.sidecar.approvals for p in self.people):
                    who = " and ".join(f"{names[p]} seat" for p in self.people)
                    # Each comment quoted (JSON string): one seat's comment cannot
                    # pass for another seat's words ("ok; Beta: we waive the pot").
                    said = "; ".join(f"{names[p]}: {json.dumps(self.sidecar.approvals[p])}"
                                     for p in self.people if self.sidecar.approvals[p])
                    await asyncio.to_thread(sign_off, self.transcript, approve=True,
                                            comment=said, reviewer=f"{who} (studio)")
            self.events = verify(self.transcript).events
            self.notify()

    def signoff_state(self, party: str | None) -> dict[str, Any]:
        status = status_of(self.events)
        decisions = [e for e in self.events if e["type"] == EventType.SIGNOFF]
        mine = None
        if party is not None:
            mine = next((e["decision"] for e in decisions if e.get("org") == party), None)
            if mine is None and party in self.sidecar.approvals:
                mine = "approve"
            if mine is None and party in self.sidecar.rejections:
                mine = "reject"
        signed = bool(self.scenario.signatories)
        return {"status": status.value, "signed": signed,
                "can_sign": party is not None and (not signed or party in self.signing_keys),
                "decided": mine,
                "approved": sorted(self.sidecar.approvals) if not signed else
                sorted({e["org"] for e in decisions if e.get("decision") == "approve"}),
                "ratified": status is Status.RATIFIED}

    # --- projections --------------------------------------------------------------------

    def seat_state(self, party: str) -> dict[str, Any]:
        turn = self.turn
        legal = sorted(turn.view.legal) \
            if turn is not None and turn.party == party and not turn.taken else None
        pending = turn.view.state.round if turn is not None else None
        state = seat_view(self.table, party, self.events, legal,
                          current_round(self.events, pending))
        state["waiting_for"] = self._waiting_for()
        state["countdown"] = self._countdown()
        state["signoff"] = self.signoff_state(party) if state["outcome"] else None
        state["problem"] = self.problem
        state["version"] = self.version
        state["epoch"] = self.epoch
        return state

    def observer_state(self) -> dict[str, Any]:
        state = observer_view(self.table, self.events, self._waiting_for())
        state["countdown"] = self._countdown()
        state["signoff"] = self.signoff_state(None) if state["outcome"] else None
        state["problem"] = self.problem
        state["version"] = self.version
        state["epoch"] = self.epoch
        return state

    def _waiting_for(self) -> str | None:
        if self.turn is not None and not self.turn.taken:
            return self.table.names.get(self.turn.party, self.turn.party)
        return None

    def _countdown(self) -> dict[str, Any] | None:
        """How long the seat whose turn it is has left, and what happens then: the
        driver's own deadline, so a page loaded late shows the time that truly remains."""
        turn = self.turn
        if turn is None or turn.taken or turn.deadline is None:
            return None
        left = max(0.0, turn.deadline - turn.loop.time())
        return {"party": turn.party, "name": self.table.names.get(turn.party, turn.party),
                "seconds_left": round(left, 3), "on_idle": self.sidecar.on_idle,
                "strategy": text(self.sidecar.idle_strategy)}

    # --- persistence --------------------------------------------------------------------

    def save(self) -> None:
        files.write_file(sidecar_path(self.transcript),
                         self.sidecar.model_dump_json(indent=1), replace=True)


def _settle(move: asyncio.Future[Action], action: Action) -> None:
    if not move.done():
        move.set_result(action)


def new_tokens(parties: list[str]) -> tuple[dict[str, str], str]:
    """A secret link token per seat and one for the observer (256 bits each)."""
    return {party: secrets.token_urlsafe(32) for party in parties}, secrets.token_urlsafe(32)


def load_sidecar(path: Path) -> Sidecar:
    try:
        return Sidecar.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a studio file ({error})") from None
