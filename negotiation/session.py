"""One negotiation in progress: its fixed context (``Negotiation``) and the one turn
function every driver calls (``Session.turn``: act → referee → record → protocol).

Drivers differ only in how they schedule turns and persist them: the plain loop in
:mod:`negotiation.engine`, the checkpointed graph in :mod:`negotiation.graph`.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio

from agents import Agent, History, Memory, Move, View
from agents.base import IDLE_PASS, TurnPassed
from agents.budget import BudgetExceeded
from negotiation.analysis import SpaceAnalysis
from negotiation.events import TURNS, EventType
from negotiation.guardrails import PASSED_PROPOSAL, Feedback, Referee, Verdict, verdict_of
from negotiation.model import (
    ACTION,
    Action,
    Agreement,
    Offer,
    Propose,
    Scenario,
)
from negotiation.records import (
    action_record,
    flagged_fields,
    judge_agreement,
    passed_verdict,
    read_move,
)
from negotiation.seats import is_llm, llm_settings
from negotiation.transcript import FORMAT, TranscriptError, TranscriptWriter
from negotiation.utility import UtilityFunction
from protocols import IllegalActionError, ProtocolState, get_protocol
from protocols.base import ProtocolBase

#: Sees every event as it is recorded, in every driver.
EventHook = Callable[[dict[str, Any]], None]
#: Sees the view of each turn once, when it is built (a studio shows each seat its own).
ViewHook = Callable[[View], None]
#: Seconds from an arbitrary origin (``time.monotonic``; a test passes a fake one).
Clock = Callable[[], float]



@functools.cache
def package_version() -> str:
    try:
        return version("partnership-negotiation")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass
class RunResult:
    """How a run ended, with the transcript that records it."""

    status: str
    reason: str
    rounds: int
    agreement: Agreement | None
    utilities: dict[str, float]
    transcript: TranscriptWriter
    path: Path | None = None
    agents: dict[str, str] = field(default_factory=dict)
    #: Why an agent's failure ended the run (LLM errors, spent budgets, invalid moves).
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class IdlePass:
    """A turn the driver passes because the seat stayed idle past its turn timeout: never
    an agent's move, so no agent, strategy or LLM schema can send one."""

    party: str
    timeout: float
    reason: str

    @classmethod
    def after(cls, party: str, timeout: float) -> IdlePass:
        return cls(party, timeout, f"the seat stayed idle: no move within {timeout:g} s")


