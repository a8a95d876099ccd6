"""The durable driver: the same Session turns, run as a LangGraph ``StateGraph``.

    START → turn ⟲ (until the protocol ends) → finish → [signoff: interrupt] → END

Graph state is checkpointed after every step to a SQLite file next to the transcript
(``<run>.checkpoints.sqlite``, thread id = the run's file stem).  The transcript stays the
source of truth: a run interrupted at any point (Ctrl-C, crash, SIGKILL) is resumed by
re-running it deterministically against its own transcript — events already on disk are
checked and adopted, not written twice — and then continuing from the graph's checkpoint.
LLM replies are recorded next to the transcript (``<run>.calls.jsonl``) so a resumed run
does not pay for them again.  Inline sign-off pauses the graph with a LangGraph
``interrupt``; ``negotiate review`` resumes it with the reviewer's decision.

A checkpoint database found next to a transcript is untrusted input: every checkpoint
records the hash of its transcript's header (checkpoint metadata ``transcript_head``) and a
database whose checkpoints do not all carry it is refused before LangGraph reads it.  The
serializer reads back only plain data and the LangGraph types this driver writes — never
pickle, never a constructor by import path (:class:`OwnTypesSerializer`).
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypedDict

import aiosqlite
import anyio
import ormsgpack
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt

from negotiation import files
from negotiation.engine import (
    Clock,
    EventHook,
    LLMOptions,
    Person,
    RunContext,
    RunResult,
    Session,
    ViewHook,
    open_run,
    reopen_run,
)
from negotiation.errors import RefusedError
from negotiation.lifecycle import Status, transcript_status
from negotiation.model import Scenario
from negotiation.run_files import calls_path, check_writable, checkpoint_path
from negotiation.transcript import TranscriptError

#: Answers a pause of the graph: (interrupt payload, session) → resume value, or None
#: (or an awaitable of it: a studio seat waits for its person without blocking the loop).
Answer = Callable[[Any, Session], Any]


class RunState(TypedDict, total=False):
    """What the graph checkpoints each step: small, JSON-friendly, no private data."""

    events: int
    status: str
    #: No longer written (every driver delivers events to ``on_event`` as they are
    #: recorded; the transcript holds sign-offs); kept so that older checkpoints load.
    new_events: list[dict[str, Any]]
    signoff: dict[str, Any]


class CheckpointError(RefusedError):
    """A checkpoint database this transcript's run did not create, or one that holds
    something the driver never writes; it is not read."""


#: Checkpoint metadata key that binds every checkpoint to its transcript's header hash.
HEAD_KEY = "transcript_head"

#: The channel under which LangGraph saves the interrupts a paused graph waits on.
_INTERRUPTS = "__interrupt__"
#: The payload of the sign-off pause.
_SIGNOFF_PAUSE = "pending sign-off"

#: The only classes a checkpoint may hold: what LangGraph itself stores for this graph
#: (interrupts for sign-off and human seats, resume commands).  Everything else in the
#: graph state is plain data.
OWN_TYPES: frozenset[tuple[str, str]] = frozenset({
    ("langgraph.types", "Interrupt"),
    ("langgraph.types", "Command"),
    ("langgraph.types", "Send"),
})
#: The ormsgpack ext codes of LangGraph's plain constructors, (module, name, args): the only
#: way this driver's own types are written.  Method calls (3), pydantic models (4, 5) and
#: arrays (6) are never written here, so they are refused even for an allowed class.
_CONSTRUCTOR_CODES = range(0, 3)
_SNAPSHOT_CODE = 7  # a delta snapshot: msgpack inside msgpack


class OwnTypesSerializer(JsonPlusSerializer):
    """LangGraph's serializer, reading back only what this driver writes: plain data and
    :data:`OWN_TYPES`.  Pickle and JSON constructor envelopes are refused outright, and a
    payload naming any other class is refused before LangGraph would import it."""

    def __init__(self) -> None:
        super().__init__(pickle_fallback=False, allowed_json_modules=None,
                         allowed_msgpack_modules=None)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        kind, payload = data
        if kind == "msgpack":
            _scan_msgpack(payload)
        elif kind != "null":
            raise CheckpointError(f"the checkpoint holds a '{kind}' payload, which this "
                                  "program never writes; it is not read")
        return super().loads_typed(data)


def _scan_msgpack(payload: bytes) -> None:
    """Refuse ``payload`` if any extension object in it names a class outside
    :data:`OWN_TYPES`; nothing is imported or constructed while scanning."""
    refused: list[CheckpointError] = []  # ormsgpack does not chain what the hook raised

    def refuse(what: str) -> CheckpointError:
        refused.append(CheckpointError(f"the checkpoint holds {what}, which this program "
                                       "never writes; it is not read"))
        return refused[-1]

    def visit(code: int, data: bytes) -> None:
        if code == _SNAPSHOT_CODE:
            ormsgpack.unpackb(data, ext_hook=visit, option=ormsgpack.OPT_NON_STR_KEYS)
            return None
        if code not in _CONSTRUCTOR_CODES:
            raise refuse(f"an object of kind {code}")
        parts = ormsgpack.unpackb(data, ext_hook=visit, option=ormsgpack.OPT_NON_STR_KEYS)
        named = tuple(parts[:2]) if isinstance(parts, list | tuple) else ()
        if named not in OWN_TYPES:
            raise refuse(".".join(map(str, named)) or "an unnamed object")
        return None

    try:
        ormsgpack.unpackb(payload, ext_hook=visit, option=ormsgpack.OPT_NON_STR_KEYS)
    except Exception as error:  # ormsgpack's wrapper around the hook's error, or bad data
        if refused:
            raise refused[0] from None
        raise CheckpointError(f"the checkpoint cannot be decoded ({error}); it is not "
                              "read") from None


def check_checkpoints(path: Path, *, head: str, thread: str) -> None:
    """Refuse the database at ``path`` unless every checkpoint in it was written for the
    transcript whose header hash is ``head`` (thread ``thread``); a missing file is fine.
    Read with the sqlite3 module only — no LangGraph, no deserialisation."""
    if not path.exists():
        return
    fix = f"remove {path} to continue from the transcript alone"
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            schema = db.execute("SELECT type, name FROM sqlite_master "
                                "WHERE type NOT IN ('table', 'index')").fetchall()
            if schema:
                kind, name = schema[0]
                raise CheckpointError(f"{path}: holds a {kind} '{name}', which this program "
                                      f"never creates; it was not made by this run. {fix}")
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "checkpoints" not in tables:
                return
            foreign = db.execute(
                "SELECT COUNT(*) FROM checkpoints WHERE thread_id IS NOT ? OR "
                "(CASE WHEN json_valid(metadata) THEN json_extract(metadata, ?) END) IS NOT ?",
                (thread, f"$.{HEAD_KEY}", head)).fetchone()[0]
            # Writes of this thread whose checkpoint was never saved (a run stopped between
            # the two, e.g. by a full disk) are never read: LangGraph loads only the writes
            # of the (bound) checkpoint it resumes from.  Any other thread's are foreign.
            orphans = db.execute(
                "SELECT COUNT(*) FROM writes AS w WHERE w.thread_id IS NOT ? AND NOT EXISTS "
                "(SELECT 1 FROM checkpoints AS c WHERE c.thread_id = w.thread_id AND "
                "c.checkpoint_ns = w.checkpoint_ns AND c.checkpoint_id = w.checkpoint_id)",
                (thread,)).fetchone()[0] if "writes" in tables else 0
    except sqlite3.Error as error:
        if _disk_full(path, error):  # e.g. a write-ahead log left by a run that ran out
            raise _checkpoint_failure(path, error, path.with_name(f"{thread}.jsonl")
                                      ) from None
        raise CheckpointError(f"{path}: not a checkpoint database this program can read "
                              f"({error}). {fix}") from None
    if foreign or orphans:
        raise CheckpointError(f"{path}: {foreign + orphans} checkpoint record(s) were not "
                              f"written for this transcript (header {head[:12]}…); the file "
                              f"is not used. {fix}")


def claim_checkpoints(path: Path) -> None:
    """Create the checkpoint database exclusively before SQLite opens it, or refuse a
    symlink where it (or its journal) would be: SQLite itself follows symlinks."""
    refuse_planted(path)
    if not os.path.lexists(path):
        os.close(files.create_exclusive(path))


def refuse_planted(path: Path) -> None:
    """Refuse a symlink where the checkpoint database (or its journal) would be, and a
    database that is not a regular file (SQLite would wait on a FIFO for ever)."""
    for companion in (path, *(path.with_name(path.name + end)
                              for end in ("-journal", "-wal", "-shm"))):
        files.refuse_symlink(companion)
    if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
        raise CheckpointError(f"{path} is not a regular file, so not a checkpoint database "
                              "this program made; remove it to continue from the transcript "
                              "alone")


def _disk_full(path: Path, error: sqlite3.Error) -> bool:
    """SQLite reports a full disk as SQLITE_FULL, or (failing to write its journal or log)
    as a disk I/O error; with less than 1 MiB left, that is the full disk."""
    return "full" in str(error) or ("I/O" in str(error)
                                    and shutil.disk_usage(path.parent).free < 2**20)


def _checkpoint_failure(path: Path, error: sqlite3.Error, transcript: Path) -> TranscriptError:
    if _disk_full(path, error):
        free = shutil.disk_usage(path.parent).free
        return TranscriptError(f"no space left to write the checkpoint database {path} "
                               f"({error}, {free // 1024} KiB free); the transcript is valid "
                               "so far. Free some space and continue with: negotiate resume "
                               f"{transcript}")
    return TranscriptError(f"cannot use the checkpoint database {path}: {error}")


@dataclass
class GraphDriver:
    """Runs one Session through a checkpointed LangGraph graph (without a session, it can
    only answer a run paused for sign-off: nothing else needs the negotiation)."""

    session: Session | None
    transcript: Path
    head: str  # the transcript header's hash: binds the checkpoints to this transcript
    signoff_inline: bool = False
    pace: float = 0.0

    def build(self, checkpointer: AsyncSqliteSaver) -> CompiledStateGraph[Any, Any, Any, Any]:
        def progress() -> RunState:
            status = "done" if self.live.result is not None else "running"
            return {"events": len(self.live.writer.events), "status": status}

        async def turn(state: RunState) -> RunState:
            if self.pace:
                await anyio.sleep(self.pace)
            await self.live.turn()
            return progress()

        def finish(state: RunState) -> RunState:
            self.live.finish()
            return progress()

        def signoff(state: RunState) -> RunState:
            # 'negotiate review' records (and signs) each sign-off itself, then resumes the
            # graph: the node only waits, and reads the decision from the transcript.
            interrupt({"transcript": str(self.transcript), "status": _SIGNOFF_PAUSE})
            status, _ = transcript_status(self.transcript)
            return {"status": status.value}

        def after_signoff(state: RunState) -> str:
            # Several organisations sign one after the other: wait for the next.
            return "signoff" if state.get("status") == Status.PENDING.value else END

        def after_turn(state: RunState) -> str:
            return "finish" if self.live.done else "turn"

        def after_finish(state: RunState) -> str:
            result = self.live.result
            agreed = result is not None and result.status == "agreement"
            return "signoff" if self.signoff_inline and agreed else END

        graph = StateGraph(RunState)
        graph.add_node("turn", turn)
        graph.add_node("finish", finish)
        graph.add_node("signoff", signoff)
        graph.add_conditional_edges(START, after_turn, ["turn", "finish"])
        graph.add_conditional_edges("turn", after_turn, ["turn", "finish"])
        graph.add_conditional_edges("finish", after_finish, ["signoff", END])
        graph.add_conditional_edges("signoff", after_signoff, ["signoff", END])
        return graph.compile(checkpointer=checkpointer)

    @property
    def live(self) -> Session:
        """The session being driven (a sign-off-only driver has none)."""
        if self.session is None:
            raise RuntimeError("this graph driver only answers a sign-off pause")
        return self.session

    @property
    def config(self) -> RunnableConfig:
        return {"configurable": {"thread_id": self.transcript.stem},
                "metadata": {HEAD_KEY: self.head}, "recursion_limit": 10**7}

    def __post_init__(self) -> None:
        if self.session is not None:
            self.session.passthrough = (GraphBubbleUp,)

    async def stream(self, resume: Any = None,
                     on_step: Callable[[RunState], None] | None = None) -> list[Any]:
        """Run (or continue) the graph until it ends or pauses; ``on_step`` sees each
        step's state (events reach the session's ``on_event`` as they are recorded).
        Returns the payloads of the interrupts it paused on."""
        async with self._saver() as saver:
            return await self._stream(self.build(saver), resume, on_step)

    async def _stream(self, graph: CompiledStateGraph[Any, Any, Any, Any], resume: Any,
                      on_step: Callable[[RunState], None] | None) -> list[Any]:
        snapshot = await graph.aget_state(self.config)
        start: Any
        if resume is not None:
            start = Command(resume=resume)
        elif snapshot.next:
            start = None  # continue from the last checkpoint
        else:
            start = {"events": len(self.live.writer.events), "status": "running"}
        paused: list[Any] = []
        try:
            # durability="sync": each checkpoint is on disk before the next step starts.
            async for update in graph.astream(start, self.config, stream_mode="updates",
                                              durability="sync"):
                for node, values in update.items():
                    if node == "__interrupt__":
                        paused += [item.value for item in values]
                    elif isinstance(values, dict) and on_step is not None:
                        on_step(values)  # type: ignore[arg-type]
        except (KeyboardInterrupt, anyio.get_cancelled_exc_class()):
            if self.session is not None and self.session.result is None:
                self.session.abort()
            raise
        return paused

    async def drive(self, on_step: Callable[[RunState], None] | None = None,
                    answer: Answer | None = None) -> None:
        """Run to the end, answering each pause with ``answer(payload, session)``; a pause
        it does not answer (``None``) leaves the run paused, resumable later."""
        session = self.live
        resume: Any = None
        # One checked database connection and one compiled graph for the whole run: a run
        # with people in it pauses at every human turn, and reopening, re-checking and
        # recompiling at each resume was a third of the studio's driver time.
        async with self._saver() as saver:
            graph = self.build(saver)
            while True:
                paused = await self._stream(graph, resume, on_step)
                if not paused or answer is None:
                    return
                try:
                    resume = answer(paused[0], session)
                    if inspect.isawaitable(resume):  # a studio seat waits for its person
                        resume = await resume
                except KeyboardInterrupt:
                    session.abort()
                    raise
                if resume is None:
                    return

    async def pending_signoff(self) -> bool:
        """Whether the run is paused for sign-off, read from its last checkpoint: the
        interrupt it waits on (no graph, no negotiation is built)."""
        async with self._saver() as saver:
            saved = await saver.aget_tuple(self.config)
        if saved is None:
            return False
        return any(channel == _INTERRUPTS and _is_signoff_pause(value)
                   for _, channel, value in saved.pending_writes or ())

    @asynccontextmanager
    async def _saver(self) -> AsyncIterator[AsyncSqliteSaver]:
        """The checkpointer, once the database is known to belong to this transcript."""
        path = checkpoint_path(self.transcript)
        claim_checkpoints(path)
        check_checkpoints(path, head=self.head, thread=self.transcript.stem)
        try:
            async with aiosqlite.connect(str(path)) as connection:
                # The saver keeps its log in WAL mode; synchronous=NORMAL commits each
                # checkpoint to the log without an fdatasync.  A killed process loses none
                # (the OS has the writes); a power cut may lose the last few, never
                # corrupting the file, and resume then continues from an earlier checkpoint
                # against the fsynced transcript, which is the source of truth
                # (tests/test_graph.py rolls checkpoints back to prove it).
                await connection.execute("PRAGMA synchronous=NORMAL")
                yield AsyncSqliteSaver(connection, serde=OwnTypesSerializer())
        except CheckpointError as error:
            raise CheckpointError(f"{path}: {error}. Remove it to continue from the "
                                  "transcript alone") from None
        except sqlite3.Error as error:
            raise _checkpoint_failure(path, error, self.transcript) from None


def _is_signoff_pause(value: Any) -> bool:
    pauses = value if isinstance(value, list | tuple) else [value]
    return any(isinstance(getattr(pause, "value", None), dict)
               and pause.value.get("status") == _SIGNOFF_PAUSE for pause in pauses)


# --- starting and resuming ------------------------------------------------------------


async def start_run(scenario: Scenario, *, transcript: Path, seed: int = 0,
                    rounds: int | None = None, agents: Mapping[str, str] | None = None,
                    signoff_inline: bool = False, pace: float = 0.0,
                    llm_run: Any = None, llm: LLMOptions | None = None,
                    person: Person | None = None,
                    on_step: Callable[[RunState], None] | None = None,
                    on_event: EventHook | None = None, on_view: ViewHook | None = None,
                    answer: Answer | None = None,
                    options: Mapping[str, Any] | None = None) -> RunResult:
    """A new durable run; its checkpoints and LLM recording sit next to ``transcript``,
    ``options`` go into the header.
    A human seat's turns are graph interrupts, answered by ``answer`` (by default: asked
    of ``person``, a person at this terminal unless given)."""
    check_writable(transcript.parent)
    try:  # before the transcript exists: a link planted there refuses the run up front
        claim_checkpoints(checkpoint_path(transcript))
    except files.OutputError as error:
        raise TranscriptError(f"cannot keep checkpoints: {error}") from None
    llm = llm or LLMOptions()
    if llm.record is None and llm.replay is None:  # so that a resumed run does not pay twice
        llm = replace(llm, record=calls_path(transcript))
    async with open_run(scenario, agents=agents, seed=seed, rounds=rounds,
                        transcript=transcript, llm_run=llm_run, llm=llm, on_event=on_event,
                        on_view=on_view,
                        options={**(options or {}),
                                 **({"signoff": "inline"} if signoff_inline else {})} or None,
                        person=person, durable=True) as run:
        await _drive(run, transcript, signoff_inline, pace, on_step, answer)
    assert run.session.result is not None
    return run.session.result


async def resume_run(transcript: Path, *, pace: float = 0.0,
                     on_step: Callable[[RunState], None] | None = None,
                     on_event: EventHook | None = None,
                     on_resumed: Callable[[int], None] | None = None,
                     person: Person | None = None, answer: Answer | None = None,
                     clock: Clock | None = None) -> RunResult:
    """Continue an interrupted run from its transcript and checkpoints: re-play it against
    the transcript (:func:`~negotiation.engine.reopen_run`: nothing is written twice,
    nobody is asked twice; a deadline in seconds reads the recorded clock), then drive on
    through the graph (``clock``: default ``time.monotonic``)."""
    refuse_planted(checkpoint_path(transcript))  # before the run re-opens and says so
    async with reopen_run(transcript, on_event=on_event, on_resumed=on_resumed,
                          person=person, durable=True, clock=clock) as run:
        await _drive(run, transcript, run.session.options.get("signoff") == "inline", pace,
                     on_step, answer)
    assert run.session.result is not None
    return run.session.result


async def _drive(run: RunContext, transcript: Path, signoff_inline: bool, pace: float,
                 on_step: Callable[[RunState], None] | None, answer: Answer | None) -> None:
    driver = GraphDriver(run.session, transcript, run.writer.events[0]["hash"],
                         signoff_inline, pace)
    await driver.drive(on_step=on_step, answer=answer or run.answer)


async def resume_signoff(transcript: Path) -> bool:
    """Resume a run paused for inline sign-off once a sign-off is recorded in its
    transcript; ``False`` if it was not paused for that."""
    driver = _signoff_driver(transcript)
    if driver is None or not await driver.pending_signoff():
        return False
    await driver.stream(resume={"recorded": True})
    return True


async def check_signoff_checkpoint(transcript: Path) -> None:
    """Read the paused graph's checkpoints now, so that a foreign or crafted database is
    refused (``CheckpointError``) before a sign-off is recorded, not after."""
    driver = _signoff_driver(transcript)
    if driver is not None:
        await driver.pending_signoff()


def _signoff_driver(transcript: Path) -> GraphDriver | None:
    """A driver that can only answer the sign-off pause of ``transcript``'s run; ``None``
    if it has no checkpoints.  It needs the header's hash, nothing else."""
    if not checkpoint_path(transcript).exists():
        return None
    try:
        with transcript.open("rb") as handle:
            head = json.loads(handle.readline())["hash"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TranscriptError(f"{transcript}: not a transcript ({error})") from None
    return GraphDriver(None, transcript, str(head), signoff_inline=True)
