"""A turn passed for a seat left idle: what a pass means in each protocol (never an
acceptance), how the session records it (a ``passed`` event, through the protocol's
``pass_turn``), that only a driver can impose one, and how readers show it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from typer.testing import CliRunner

from negotiation.charter import render_markdown
from negotiation.cli import app
from negotiation.devtools.llm_server import ScriptedServer, reply_json
from negotiation.engine import Negotiation, RunResult, Session
from negotiation.model import Accept, Offer, Propose, WalkAway
from negotiation.scenario import scenario_from_data
from negotiation.transcript import TranscriptWriter, read_transcript, verify
from protocols import MEDIATOR, AlternatingOffers, MediatedSingleText
from tests.conftest import TINY_YAML

#: Worth 0.75 to Alpha and 0.52 to Beta: both above their reservation values.
OPENING = {"colour": "red", "price": 5, "pot": {"a": 50, "b": 50}}
WIDE = {"NO_COLOR": "1", "COLUMNS": "200"}


# --- the protocols ------------------------------------------------------------------------

ACTIONS = {"propose": lambda n: Propose(offer=Offer(terms={"x": n}), rationale="r"),
           "accept": lambda n: Accept(rationale="r"),
           "walk_away": lambda n: WalkAway(rationale="r")}


@st.composite
def games(draw: st.DrawFn) -> tuple[int, int, list[tuple[str, int]]]:
    """Parties, rounds, and a script of moves where ``pass`` is a turn passed for idling."""
    return (draw(st.integers(2, 6)), draw(st.integers(1, 4)),
            draw(st.lists(st.tuples(st.sampled_from(["pass", "pass", "propose", "accept",
                                                     "accept", "walk_away"]),
                                    st.integers(0, 2)), max_size=60)))


@settings(max_examples=150, deadline=None)
@given(games(), st.sampled_from([AlternatingOffers(), MediatedSingleText()]))
def test_a_pass_is_never_an_acceptance_and_the_turn_moves_on_as_after_a_move(
        game: Any, protocol: Any) -> None:
    parties, rounds, script = game
    state = protocol.start([f"p{i}" for i in range(parties)], rounds)
    for kind, n in script:
        if state.done:
            break
        party = state.current_party
        if kind == "pass":
            after = protocol.pass_turn(state)
            assert after.status != "agreement"
            assert party not in after.accepted_by or party in state.accepted_by
            if not after.done and after.round == state.round:
                assert after.turn == state.turn + 1
                assert after.accepted_by == state.accepted_by
                assert after.standing_offer is state.standing_offer
            state = after
        elif kind in protocol.legal_actions(state, party):
            state = protocol.apply(state, party, ACTIONS[kind](n))
    assert state.round <= rounds


@pytest.mark.parametrize("protocol", [AlternatingOffers(), MediatedSingleText()])
@pytest.mark.parametrize("parties", [2, 3, 5])
def test_a_run_of_passes_ends_at_the_deadline_without_agreement(protocol: Any,
                                                                parties: int) -> None:
    state = protocol.start([f"p{i}" for i in range(parties)], 3)
    passes = 0
    while not state.done:
        state = protocol.pass_turn(state)
        passes += 1
    assert passes == 3 * parties
    assert state.status == "no_agreement" and state.reason.startswith("deadline")


def test_alternating_offers_keeps_the_standing_offer_and_its_acceptances_over_a_pass(
        ) -> None:
    protocol = AlternatingOffers()
    state = protocol.start(["a", "b", "c"], 5)
    state = protocol.apply(state, "a", ACTIONS["propose"](1))
    state = protocol.apply(state, "b", Accept(rationale="fine"))
    passed = protocol.pass_turn(state)  # c idles
    assert passed.standing_offer == Offer(terms={"x": 1}) and passed.standing_proposer == "a"
    assert passed.accepted_by == {"b"} and passed.status == "running"
    assert passed.current_party == "a" and passed.round == 1


def test_mediated_a_round_with_a_pass_is_not_unanimous_and_the_text_comes_from_the_others(
        ) -> None:
    protocol = MediatedSingleText()
    state = protocol.start(["a", "b"], 5)
    state = protocol.apply(state, "a", ACTIONS["propose"](1))
    state = protocol.apply(state, "b", ACTIONS["propose"](1))
    assert state.standing_offer == Offer(terms={"x": 1})
    state = protocol.apply(state, "a", Accept(rationale="yes"))
    state = protocol.pass_turn(state)  # b idles: not an approval
    assert state.status == "running" and state.round == 2
    assert state.standing_offer == Offer(terms={"x": 1}) and state.standing_proposer == MEDIATOR


# --- the session --------------------------------------------------------------------------

def tiny(protocol: str = "alternating_offers", rounds: int = 4) -> Any:
    data = yaml.safe_load(TINY_YAML)
    data["protocol"] = {"name": protocol, "rounds": rounds}
    return scenario_from_data(data)


class Agreeable:
    """Accepts whatever stands; proposes OPENING when it cannot accept."""

    async def act(self, view: Any) -> Any:
        if "accept" in view.legal:
            return Accept(rationale="This works for us.")
        return Propose(offer=Offer(terms=OPENING), rationale="Half each, red, 5.")


def session_of(scenario: Any, agents: dict[str, Any], path: Path | None = None) -> Session:
    writer = TranscriptWriter(path)
    session = Negotiation(scenario).session(agents, seed=0, writer=writer,
                                            specs={party: "agreeable" for party in agents})
    session.open()
    return session


def play(session: Session, idle: dict[int, float]) -> RunResult:
    """Play to the end; before turn ``n`` (0-based) in ``idle``, the driver passes it."""
    async def run() -> RunResult:
        number = 0
        while not session.done:
            if number in idle:
                assert session.pass_idle(idle[number])["kind"] == "idle_pass"
            await session.turn()
            number += 1
        return session.finish()
    return anyio.run(run)


def test_a_passed_turn_is_recorded_and_the_standing_offer_waits_for_the_next_party(
        ) -> None:
    session = session_of(tiny(), {"a": Agreeable(), "b": Agreeable()})
    result = play(session, {1: 30.0})  # Alpha opens; Beta idles; Alpha must speak again
    events = session.writer.events
    kinds = [(e["type"], e.get("party")) for e in events[1:]]
    assert kinds[:4] == [("move", "a"), ("passed", "b"), ("move", "a"), ("move", "b")]
    passed = events[2]
    assert passed["round"] == 0 and passed["timeout"] == 30.0
    assert passed["reason"] == "the seat stayed idle: no move within 30 s"
    assert events[3]["action"]["kind"] == "propose"  # its own offer stood: it cannot accept
    assert result.status == "agreement" and result.agreement is not None
    assert result.agreement.round == 1  # agreed by Beta's accept, a round later


def test_passes_alone_never_make_an_agreement_even_with_accepting_agents() -> None:
    for protocol in ("alternating_offers", "mediated_single_text"):
        session = session_of(tiny(protocol, rounds=3), {"a": Agreeable(), "b": Agreeable()})
        result = play(session, {n: 1.0 for n in range(100)})
        assert result.status == "no_agreement" and "deadline" in result.reason
        types = [e["type"] for e in session.writer.events]
        assert types.count("passed") == 6 and "move" not in types


def test_mediated_an_idle_party_does_not_approve_the_text() -> None:
    session = session_of(tiny("mediated_single_text", rounds=5),
                         {"a": Agreeable(), "b": Agreeable()})
    result = play(session, {3: 5.0})  # round 1: Alpha approves, Beta idles
    events = session.writer.events
    passed = next(e for e in events if e["type"] == "passed")
    assert passed["party"] == "b" and passed["round"] == 1
    after = events[events.index(passed) + 1]
    assert after["type"] == "mediator_text" and after["round"] == 2  # revised, published
    assert result.status == "agreement" and result.agreement is not None
    assert result.agreement.round == 2  # not in the round Beta was silent


class Passer(BaseModel):
    """An agent's attempt at a pass: a move kind the protocols do not have."""

    kind: str = "pass"
    rationale: str = "We are busy; skip us."