class Negotiation:
    """One run's fixed context: the scenario, its outcome space and every party's utility.

    ``analysis``: the scenario's analysis, to share between runs (a benchmark's warm side);
    one of another scenario object is refused with ``ValueError``, since the briefs agents
    are shown and the scenario custom checks see are the analysis's."""

    def __init__(self, scenario: Scenario, *, rounds: int | None = None,
                 analysis: SpaceAnalysis | None = None) -> None:
        self.scenario = scenario
        self.analysis = analysis or analysis_of(scenario)
        self.public = self.analysis.public
        self.space = self.analysis.space
        # Each run its own referee (~3 µs; what it reads is tabled on the analysis): one kept
        # on the analysis would refer back to it, and that cycle left every analysis to the
        # garbage collector (~140 µs of a cold bilateral 10^2 run).  A custom check, the
        # scenario's own code, may keep state: it is never shared either.
        self.referee = Referee(scenario, self.analysis)
        self.parties = scenario.party_ids
        self.utilities: dict[str, UtilityFunction] = self.analysis.functions
        # Tabled before any agent keeps a utility vector, so that they share one copy.
        self.utility_table = self.analysis.full_utilities
        self.protocol = get_protocol(scenario.protocol.name)
        #: Whether the protocol publishes texts of its own or lets parties leave early: a
        #: protocol that keeps ``ProtocolBase``'s answers is not asked on every turn.
        protocol_type = type(self.protocol)
        self.publishes = getattr(protocol_type, "published", None) is not ProtocolBase.published
        self.departs = getattr(protocol_type, "departed", None) is not ProtocolBase.departed
        #: Each party's rounded utilities of an outcome, as events record them (shared:
        #: copy before recording).
        self.recorded_utilities = self.analysis.recorded_utilities
        self.max_rounds = rounds or scenario.protocol.rounds
        self.deadline_seconds = scenario.protocol.seconds

    def header(self, seed: int, specs: Mapping[str, str]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "scenario_id": self.scenario.id,
            "scenario_digest": self.analysis.digest,
            "scenario": self.analysis.header_scenario(),  # its canonical text is reused
            "seed": seed,
            "version": package_version(),
            "protocol": {"name": self.protocol.name, "rounds": self.max_rounds,
                         **({} if self.deadline_seconds is None
                            else {"seconds": self.deadline_seconds})},
            "parties": self.scenario.party_ids,
            "agents": dict(specs),
            **({"llm": llm} if (llm := self._llm_header(specs)) else {}),
        }

    def _llm_header(self, specs: Mapping[str, str]) -> dict[str, Any]:
        """The model settings of LLM agents, for the audit trail (no keys, no credentials)."""
        settings = {}
        for party, spec in specs.items():
            if is_llm(spec):
                dumped = llm_settings(spec, party, self.scenario).model_dump(mode="json")
                if dumped.get("base_url"):
                    dumped["base_url"] = _without_credentials(dumped["base_url"])
                settings[party] = dumped
        return settings

    def utilities_of(self, outcome: int) -> dict[str, float]:
        return self.recorded_utilities(outcome).copy()  # each event its own dict

    def session(self, agents: Mapping[str, Agent], *, seed: int, writer: TranscriptWriter,
                specs: Mapping[str, str], on_event: EventHook | None = None,
                options: Mapping[str, Any] | None = None,
                memory: Mapping[str, Memory] | None = None,
                on_view: ViewHook | None = None, clock: Clock | None = None) -> Session:
        return Session(self, agents, seed=seed, writer=writer, specs=specs, on_event=on_event,
                       options=options, memory=memory, on_view=on_view, clock=clock)

    async def run(self, agents: Mapping[str, Agent], *, seed: int, writer: TranscriptWriter,
                  specs: Mapping[str, str], on_event: EventHook | None = None,
                  options: Mapping[str, Any] | None = None,
                  memory: Mapping[str, Memory] | None = None) -> RunResult:
        """The plain driver: one loop over turns, no persistence beyond the transcript.
        ``options`` go into the header; ``memory`` is what each party remembers of earlier
        stages (campaigns)."""
        session = self.session(agents, seed=seed, writer=writer, specs=specs,
                               on_event=on_event, options=options, memory=memory)
        session.open()
        return await session.play()


