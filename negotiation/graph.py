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
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import anyio
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt

from agents.human import InterruptingHuman
from negotiation.engine import Negotiation as _Negotiation
from negotiation.engine import (
    RunResult,
    Session,
    agent_specs,
    analysis_of,
    build_agents,
    is_llm,
)
from negotiation.lifecycle import sign_off
from negotiation.model import Scenario
from negotiation.transcript import TranscriptError, TranscriptWriter, load_verified

#: Answers a pause of the graph: (interrupt payload, session) → resume value, or None.
Answer = Callable[[Any, Session], Any]

#: Free space required before a run starts, so that it cannot fail half-way for lack of it.
MIN_FREE_BYTES = 20 * 1024 * 1024


class RunState(TypedDict, total=False):
    """What the graph checkpoints each step: small, JSON-friendly, no private data."""

    events: int
    status: str
    new_events: list[dict[str, Any]]
    signoff: dict[str, Any]


def checkpoint_path(transcript: Path) -> Path:
    return transcript.with_suffix(".checkpoints.sqlite")


def calls_path(transcript: Path) -> Path:
    return transcript.with_suffix(".calls.jsonl")


def check_writable(folder: Path) -> None:
    """Fail before the negotiation starts if the transcript folder cannot take a run."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-probe"
        probe.write_bytes(b"x" * 4096)
        probe.unlink()
    except OSError as error:
        raise TranscriptError(f"cannot write transcripts to {folder}: "
                              f"{error.strerror or error}; choose another --out folder"
                              ) from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise TranscriptError(f"only {free // 1024} KiB free in {folder}; a run needs at "
                              f"least {MIN_FREE_BYTES // 2**20} MiB. Free some space or "
                              "choose another --out folder")


@dataclass
class GraphDriver:
    """Runs one Session through a checkpointed LangGraph graph."""

    session: Session
    transcript: Path
    signoff_inline: bool = False
    pace: float = 0.0

    def build(self, checkpointer: AsyncSqliteSaver) -> CompiledStateGraph[Any, Any, Any, Any]:
        session = self.session

        def progress(since: int) -> RunState:
            events = session.writer.events
            status = "done" if session.result is not None else "running"
            return {"events": len(events), "status": status,
                    "new_events": [_public_summary(e) for e in events[since:]]}

        async def turn(state: RunState) -> RunState:
            if self.pace:
                await anyio.sleep(self.pace)
            before = len(session.writer.events)
            await session.turn()
            return progress(before)

        def finish(state: RunState) -> RunState:
            before = len(session.writer.events)
            session.finish()
            return progress(before)

        def signoff(state: RunState) -> RunState:
            decision = interrupt({"transcript": str(self.transcript),
                                  "status": "pending sign-off"})
            event = sign_off(self.transcript, approve=bool(decision["approve"]),
                             reviewer=str(decision["reviewer"]),
                             comment=str(decision.get("comment", "")))
            return {"status": event["status"], "signoff": {"seq": event["seq"]},
                    "new_events": [_public_summary(event)]}

        def after_turn(state: RunState) -> str:
            return "finish" if session.done else "turn"

        def after_finish(state: RunState) -> str:
            result = session.result
            agreed = result is not None and result.status == "agreement"
            return "signoff" if self.signoff_inline and agreed else END

        graph = StateGraph(RunState)
        graph.add_node("turn", turn)
        graph.add_node("finish", finish)
        graph.add_node("signoff", signoff)
        graph.add_conditional_edges(START, after_turn, ["turn", "finish"])
        graph.add_conditional_edges("turn", after_turn, ["turn", "finish"])
        graph.add_conditional_edges("finish", after_finish, ["signoff", END])
        graph.add_edge("signoff", END)
        return graph.compile(checkpointer=checkpointer)

    @property
    def config(self) -> RunnableConfig:
        return {"configurable": {"thread_id": self.transcript.stem}, "recursion_limit": 10**7}

    def __post_init__(self) -> None:
        self.session.passthrough = (GraphBubbleUp,)

    async def stream(self, resume: Any = None,
                     on_step: Callable[[RunState], None] | None = None) -> list[Any]:
        """Run (or continue) the graph until it ends or pauses; ``on_step`` sees each
        step's new events.  Returns the payloads of the interrupts it paused on."""
        async with _saver(checkpoint_path(self.transcript)) as saver:
            graph = self.build(saver)
            snapshot = await graph.aget_state(self.config)
            start: Any
            if resume is not None:
                start = Command(resume=resume)
            elif snapshot.next:
                start = None  # continue from the last checkpoint
            else:
                start = {"events": len(self.session.writer.events), "status": "running"}
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
                if self.session.result is None:
                    self.session.abort()
                raise
            return paused

    async def drive(self, on_step: Callable[[RunState], None] | None = None,
                    answer: Answer | None = None) -> None:
        """Run to the end, answering each pause with ``answer(payload, session)``; a pause
        it does not answer (``None``) leaves the run paused, resumable later."""
        resume: Any = None
        while True:
            paused = await self.stream(resume=resume, on_step=on_step)
            if not paused or answer is None:
                return
            try:
                resume = answer(paused[0], self.session)
            except KeyboardInterrupt:
                self.session.abort()
                raise
            if resume is None:
                return

    async def pending_signoff(self) -> bool:
        async with _saver(checkpoint_path(self.transcript)) as saver:
            snapshot = await self.build(saver).aget_state(self.config)
            return "signoff" in snapshot.next


