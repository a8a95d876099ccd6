"""The run context: one entry, :func:`open_run`, that builds everything a negotiation needs,
and the plain driver that plays it.

Every way of running a negotiation goes through :func:`open_run` — the plain loop
(:func:`run_scenario`, tournaments, campaign stages, the pytest plugin) and the durable
graph (:mod:`negotiation.graph`) — and every resumed run through :func:`reopen_run`, which
re-plays it against its transcript before either driver continues it.  ``open_run`` resolves each
organisation's strategy, creates the LLM client when an LLM sits, seats a person, opens the
transcript and writes (or, resuming, re-checks) its header.  The drivers then differ only
in how they schedule and persist the one turn function, :meth:`Session.turn`, and every
driver delivers each event to the same ``on_event`` callback as it is recorded.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from agents import Memory, View
from negotiation.events import EventError, EventType, Header, Transcript
from negotiation.model import Action, Scenario
from negotiation.seats import (
    HUMAN,
    LLM,
    LLMOptions,
    agent_specs,
    build_agents,
    is_llm,
    llm_settings,
    new_llm_run,
)
from negotiation.session import (
    Clock,
    EventHook,
    Negotiation,
    RunResult,
    Session,
    ViewHook,
    analysis_of,
    package_version,
)
from negotiation.transcript import (
    TranscriptError,
    TranscriptWriter,
    embedded_scenario,
    negotiation_of,
    now,
)

if TYPE_CHECKING:
    from agents.llm_client import LLMRun

__all__ = [
    "HUMAN", "LLM", "Clock", "EventHook", "LLMOptions", "Negotiation", "Person", "PersonSeat",
    "RunContext", "RunResult",
    "Session", "ViewHook", "agent_specs", "analysis_of", "build_agents", "is_llm",
    "llm_settings", "new_llm_run", "new_transcript_path", "open_run", "package_version",
    "reopen_run", "resumable_header", "run_scenario",
]


class Person(Protocol):
    """Someone who takes a seat: asked for a move with the turn's view."""

    def prompt(self, view: View) -> Action: ...


@dataclass
class PersonSeat:
    """A person's seat under the plain driver: asked during the turn itself.  (The graph
    driver pauses instead, and :meth:`RunContext.answer` asks the same person.)"""

    person: Person
    #: A resumed run takes a person's earlier moves from the transcript.
    replay_from_transcript: ClassVar[bool] = True

    async def act(self, view: View) -> Action:
        return self.person.prompt(view)


@dataclass
class RunContext:
    """Everything one negotiation needs, opened by :func:`open_run`."""

    session: Session
    specs: dict[str, str]
    #: The run's LLM client, if an LLM sits (shared by its agents).
    llm_run: LLMRun | None
    #: The person in a human seat, if one sits.
    person: Person | None = None

    @property
    def writer(self) -> TranscriptWriter:
        return self.session.writer

    @property
    def path(self) -> Path | None:
        return self.session.writer.path

    async def play(self, pace: float = 0.0) -> RunResult:
        """The plain driver: every turn in one loop (``pace`` seconds before each)."""
        return await self.session.play(pace)

    def answer(self, payload: Any, session: Session) -> Any:
        """Answer a durable run's pause: a human seat's turn is asked of :attr:`person`
        with the turn's own view; any other pause (sign-off) is left unanswered."""
        if isinstance(payload, dict) and payload.get("kind") == "human_turn" and \
                self.person is not None:
            action = self.person.prompt(session.current_view())
            return action.model_dump(mode="json", exclude_none=True)
        return None


@asynccontextmanager
async def open_run(scenario: Scenario, *, agents: Mapping[str, str] | None = None,
                   seed: int = 0, rounds: int | None = None, transcript: Path | None = None,
                   resume: bool = False, fsync: bool = True, llm_run: LLMRun | None = None,
                   llm: LLMOptions | None = None, on_event: EventHook | None = None,
                   on_view: ViewHook | None = None, options: Mapping[str, Any] | None = None,
                   memory: Mapping[str, Memory] | None = None, person: Person | None = None,
                   durable: bool = False, wall: dict[str, Any] | None = None,
                   clock: Clock | None = None) -> AsyncIterator[RunContext]:
    """Open one negotiation of ``scenario`` and write its header.

    ``agents`` overrides organisations' strategies; the transcript goes to ``transcript``
    (kept in memory when ``None``), or, with ``resume``, the run re-plays against that
    existing transcript.  ``llm_run`` is a caller's shared LLM client (else one is made
    from ``llm`` when an LLM sits, and closed at the end).  ``person`` takes a human seat
    (by default a person at this terminal); a ``durable`` run pauses for them instead, and
    :meth:`RunContext.answer` asks them.  ``options`` go into the header, ``memory`` is
    what each party remembers of earlier stages (campaigns), ``wall`` the header's
    wall-clock fields, ``clock`` the seconds clock a deadline in seconds is read from
    (default ``time.monotonic``).
    """
    specs = agent_specs(scenario, agents)
    negotiation = Negotiation(scenario, rounds=rounds)
    if HUMAN in specs.values() and person is None:
        from agents.human import HumanAgent  # the terminal seat: rich loads only here

        person = HumanAgent()
    seat: Any = None if person is None else PersonSeat(person)
    if durable and person is not None:
        from agents.human import InterruptingHuman

        seat = InterruptingHuman()
    own_llm = llm_run is None and any(is_llm(spec) for spec in specs.values())
    if own_llm:
        llm_run = new_llm_run(llm)
    try:
        # Agents first: an extension that fails to load must not leave an empty transcript.
        built = build_agents(specs, seed, scenario, llm_run, human=lambda: seat)
        if llm_run is not None and any(is_llm(spec) for spec in specs.values()):
            # Once the agents stand (a missing key writes nothing): a replay of another run
            # is refused before any transcript is written, and a recording names the run.
            llm_run.begin_run(scenario.id, negotiation.analysis.digest, seed, specs)
        writer = TranscriptWriter.resume(transcript) if resume and transcript is not None \
            else TranscriptWriter(transcript, fsync=fsync)
        try:
            session = negotiation.session(built, seed=seed, writer=writer, specs=specs,
                                          on_event=on_event, options=options, memory=memory,
                                          on_view=on_view, clock=clock)
            session.open(wall=wall)
            yield RunContext(session, specs, llm_run, person)
        finally:
            writer.close()
    finally:
        if own_llm and llm_run is not None:
            await llm_run.aclose()


