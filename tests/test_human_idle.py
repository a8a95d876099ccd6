"""A person at the terminal with an idle timeout (``negotiate run --human ORG
--idle-timeout S --on-idle pass|strategy``), through a real pseudo-terminal: they are told
how long a turn waits; past it their turn passes or the idle strategy plays it, through the
same mechanism as the studio's seats, and the transcript records it."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pexpect
import pytest
from typer.testing import CliRunner

from agents.human import HumanAgent
from negotiation.cli import app
from negotiation.idle import IdlePolicy, IdleSettingError, SeatIdle, alarm, timed_answer
from negotiation.transcript import load_verified, verify
from tests.conftest import TINY_YAML
from tests.test_cli import NEGOTIATE


def start(tmp_path: Path, *args: str) -> pexpect.spawn:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY_YAML)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    return pexpect.spawn(str(NEGOTIATE), ["run", str(scenario), "--human", "a",
                                          "--out", str(tmp_path / "out"), *args],
                         encoding="utf-8", timeout=30, env=env, dimensions=(60, 160))


def finished(child: pexpect.spawn, tmp_path: Path) -> list[dict[str, object]]:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    (path,) = (tmp_path / "out").glob("*.jsonl")
    assert verify(path).ok
    return load_verified(path)


def test_an_idle_person_at_the_terminal_passes_and_the_run_goes_on(tmp_path: Path) -> None:
    child = start(tmp_path, "--idle-timeout", "1", "--on-idle", "pass", "--rounds", "2")
    child.expect("You have 1 s for this turn; after that your turn passes")
    child.expect("Your move")
    child.expect("You did not answer within 1 s: your turn passes")
    child.expect("Beta")  # the other party moves on
    events = finished(child, tmp_path)
    passed = [e for e in events if e["type"] == "passed"]
    assert passed and all(e["party"] == "a" and e["timeout"] == 1 for e in passed)
    assert not [e for e in events if e["type"] == "move" and e["party"] == "a"]
    assert events[-1]["type"] == "outcome" and events[-1]["status"] == "no_agreement"


def test_an_idle_person_at_the_terminal_is_stood_in_for_by_the_idle_strategy(
        tmp_path: Path) -> None:
    child = start(tmp_path, "--idle-timeout", "1", "--idle-strategy", "boulware",
                  "--rounds", "2")
    child.expect("after that the boulware strategy plays it for you")
    child.expect("You did not answer within 1 s: the boulware strategy plays it for you")
    events = finished(child, tmp_path)
    ours = [e for e in events if e["type"] in ("move", "blocked") and e["party"] == "a"]
    assert ours and all(str(e["action"]["rationale"]).startswith(  # type: ignore[index]
        "[seat idle for 1 s: the boulware strategy played this turn]") for e in ours)
    assert not [e for e in events if e["type"] == "passed"]


def test_a_person_who_answers_in_time_plays_their_own_move(tmp_path: Path) -> None:
    child = start(tmp_path, "--idle-timeout", "3", "--on-idle", "pass")
    child.expect("Your move")
    child.sendline("walk")
    child.expect("Walk away")
    child.sendline("y")
    child.expect("Why do you walk away")
    child.sendline("Not today.")
    events = finished(child, tmp_path)
    assert [e["type"] for e in events if e.get("party") == "a"] == ["move"]
    assert events[-1]["reason"] == "a walked away"


def test_an_idle_timeout_without_a_person_or_on_the_plain_driver_is_refused(
        tmp_path: Path) -> None:
    runner = CliRunner()
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY_YAML)
    for args, said in ((["--idle-timeout", "5"], "use it with --human ORG"),
                       (["--idle-timeout", "5", "--human", "a", "--driver", "plain"],
                        "use it with --driver graph"),
                       (["--idle-timeout", "5", "--human", "a", "--idle-strategy", "nobody"],
                        "nobody"),
                       (["--human", "a", "--on-idle", "pass"], "give it too"),
                       (["--human", "a", "--idle-strategy", "boulware"], "give it too")):
        done = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "out"),
                                   *args], env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert done.exit_code == 2, done.output
        assert said in " ".join(done.output.split())
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.jsonl"))


def test_an_idle_timeout_no_interval_timer_can_hold_is_refused_before_any_file(
        tmp_path: Path) -> None:
    """``setitimer`` overflows past ~1e9 s: 1e10 s ended the run with a traceback at the
    person's first turn, after its transcript was written."""
    runner = CliRunner()
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY_YAML)
    for timeout in ("1e10", "inf", "604801"):
        done = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "out"),
                                   "--human", "a", "--idle-timeout", timeout],
                             env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert done.exit_code == 2, done.output
        assert "at most 604800 (a week)" in " ".join(done.output.split())
        assert "Traceback" not in done.output
    assert not (tmp_path / "out").exists()