class SendsAPass:
    async def act(self, view: Any) -> Any:
        return Passer()


def test_an_agent_cannot_pass_its_turn_the_move_is_refused_and_ends_the_run() -> None:
    session = session_of(tiny(), {"a": Agreeable(), "b": SendsAPass()})
    result = play(session, {})
    events = session.writer.events
    assert [e["type"] for e in events].count("passed") == 0
    [error] = [e for e in events if e["type"] == "error"]
    assert error["party"] == "b" and "'pass' is not allowed now" in error["error"]
    assert result.status == "no_agreement" and result.failure is not None
    assert "b made an invalid move" in result.failure


def test_an_llm_replying_pass_is_refused_like_any_invalid_reply(tmp_path: Path) -> None:
    def script(request: dict[str, Any], number: int) -> Any:
        return reply_json({"kind": "pass", "rationale": "Let the others talk."})

    with ScriptedServer(script) as server:
        done = CliRunner().invoke(
            app, ["run", "platform-app-vendor", "--agent", "vendor=llm:scripted",
                  "--driver", "plain", "--out", str(tmp_path)],
            env={**WIDE, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test"})
    assert done.exit_code == 3, done.output
    [path] = tmp_path.glob("*.jsonl")
    types = [e["type"] for e in verify(path).events]
    assert "passed" not in types and "error" in types and "move" not in types[-3:]


# --- readers ------------------------------------------------------------------------------

@pytest.fixture
def passed_run(tmp_path: Path) -> Path:
    """A finished run on disk in which Beta's first turn was passed after 30 s."""
    path = tmp_path / "run.jsonl"
    session = session_of(tiny(), {"a": Agreeable(), "b": Agreeable()}, path)
    play(session, {1: 30.0})
    session.writer.close()
    return path


def test_a_transcript_with_a_pass_verifies_and_types_the_event(passed_run: Path) -> None:
    assert verify(passed_run).ok
    done = CliRunner().invoke(app, ["verify", str(passed_run)], env=WIDE)
    assert done.exit_code == 0, done.output
    [passed] = [e for e in read_transcript(passed_run).events if e.type == "passed"]
    assert passed.party == "b" and passed.timeout == 30.0  # type: ignore[union-attr]


def test_report_conversation_and_the_charter_say_who_did_not_answer(passed_run: Path) -> None:
    done = CliRunner().invoke(app, ["report", str(passed_run), "--conversation"], env=WIDE)
    assert done.exit_code == 0, done.output
    [line] = [line for line in done.output.splitlines() if "did not answer" in line]
    assert " b " in line and "pass" in line and "did not answer within 30 s: passed" in line
    assert "1 passed (the seat was idle)" in done.output
    charter = render_markdown(passed_run)
    assert "**R1 · b** pass — did not answer within 30 s: passed" in charter


def test_the_reviewers_timeline_lists_the_passed_turn_in_its_place(passed_run: Path) -> None:
    from rich.console import Console

    from negotiation.render import timeline_view
    from negotiation.transcript import embedded_scenario

    transcript = read_transcript(passed_run)
    header = transcript.header
    assert header is not None
    console = Console(record=True, width=200, color_system=None)
    console.print(timeline_view(embedded_scenario(header), transcript))
    cells = [[cell.strip() for cell in line.split("│")[1:-1]]
             for line in console.export_text().splitlines() if line.startswith("│")]
    rows = [row for row in cells if row[0]]
    assert [row[:3] for row in rows] == [["1", "a", "propose"], ["1", "b", "pass"],
                                         ["2", "a", "propose"], ["2", "b", "accept"]]
    assert rows[1][3] == "did not answer within 30 s: passed"


class Stopped(Exception):
    """The driver's process went away while a person's turn was paused."""


class Away:
    """A person the driver never asks: its answer function decides every turn."""

    def prompt(self, view: Any) -> Any:
        raise AssertionError("the person was asked")


def test_negotiate_resume_continues_after_a_pass_without_passing_or_asking_again(
        tmp_path: Path) -> None:
    import pexpect

    from negotiation.graph import start_run
    from tests.test_cli import NEGOTIATE

    path = tmp_path / "run.jsonl"
    answered: list[str] = []

    def answer(payload: Any, session: Session) -> Any:
        if len(answered) == 0:  # Beta's first turn: idle past the timeout
            answered.append("pass")
            return session.pass_idle(30.0)
        raise Stopped  # its second turn: the server is gone

    async def studio_like() -> None:
        await start_run(tiny(rounds=5), transcript=path, agents={"a": "boulware",
                                                                 "b": "human"},
                        answer=answer, person=Away())

    with pytest.raises(Stopped):
        anyio.run(studio_like)
    before = [e["type"] for e in verify(path).events]
    assert before.count("passed") == 1 and "outcome" not in before

    resumed = pexpect.spawn(str(NEGOTIATE), ["resume", str(path)], encoding="utf-8",
                            timeout=60, env={**os.environ, **WIDE},
                            dimensions=(60, 160))
    resumed.expect("Your move")  # Beta's second turn: the pass was replayed, not asked
    resumed.sendline("walk")
    resumed.expect("Walk away")
    resumed.sendline("y")
    resumed.expect("Why do you walk away")
    resumed.sendline("Nobody answered us.")
    resumed.expect(pexpect.EOF)
    resumed.close()
    assert resumed.exitstatus == 0, resumed.before
    events = verify(path).events
    assert verify(path).ok
    turns = [(e["type"], e["party"], e["round"]) for e in events
             if e["type"] in ("move", "blocked", "passed")]
    assert turns[1] == ("passed", "b", 0) and turns[-1] == ("move", "b", 1)
    assert [t[0] for t in turns].count("passed") == 1
    assert events[-1]["reason"] == "b walked away"
    assert [e["type"] for e in events].count("resumed") == 1