@asynccontextmanager
async def _saver(path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield saver


def _public_summary(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as streamed: everything but the hash chain (the transcript keeps that)."""
    return {k: v for k, v in event.items() if k not in {"prev_hash", "hash", "scenario"}}


# --- starting and resuming ------------------------------------------------------------


async def start_run(scenario: Scenario, *, transcript: Path, seed: int = 0,
                    rounds: int | None = None, agents: Mapping[str, str] | None = None,
                    signoff_inline: bool = False, pace: float = 0.0,
                    llm_run: Any = None,
                    on_step: Callable[[RunState], None] | None = None,
                    on_event: Callable[[dict[str, Any]], None] | None = None,
                    answer: Answer | None = None) -> RunResult:
    """A new durable run; its checkpoints and LLM recording sit next to ``transcript``.
    A human seat's turns are graph interrupts, answered by ``answer``."""
    check_writable(transcript.parent)
    specs = agent_specs(scenario, agents)
    run = _llm_run(specs, transcript, llm_run, replay_first=False)
    try:
        negotiation = _Negotiation(scenario, rounds=rounds, analysis=analysis_of(scenario))
        # Agents first: an extension that fails to load must not leave an empty transcript.
        built = build_agents(specs, seed, scenario, run, human=InterruptingHuman)
        writer = TranscriptWriter(transcript)
        try:
            options = {"signoff": "inline"} if signoff_inline else None
            session = negotiation.session(built, seed=seed, writer=writer, specs=specs,
                                          on_event=on_event, options=options)
            session.open()
            driver = GraphDriver(session, transcript, signoff_inline, pace)
            await driver.drive(on_step=on_step, answer=answer)
        finally:
            writer.close()
    finally:
        if run is not None and llm_run is None:
            await run.aclose()
    assert session.result is not None
    return session.result


async def resume_run(transcript: Path, *, pace: float = 0.0,
                     on_step: Callable[[RunState], None] | None = None,
                     on_event: Callable[[dict[str, Any]], None] | None = None,
                     on_resumed: Callable[[int], None] | None = None,
                     answer: Answer | None = None) -> RunResult:
    """Continue an interrupted run from its transcript and checkpoints."""
    writer = TranscriptWriter.resume(transcript)
    try:
        header = writer.peek_pending()[0]
        scenario = Scenario.model_validate(header["scenario"])
        specs: dict[str, str] = dict(header["agents"])
        seed = int(header["seed"])
        run = _llm_run(specs, transcript, None, replay_first=True)
        try:
            negotiation = _Negotiation(scenario, rounds=header["protocol"]["rounds"],
                                       analysis=analysis_of(scenario))
            built = build_agents(specs, seed, scenario, run, human=InterruptingHuman)
            session = negotiation.session(built, seed=seed, writer=writer, specs=specs,
                                          options=header.get("options"))
            session.open()
            while writer.replaying and not session.done:
                await session.turn()
            if writer.replaying:
                raise TranscriptError(f"{transcript}: the re-run ended before reaching the end "
                                      "of the transcript; it cannot be resumed")
            caught_up = len(writer.events)
            session.on_event = on_event
            session.record("resumed", {"after_seq": caught_up - 1,
                                       "reason": "continued after an interruption"})
            if on_resumed is not None:
                on_resumed(caught_up)
            driver = GraphDriver(session, transcript, pace=pace,
                                 signoff_inline=header.get("options", {}).get("signoff")
                                 == "inline")
            await driver.drive(on_step=on_step, answer=answer)
        finally:
            if run is not None:
                await run.aclose()
    finally:
        writer.close()
    assert session.result is not None
    return session.result


async def resume_signoff(transcript: Path, *, approve: bool, reviewer: str,
                         comment: str) -> bool:
    """Answer a run paused for inline sign-off; ``False`` if it was not paused for that."""
    if not checkpoint_path(transcript).exists():
        return False
    events = load_verified(transcript)
    header = events[0]
    scenario = Scenario.model_validate(header["scenario"])
    negotiation = _Negotiation(scenario, rounds=header["protocol"]["rounds"])
    writer = TranscriptWriter()
    session = negotiation.session({}, seed=header["seed"], writer=writer,
                                  specs=header["agents"])
    driver = GraphDriver(session, transcript, signoff_inline=True)
    if not await driver.pending_signoff():
        return False
    await driver.stream(resume={"approve": approve, "reviewer": reviewer, "comment": comment})
    return True


def _llm_run(specs: Mapping[str, str], transcript: Path, given: Any,
             replay_first: bool) -> Any:
    if given is not None:
        return given
    if not any(is_llm(spec) for spec in specs.values()):
        return None
    from agents.llm import LLMRun

    return LLMRun(record=calls_path(transcript), replay_first=replay_first)