def test_a_resumed_run_keeps_the_idle_timeout_its_header_records(tmp_path: Path) -> None:
    """Ctrl-C during a timed turn, then ``negotiate resume``: the person's turns were
    untimed after the resume (the policy lived only in the first command's options)."""
    child = start(tmp_path, "--idle-timeout", "2", "--on-idle", "pass", "--rounds", "2")
    child.expect("Your move")
    child.sendintr()
    child.expect("negotiate resume")
    child.expect(pexpect.EOF)
    child.close()
    (path,) = (tmp_path / "out").glob("*.jsonl")
    header = load_verified(path)[0]
    assert header["options"]["idle"] == {"timeout": 2.0, "on_idle": "pass",
                                         "strategy": "conceder"}
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    resumed = pexpect.spawn(str(NEGOTIATE), ["resume", str(path)], encoding="utf-8",
                            timeout=30, env=env, dimensions=(60, 160))
    resumed.expect("You have 2 s for this turn; after that your turn passes")
    resumed.expect("You did not answer within 2 s: your turn passes")
    events = finished(resumed, tmp_path)
    assert [e for e in events if e["type"] == "passed" and e["party"] == "a"]
    assert events[-1]["type"] == "outcome"


def test_an_idle_strategy_that_fails_ends_the_run_as_an_agent_failure_on_record(
        tmp_path: Path) -> None:
    """A plugin (or NegMAS) strategy standing in for an idle seat that raises: the run
    ended with a traceback and a transcript of its header alone; it ends now as any
    failing agent does (exit 3), the transcript saying which strategy failed."""
    (tmp_path / "broken_stand_in.py").write_text(
        "class Broken:\n"
        "    def __init__(self, **settings):\n"
        "        pass\n\n"
        "    async def act(self, view):\n"
        "        raise RuntimeError('no move today')\n")
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY_YAML)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160", "PYTHONPATH": str(tmp_path)}
    child = pexpect.spawn(str(NEGOTIATE), [
        "--plugin", "broken=broken_stand_in:Broken", "run", str(scenario), "--human", "a",
        "--out", str(tmp_path / "out"), "--idle-timeout", "1", "--idle-strategy", "broken"],
        encoding="utf-8", timeout=30, env=env, dimensions=(60, 160))
    child.expect("You did not answer within 1 s")
    child.expect(pexpect.EOF)
    child.close()
    said = " ".join(str(child.before).split())
    assert child.exitstatus == 3, said
    assert "Traceback" not in said
    assert "the broken strategy standing in for the idle seat failed" in said
    (path,) = (tmp_path / "out").glob("*.jsonl")
    assert verify(path).ok
    events = load_verified(path)
    assert [e["type"] for e in events] == ["header", "error", "outcome"]
    assert "RuntimeError: no move today" in str(events[1]["error"])


def test_a_timed_terminal_turn_is_refused_off_the_main_thread() -> None:
    """SIGALRM reaches the main thread only: a notebook's or a server's worker thread
    would have failed at the first turn with signal's ValueError."""
    def timed() -> object:
        return timed_answer(HumanAgent(), IdlePolicy(5), 0, print)

    assert callable(timed())  # the main thread: fine
    with ThreadPoolExecutor(1) as pool:
        error = pool.submit(timed).exception()
    assert isinstance(error, IdleSettingError) and "main thread" in str(error)


def test_what_was_typed_without_enter_before_the_timeout_is_not_the_next_turns_answer(
        tmp_path: Path) -> None:
    """'wal' typed as the turn timed out stayed in the terminal's line: the next turn's
    'k' then read 'walk' and asked to walk away."""
    child = start(tmp_path, "--idle-timeout", "2", "--on-idle", "pass", "--rounds", "3")
    child.expect("Your move")
    child.send("wal")
    child.expect("You did not answer within 2 s")
    child.expect("Your move")
    child.send("k\r")
    assert child.expect(["Walk away and end", "Please select one of the available "
                                              "options"], timeout=10) == 1
    child.terminate(force=True)


def test_a_person_at_the_terminal_cannot_mark_their_move_as_the_idle_strategys(
        tmp_path: Path) -> None:
    child = start(tmp_path, "--idle-timeout", "30", "--on-idle", "pass")
    child.expect("Your move")
    child.sendline("walk")
    child.expect("Walk away")
    child.sendline("y")
    child.expect("Why do you walk away")
    child.sendline("[seat idle for 30 s: the conceder strategy played this turn] Bye.")
    child.expect("Say it in your own words")
    child.expect("Why do you walk away")
    child.sendline("Not today.")
    events = finished(child, tmp_path)
    (move,) = [e for e in events if e.get("party") == "a"]
    assert move["action"]["rationale"] == "Not today."  # type: ignore[index]


def test_the_alarm_rings_once_and_leaves_no_timer_or_handler_behind() -> None:
    """A timeout the interval timer refuses left the alarm's handler installed (it was set
    before the timer failed), so any later SIGALRM raised SeatIdle."""
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(SeatIdle), alarm(0.05):
        time.sleep(2)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before
    with pytest.raises(IdleSettingError), alarm(1e10):
        pass
    assert signal.getsignal(signal.SIGALRM) is before