class Session:
    """One negotiation in progress: the turn logic every driver calls.

    ``open`` writes the header, ``turn`` plays one party's turn (act → referee → record →
    protocol), ``finish`` checks any agreement and writes the outcome.
    """

    def __init__(self, negotiation: Negotiation, agents: Mapping[str, Agent], *, seed: int,
                 writer: TranscriptWriter, specs: Mapping[str, str],
                 on_event: EventHook | None = None,
                 options: Mapping[str, Any] | None = None,
                 memory: Mapping[str, Memory] | None = None,
                 on_view: ViewHook | None = None, clock: Clock | None = None) -> None:
        self.negotiation = negotiation
        self.options = dict(options or {})
        self.memory = dict(memory or {})
        self.agents = agents
        #: Each seat's ``drain_calls`` (the model calls its agent made in a turn), for the
        #: agents that keep them (LLM agents): looked up once, not on every turn.
        self._drains: dict[str, Callable[[], Sequence[dict[str, Any]]]] = {
            party: drain for party, agent in agents.items()
            if callable(drain := getattr(agent, "drain_calls", None))}
        self.seed = seed
        self.writer = writer
        self.specs = specs
        self.on_event = on_event
        self.on_view = on_view
        self.state = negotiation.protocol.start(
            negotiation.scenario.party_ids, negotiation.max_rounds,
            negotiation.scenario.protocol)
        self.moves: list[Move] = []
        self.history = History(self.moves)
        self.private = negotiation.analysis.briefs  # read-only, shared by the scenario's runs
        self.feedback: dict[str, Feedback] = {}
        self.failure: str | None = None
        self.result: RunResult | None = None
        #: Exceptions a driver uses for control flow (e.g. LangGraph's interrupt): they are
        #: not an agent's failure and pass through a turn untouched.
        self.passthrough: tuple[type[BaseException], ...] = ()
        self._published: Offer | None = None
        #: The pass a driver imposed on the turn in progress (:meth:`pass_idle`).
        self._idle: IdlePass | None = None
        #: The view of the turn in progress: built once, kept while the turn pauses.
        self._view: View | None = None
        #: Normalised time of the last applied move: an agreement's moment, for discounting.
        self.move_time = 0.0
        #: The driver's clock (seconds; read only under a deadline in seconds), the seconds
        #: of negotiation counted up to the reading at ``_clock_since``, and the last reading.
        self.clock: Clock = clock or time.monotonic
        self._clock_base = 0.0
        self._clock_since: float | None = None
        self.elapsed: float | None = None

    def record(self, type_: EventType, body: dict[str, Any],
               wall: dict[str, Any] | None = None) -> dict[str, Any]:
        event = self.writer.append(type_, body, wall=wall)
        if self.on_event is not None:
            self.on_event(event)
        return event

    def open(self, wall: dict[str, Any] | None = None) -> None:
        if self.negotiation.deadline_seconds is not None:
            self._clock_since = self.clock()
        header = self.negotiation.header(self.seed, self.specs)
        if self.options:
            header["options"] = self.options
        self.record(EventType.HEADER, header, wall=wall)

    @property
    def done(self) -> bool:
        return self.state.done or self.failure is not None

    async def play(self, pace: float = 0.0) -> RunResult:
        """The plain driver: every turn in one loop, nothing persisted but the transcript;
        ``pace`` seconds before each turn, to watch a run unfold."""
        while not self.done:
            if pace:
                try:
                    await anyio.sleep(pace)
                except (KeyboardInterrupt, anyio.get_cancelled_exc_class()):
                    self.abort()  # stopped between turns: the transcript says so too
                    raise
            await self.turn()
        return self.finish()

    async def turn(self) -> None:
        """Play the current party's turn; errors end the run with a recorded reason.

        A turn that pauses (a driver's control-flow exception, e.g. a person's seat under
        the graph driver) keeps its view, so the turn taken on resumption sees the same
        view, referee feedback included; any other ending closes the turn."""
        try:
            await self._play_turn()
        except self.passthrough:
            raise
        except BaseException:
            self._view = None
            raise
        self._view = None

    def read_clock(self) -> float:
        """Seconds of negotiation so far: while a resumed run catches up, the reading its
        transcript recorded for this turn; afterwards the clock, counting on from there (the
        time a run spent stopped is not counted)."""
        now = self.clock()
        recorded = self._recorded_clock()
        if recorded is not None:
            self._clock_base, self._clock_since = recorded, now
            return recorded
        if self._clock_since is None:
            self._clock_since = now
        return round(self._clock_base + (now - self._clock_since), 6)

    def _recorded_clock(self) -> float | None:
        if not self.writer.replaying:
            return None
        for event in self.writer.peek_pending():
            if event["type"] in TURNS or event["type"] == EventType.OUTCOME:
                value = event.get("clock")
                return float(value) if isinstance(value, int | float) else None
        return None

    def _clock_field(self) -> dict[str, float]:
        """``{"clock": seconds}`` for the event of this turn, under a deadline in seconds."""
        return {} if self.elapsed is None else {"clock": self.elapsed}

    def _out_of_time(self) -> bool:
        """Under a deadline in seconds: read the clock for this turn, and end the run
        without agreement once the deadline has passed (the protocol itself stays pure)."""
        seconds = self.negotiation.deadline_seconds
        if seconds is None:
            return False
        self.elapsed = self.read_clock()
        if self.elapsed < seconds:
            return False
        self.state = replace(self.state, status="no_agreement",
                             reason=f"the deadline of {seconds:g} seconds passed "
                                    f"({self.elapsed:g} s)")
        return True

    async def _play_turn(self) -> None:
        negotiation = self.negotiation
        if negotiation.deadline_seconds is not None and self._out_of_time():
            return
        state = self.state
        party = state.current_party
        agent = self.agents[party]
        replaying = self.writer.replaying
        if self._idle is not None or replaying:
            idle = self._idle_pass(party, agent)
            if idle is not None:
                self._pass(idle)
                return
        view = self.current_view()
        try:
            try:
                recorded = self._recorded_action(party, agent) if replaying else None
                own: int | None = None  # the space's number of its own offer, proposed
                if recorded is not None:
                    action: Action = recorded
                else:
                    action, own = read_move(await agent.act(view), negotiation.space)
            finally:
                if self._drains:
                    self._record_calls(party, state.round)
            self.feedback.pop(party, None)  # handed over once, with the turn it was for
            if action.kind not in view.legal:
                raise IllegalActionError(f"'{action.kind}' is not allowed now; allowed: "
                                         f"{sorted(view.legal)}")
            body: dict[str, Any] = {"round": state.round, "party": party,
                                    "action": action_record(action)}
            if self.elapsed is not None:
                body["clock"] = self.elapsed
            referee = negotiation.referee
            flagged = referee.check_text(party, action)
            outcome: int | None = None
            proposing = isinstance(action, Propose)
            if proposing:
                assert isinstance(action, Propose)
                verdict, outcome = referee.check_proposal(party, action, view.departed, own)
                if flagged:
                    verdict = verdict.with_findings(flagged)
            elif flagged:
                verdict = verdict_of("proposal", flagged)
            else:
                verdict = PASSED_PROPOSAL  # an unflagged accept or walk-away: no verdict
            if verdict is PASSED_PROPOSAL:
                if proposing:
                    body["verdict"] = passed_verdict()
            else:
                body["verdict"] = verdict.model_dump(mode="json")
                if verdict.blocked:
                    self._block(state, party, action, verdict, view.departed, body)
                    return
            if proposing:
                assert isinstance(action, Propose) and outcome is not None
                if own is None:  # the terms checked, read-only (the space's own are)
                    action = referee.delivered(action, outcome)
                body["utilities"] = negotiation.recorded_utilities(outcome).copy()
            self.move_time = view.time
            self.state = negotiation.protocol.apply(state, party, action)
            if negotiation.publishes:
                self._published = negotiation.protocol.published(state, self.state)
        except self.passthrough:
            raise
        except MemoryError:
            raise  # the machine failed, not the agent: the command ends with exit 2
        except TranscriptError:
            raise  # the transcript could not be written (a full disk): not the agent's fault
        except (KeyboardInterrupt, anyio.get_cancelled_exc_class()):
            self.abort()
            raise
        except TurnPassed as passed:  # a person's seat resumed with a pass saved by the graph
            self._pass(IdlePass.after(party, passed.timeout))
            return
        except BudgetExceeded as error:
            self.failure = f"budget exhausted: {error}"
            self.record(EventType.ERROR, {"round": state.round, "party": party,
                                          "error": self.failure})
            return
        except IllegalActionError as error:
            self.failure = f"{party} made an invalid move: {error}"
            self.record(EventType.ERROR, {"round": state.round, "party": party,
                                          "error": str(error)})
            return
        except Exception as error:  # an agent's own failure must not lose the transcript
            self.failure = f"{party}'s agent failed: {type(error).__name__}: {error}"
            self.record(EventType.ERROR, {"round": state.round, "party": party,
                                          "error": f"{type(error).__name__}: {error}"})
            return
        self.record(EventType.MOVE, body)
        self.moves.append(Move(state.round, party, action,
                               flagged_fields(flagged) if flagged else ()))
        if self._published is not None:
            self._record_text(self._published)

    def _record_calls(self, party: str, round_: int) -> None:
        """The model calls the party's agent made in this turn (LLM agents)."""
        drain = self._drains.get(party)
        for call in () if drain is None else list(drain()):
            # Retries depend on the network, not the seed: kept under ``wall``
            # with the latency, so a replayed run still matches its recording.
            wall = {"latency_ms": call.pop("latency_ms", None)}
            attempts = call.pop("attempts", [])
            if len(attempts) > 1:
                wall["attempts"] = attempts
            self.record(EventType.LLM_CALL, {"round": round_, "party": party, **call},
                        wall=wall)

    def _block(self, state: ProtocolState, party: str, action: Action, verdict: Verdict,
               departed: Sequence[str], body: dict[str, Any]) -> None:
        """Record a blocked move: any kind may be blocked (an accept or a walk-away
        carrying injected instructions too).  Never delivered, the turn passes, and the
        party gets feedback on its next turn."""
        terms = action.offer.terms if isinstance(action, Propose) else {}
        feedback = self.feedback[party] = self.negotiation.referee.feedback(
            verdict, terms, departed, move=action.kind)
        body["feedback"] = feedback.model_dump(mode="json")
        self.record(EventType.BLOCKED, body)
        self._pass_turn(state)

    def _record_text(self, text: Offer) -> None:
        """The text the protocol published with this turn (a mediator's revision)."""
        negotiation = self.negotiation
        self.record(EventType.MEDIATOR_TEXT, {
            "round": self.state.round, "terms": text.terms,
            "utilities": negotiation.utilities_of(negotiation.space.index_of(text.terms))})

    def pass_idle(self, timeout: float) -> dict[str, Any]:
        """Pass the current party's turn: its seat stayed idle past ``timeout`` seconds.
        A driver's decision, taken while the turn is paused: the turn, taken again,
        records a ``passed`` event instead of asking the agent, and the protocol's
        ``pass_turn`` moves the table on.  Returns what the paused graph resumes with."""
        party = self.state.current_party
        self._idle = IdlePass.after(party, timeout)
        return {"kind": IDLE_PASS, "party": party, "timeout": timeout}

    def _idle_pass(self, party: str, agent: Agent) -> IdlePass | None:
        """The pass imposed on this turn, or the one the transcript recorded for it while
        a resumed run catches up."""
        idle, self._idle = self._idle, None
        if idle is not None and idle.party == party:
            return idle
        recorded = self._recorded_turn(party, agent)
        if recorded is not None and recorded["type"] == EventType.PASSED:
            return IdlePass(party, float(recorded["timeout"]), str(recorded["reason"]))
        return None

    def _pass(self, idle: IdlePass) -> None:
        """Record the pass and let the protocol say what it means (never an acceptance)."""
        state = self.state
        self.record(EventType.PASSED, {"round": state.round, "party": idle.party,
                                       "timeout": idle.timeout, "reason": idle.reason,
                                       **self._clock_field()})
        self._pass_turn(state)

    def _pass_turn(self, state: ProtocolState) -> None:
        """Move the table on without a move (a blocked move or a pass); a text the
        protocol publishes on the way (a mediator revising at the end of a round) is
        recorded like after any move."""
        protocol = self.negotiation.protocol
        self.state = protocol.pass_turn(state)
        text = protocol.published(state, self.state)
        if text is not None:
            self._record_text(text)

    def current_view(self) -> View:
        """The view of the party whose turn it is, built once per turn (``on_view`` sees
        it then); the referee's feedback on that party's last blocked proposal is in it."""
        if self._view is not None and self._view.state is self.state:
            return self._view
        negotiation, state = self.negotiation, self.state
        party = state.current_party
        protocol = negotiation.protocol
        # Positional, in View's field order: keywords cost more than the rest of the call.
        self._view = View(party, negotiation.public, self.private[party], negotiation.space,
                          negotiation.utilities[party], state, self.history,
                          protocol.legal_actions(state, party), self.feedback.get(party),
                          self.memory.get(party),
                          protocol.departed(state) if negotiation.departs else (),
                          self.elapsed, negotiation.deadline_seconds)
        if self.on_view is not None:
            self.on_view(self._view)
        return self._view

    def abort(self) -> None:
        """Leave a valid transcript that says the run was stopped (once)."""
        if self.writer.events and self.writer.events[-1]["type"] == EventType.ABORTED:
            return
        state = self.state
        party = state.current_party
        self.record(EventType.ABORTED, {"round": state.round, "party": party,
                                "reason": f"interrupted during {party}'s turn in round "
                                          f"{state.round + 1}"})

    def _recorded_action(self, party: str, agent: Agent) -> Action | None:
        """While a resumed run catches up, a person's earlier moves come from the
        transcript: nobody is asked twice."""
        recorded = self._recorded_turn(party, agent)
        return None if recorded is None else ACTION.validate_python(recorded["action"])

    def _recorded_turn(self, party: str, agent: Agent) -> dict[str, Any] | None:
        """A person's next recorded turn while a resumed run catches up."""
        if not self.writer.replaying or not getattr(agent, "replay_from_transcript", False):
            return None
        for event in self.writer.peek_pending():
            if event["type"] in TURNS and event["party"] == party:
                return event
        return None

    def finish(self) -> RunResult:
        """Referee any agreement and write the outcome event."""
        negotiation, state = self.negotiation, self.state
        scenario = negotiation.scenario
        body: dict[str, Any] = {
            "reservation_values": {org.id: org.preferences.reservation_value
                                   for org in scenario.organizations},
        }
        agreement: Agreement | None = None
        utilities: dict[str, float] = {}
        reason = self.failure or state.reason
        if self.failure is None and state.status == "agreement":
            judged = judge_agreement(negotiation, state, self.moves, self.move_time)
            body.update(judged.body)
            agreement, utilities = judged.agreement, judged.utilities
            reason = judged.blocked_reason or reason
        if "zopa" in self.options:  # run with --anyway although no partnership is justified
            body["zopa"] = self.options["zopa"]
        body.update(self._clock_field())
        status = "agreement" if agreement else "no_agreement"
        rounds = min(state.round + 1, negotiation.max_rounds)
        self.record(EventType.OUTCOME, {"status": status, "reason": reason, "rounds": rounds,
                                        **body})
        self.result = RunResult(status=status, reason=reason, rounds=rounds,
                                agreement=agreement, utilities=utilities,
                                transcript=self.writer, path=self.writer.path,
                                agents=dict(self.specs), failure=self.failure)
        return self.result


_ANALYSES: OrderedDict[int, tuple[Scenario, SpaceAnalysis]] = OrderedDict()


def analysis_of(scenario: Scenario) -> SpaceAnalysis:
    """The (read-only) space analysis of a scenario object, shared by runs that reuse it."""
    cached = _ANALYSES.get(id(scenario))
    if cached is not None and cached[0] is scenario:
        _ANALYSES.move_to_end(id(scenario))
        return cached[1]
    analysis = SpaceAnalysis(scenario)
    _ANALYSES[id(scenario)] = (scenario, analysis)  # holding the scenario pins its id
    if len(_ANALYSES) > 16:
        _ANALYSES.popitem(last=False)
    return analysis


def zopa_verdict_of(scenario: Scenario, seed: int) -> dict[str, Any] | None:
    """What a run of ``scenario`` with ``seed`` records when no outcome suits every party
    (:meth:`SpaceAnalysis.zopa_verdict`), from the analysis the run will use when its seed
    is the run's (a sampled space depends on the seed)."""
    analysis = analysis_of(scenario)
    if analysis.seed != seed:
        analysis = SpaceAnalysis(scenario, seed=seed)
    return analysis.zopa_verdict()


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