@asynccontextmanager
async def reopen_run(transcript: Path, *, on_event: EventHook | None = None,
                     on_resumed: Callable[[int], None] | None = None,
                     person: Person | None = None, durable: bool = False,
                     clock: Clock | None = None) -> AsyncIterator[RunContext]:
    """Re-open an interrupted run from its transcript alone, for a driver to continue.

    The run is re-played deterministically against the transcript: events already on disk
    are checked and adopted, not written twice (a divergence is an error), nobody is asked
    twice, LLM calls are answered from the recording beside it and a deadline in seconds
    reads the recorded clock.  Then a ``resumed`` event marks the seam (``on_resumed`` is
    told how many events were caught up) and ``on_event`` sees every event from there on.
    ``durable`` as for :func:`open_run`."""
    from negotiation.registry import header_problems  # it names the engine's seats
    from negotiation.run_files import calls_path

    with TranscriptWriter.resume(transcript) as pending:
        header, scenario = resumable_header(pending.peek_pending()[0], transcript)
    assert header.protocol is not None
    specs: dict[str, str] = dict(header.agents)
    problems = list(header_problems(specs, scenario))
    if problems:  # an import path in a file is never imported
        raise TranscriptError(f"{transcript}: " + "; ".join(map(str, problems)))
    async with open_run(scenario, agents=specs, seed=header.seed,
                        rounds=header.protocol.rounds, transcript=transcript,
                        resume=True, llm=LLMOptions(record=calls_path(transcript),
                                                    replay_first=True),
                        options=header.options, person=person,
                        durable=durable, clock=clock) as run:
        session, writer = run.session, run.writer
        while writer.replaying and not session.done:
            await session.turn()
        if writer.replaying:
            raise TranscriptError(f"{transcript}: the re-run ended before reaching the end "
                                  "of the transcript; it cannot be resumed")
        caught_up = len(writer.events)
        session.on_event = on_event
        session.record(EventType.RESUMED, {"after_seq": caught_up - 1,
                                           "reason": "continued after an interruption"})
        if on_resumed is not None:
            on_resumed(caught_up)
        yield run


def resumable_header(record: Mapping[str, Any], transcript: Path) -> tuple[Header, Scenario]:
    """The typed header of a run to resume and the scenario it embeds; ``TranscriptError``
    (never a traceback) for a header that negotiate never wrote: no negotiation, no
    protocol, or an embedded scenario that is not one."""
    try:
        header = negotiation_of(Transcript.of([record]), transcript)
    except EventError as error:
        raise TranscriptError(f"{transcript}: {error}") from None
    if header.protocol is None:
        raise TranscriptError(f"{transcript}: line 1: the header names no protocol; the "
                              "header was not written by negotiate")
    return header, embedded_scenario(header)


def new_transcript_path(out_dir: Path, scenario: Scenario, seed: int) -> Path:
    """A fresh file name ``<scenario>-seed<N>-<UTC time>-<8 hex>.jsonl`` not in use yet.

    The random part keeps runs started in one folder in the same second apart: each picks
    its name before any of them has written (a counter over existing files would give them
    all the same one).  The writer links the file into place exclusively, so even a clash
    of the 32 random bits could never overwrite a transcript."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TranscriptError(f"cannot create the transcript folder {out_dir}: "
                              f"{error.strerror or error}") from None
    stem = f"{scenario.id}-seed{seed}-{now():%Y%m%dT%H%M%SZ}"
    while True:
        path = out_dir / f"{stem}-{secrets.token_hex(4)}.jsonl"
        if not os.path.lexists(path):
            return path


async def run_scenario(scenario: Scenario, *, seed: int = 0, rounds: int | None = None,
                       agents: Mapping[str, str] | None = None, out_dir: Path | None = None,
                       transcript: Path | None = None, on_event: EventHook | None = None,
                       fsync: bool = True, llm_run: LLMRun | None = None,
                       llm: LLMOptions | None = None, person: Person | None = None,
                       on_view: ViewHook | None = None,
                       options: Mapping[str, Any] | None = None,
                       clock: Clock | None = None, pace: float = 0.0) -> RunResult:
    """Run ``scenario`` with the plain driver and rule-based (or overridden) agents; write
    the transcript to ``transcript``, or a new file in ``out_dir``, or keep it in memory
    when neither is given.  ``options`` go into the header; ``clock`` is read under a
    deadline in seconds (default ``time.monotonic``); ``pace`` seconds pass before each
    turn."""
    path = transcript
    if path is None and out_dir is not None:
        path = new_transcript_path(out_dir, scenario, seed)
    async with open_run(scenario, agents=agents, seed=seed, rounds=rounds, transcript=path,
                        fsync=fsync, llm_run=llm_run, llm=llm, on_event=on_event,
                        on_view=on_view, person=person, options=options, clock=clock) as run:
        return await run.play(pace)
