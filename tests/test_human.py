"""The human seat, driven through a real pseudo-terminal like a person would."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pexpect

from negotiation.transcript import load_verified
from tests.test_cli import NEGOTIATE


def start(tmp_path: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    return pexpect.spawn(str(NEGOTIATE), ["run", "rd-joint-venture", "--human", "kestrel",
                                          "--out", str(tmp_path), *args],
                         encoding="utf-8", timeout=30, env=env, dimensions=(60, 160))


def transcript(tmp_path: Path) -> Path:
    (path,) = tmp_path.glob("*.jsonl")
    return path


def test_a_person_counters_issue_by_issue_then_aborts_with_ctrl_c(tmp_path: Path) -> None:
    child = start(tmp_path, "--rounds", "5")
    child.expect("Confidential brief: you are kestrel")
    child.expect("Reservation value: 0.35")
    child.expect("worth .* to you")           # the standing offer, valued for them
    child.expect("Your move")
    child.sendline("counter")
    child.expect("Ownership of jointly developed IP")
    child.sendline("3")                        # jointly owned
    child.expect("Licensing of the results")
    child.sendline("1")                        # Kestrel exclusive in automotive
    child.expect("share of voltaic")
    child.sendline("33")                       # not a multiple of 5: refused, asked again
    child.expect("Shares must be whole multiples of 5")
    child.expect("share of voltaic")
    child.sendline("40")
    child.expect("Exit clause")
    child.sendline("3")                        # buyout at fair value
    child.expect("Your counter-offer")
    child.expect("Send this offer")
    child.sendline("y")
    child.expect("Why this offer")
    child.sendline("")                         # an empty reason is refused
    child.expect("A short reason is required")
    child.sendline("We fund most of the work; shared IP and automotive exclusivity.")
    child.expect("Your move")
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130

    events = load_verified(transcript(tmp_path))
    ours = [e for e in events if e.get("party") == "kestrel" and e["type"] in {"move",
                                                                                "blocked"}]
    assert ours[0]["action"]["offer"]["terms"] == {
        "ip_ownership": "joint", "licensing": "exclusive_kestrel_automotive",
        "cost_split": {"voltaic": 40, "kestrel": 60}, "exit_clause": "buyout_fair_value"}
    assert ours[0]["action"]["rationale"].startswith("We fund most")
    assert "verdict" in ours[0]
    assert events[-1]["type"] == "aborted" and events[-1]["party"] == "kestrel"
    assert json.loads(transcript(tmp_path).read_text().splitlines()[0])["agents"]["kestrel"] \
        == "human"


def test_a_person_accepts_and_the_referee_still_decides(tmp_path: Path) -> None:
    child = start(tmp_path)
    child.expect("Your move")
    child.sendline("accept")
    child.expect("Why do you accept")
    child.sendline("Good enough for a pilot.")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    events = load_verified(transcript(tmp_path))
    assert events[-2]["action"] == {"kind": "accept", "rationale": "Good enough for a pilot."}
    outcome = events[-1]
    assert outcome["type"] == "outcome"
    # Voltaic's opening gives Kestrel less than its reservation value: the referee refuses it.
    assert outcome["status"] == "no_agreement"
    assert outcome["reason"].startswith("the referee blocked the agreement")


def test_review_asks_a_person_for_the_decision(tmp_path: Path) -> None:
    from tests.test_cli import negotiate

    assert negotiate("run", "rd-joint-venture", "-q", "--out", str(tmp_path)).returncode == 0
    path = transcript(tmp_path)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    child = pexpect.spawn(str(NEGOTIATE), ["review", str(path)], encoding="utf-8", timeout=30,
                          env=env, dimensions=(60, 160))
    child.expect("Timeline")
    child.expect("Your name")  # asked first: an empty name fails before the decision is lost
    child.sendline("Grace Hopper")
    child.expect("Decision")
    child.sendline("reject")
    child.expect("Comment")
    child.sendline("The cost split ignores who funds the pilot line.")
    child.expect("by Grace Hopper")
    child.expect("unsigned, not attributable")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    signoff = load_verified(path)[-1]
    assert signoff["type"] == "signoff" and signoff["decision"] == "reject"
    assert signoff["comment"] == "The cost split ignores who funds the pilot line."


def test_review_with_an_empty_name_stops_before_asking_for_a_decision(tmp_path: Path) -> None:
    from tests.test_cli import negotiate

    assert negotiate("run", "rd-joint-venture", "-q", "--out", str(tmp_path)).returncode == 0
    path = transcript(tmp_path)
    before = path.read_bytes()
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    child = pexpect.spawn(str(NEGOTIATE), ["review", str(path)], encoding="utf-8", timeout=30,
                          env=env, dimensions=(60, 160))
    child.expect("Your name")
    child.sendline("   ")
    child.expect("needs the reviewer's name")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "Decision" not in (child.before or "")
    assert path.read_bytes() == before


def test_a_human_seat_survives_a_killed_process_and_is_asked_again_on_resume(
        tmp_path: Path) -> None:
    child = start(tmp_path)
    child.expect("Your move")
    child.sendline("counter")
    for prompt, answer in (("Ownership of jointly developed IP", "3"),
                           ("Licensing of the results", "1"), ("share of voltaic", "40"),
                           ("Exit clause", "4")):
        child.expect(prompt)
        child.sendline(answer)
    child.expect("Send this offer")
    child.sendline("y")
    child.expect("Why this offer")
    child.sendline("Joint IP, and we carry most of the cost.")
    child.expect("Your move")                  # the graph is paused on the next human turn
    child.kill(signal.SIGKILL)
    child.close()
    path = transcript(tmp_path)
    before = load_verified(path)
    assert [e["party"] for e in before if e["type"] == "move"][-2:] == ["kestrel", "voltaic"]

    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    resumed = pexpect.spawn(str(NEGOTIATE), ["resume", str(path)], encoding="utf-8",
                            timeout=30, env=env, dimensions=(60, 160))
    resumed.expect("recorded events")
    resumed.expect("Your move")
    resumed.sendline("walk")
    resumed.expect("Walk away")
    resumed.sendline("y")
    resumed.expect("Why do you walk away")
    resumed.sendline("No progress on IP.")
    resumed.expect(pexpect.EOF)
    resumed.close()
    assert resumed.exitstatus == 0
    events = load_verified(path)
    ours = [e for e in events if e["type"] == "move" and e["party"] == "kestrel"]
    assert [m["action"]["kind"] for m in ours] == ["propose", "walk_away"]
    assert events[-1]["reason"] == "kestrel walked away"
    assert sum(e["type"] == "resumed" for e in events) == 1
