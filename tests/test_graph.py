"""The durable LangGraph driver: same transcript as the plain one, resumable after a kill,
sign-off as an interrupt."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest

from negotiation.analysis import SpaceAnalysis
from negotiation.devtools.llm_server import ScriptedServer
from negotiation.engine import run_scenario
from negotiation.graph import checkpoint_path, start_run
from negotiation.lifecycle import Status, transcript_status
from negotiation.scenario import load_scenario
from negotiation.transcript import deterministic_lines, load_verified, verify
from tests.llm_support import fair_dealer
from tests.test_cli import NEGOTIATE, negotiate

META = {"resumed", "aborted"}


def core(events: list[dict[str, Any]]) -> list[str]:
    """What must match between an interrupted-and-resumed run and an uninterrupted one:
    every negotiation event, in order (interruption markers shift the numbering)."""
    kept = [{k: v for k, v in e.items() if k != "seq"} for e in events
            if e["type"] not in META]
    return deterministic_lines(kept)


@pytest.mark.parametrize("name", ["park-redevelopment", "platform-app-vendor"])
def test_both_drivers_write_the_same_transcript(tmp_path: Path, name: str) -> None:
    scenario = load_scenario(name)
    durable = anyio.run(lambda: start_run(scenario, transcript=tmp_path / "g.jsonl", seed=7))
    plain = anyio.run(lambda: run_scenario(scenario, seed=7))
    assert deterministic_lines(load_verified(tmp_path / "g.jsonl")) == \
        deterministic_lines(plain.transcript.events)
    assert durable.status == plain.status
    assert checkpoint_path(tmp_path / "g.jsonl").stat().st_size > 0


def lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def interruptible() -> None:
    """Give the child the default Ctrl-C behaviour even if our own parent ignores SIGINT
    (as background jobs of non-interactive shells do)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_slow_run(out: Path, *extra: str, env: dict[str, str] | None = None
                   ) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(NEGOTIATE), "run", "park-redevelopment", "--seed", "5",
                             "--pace", "0.03", "-q", "--driver", "graph", "--out", str(out),
                             *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, preexec_fn=interruptible)


def wait_for(path_glob: Path, at_least: int, process: subprocess.Popen[bytes]) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [p for p in path_glob.parent.glob(path_glob.name)
                 if not p.name.endswith(".calls.jsonl")]
        if found and lines(found[0]) >= at_least:
            return found[0]
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise AssertionError(f"the run ended (exit {process.returncode}) before it could "
                                 f"be interrupted: {stderr}")
        time.sleep(0.005)
    raise AssertionError("the run did not progress")


def test_a_run_killed_at_several_points_resumes_to_the_same_result(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    process = start_slow_run(out)
    path = wait_for(out / "*.jsonl", 4, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kills = 1
    for stop_at in (25, 60):
        resumed = subprocess.Popen([str(NEGOTIATE), "resume", str(path), "--pace", "0.03",
                                    "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(path, stop_at, resumed)
        resumed.send_signal(signal.SIGKILL)
        resumed.wait()
        kills += 1
    final = negotiate("resume", str(path), "-q")
    assert final.returncode == 0, final.stderr

    result = verify(path)
    assert result.ok, result.reason
    events = result.events
    assert sum(e["type"] == "resumed" for e in events) == kills
    assert [e["seq"] for e in events] == list(range(len(events)))
    uninterrupted = anyio.run(lambda: run_scenario(load_scenario("park-redevelopment"),
                                                   seed=5))
    assert core(events) == core(uninterrupted.transcript.events)


def test_a_run_whose_last_checkpoints_were_lost_resumes_to_the_same_result(
        tmp_path: Path) -> None:
    """Checkpoints are committed without an fsync (the transcript is fsynced per event):
    after a power cut the database may hold only older checkpoints.  Resume re-plays the
    transcript and continues from whatever checkpoint is left."""
    out = tmp_path / "runs"
    process = start_slow_run(out)
    path = wait_for(out / "*.jsonl", 30, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with closing(sqlite3.connect(checkpoint_path(path))) as db, db:
        kept = [row[0] for row in db.execute(
            "SELECT checkpoint_id FROM checkpoints ORDER BY checkpoint_id LIMIT 3")]
        marks = ",".join("?" * len(kept))
        db.execute(f"DELETE FROM checkpoints WHERE checkpoint_id NOT IN ({marks})", kept)
        db.execute(f"DELETE FROM writes WHERE checkpoint_id NOT IN ({marks})", kept)
        assert db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 3
    done = negotiate("resume", str(path), "-q")
    assert done.returncode == 0, done.stderr
    result = verify(path)
    assert result.ok, result.reason
    uninterrupted = anyio.run(lambda: run_scenario(load_scenario("park-redevelopment"),
                                                   seed=5))
    assert core(result.events) == core(uninterrupted.transcript.events)


def test_resume_prints_the_scenario_panel_as_run_does(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    process = start_slow_run(out)
    path = wait_for(out / "*.jsonl", 6, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    shown = negotiate("resume", str(path))
    assert shown.returncode == 0, shown.stderr
    panel = "park-redevelopment · seed 5 · "
    assert panel in shown.stdout
    assert shown.stdout.index(panel) < shown.stdout.index("Resumed after")
    assert "Public-private funding of the Riverside Park" in shown.stdout


def test_ctrl_c_then_resume_continues_after_the_aborted_event(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    process = start_slow_run(out)
    path = wait_for(out / "*.jsonl", 10, process)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130
    assert load_verified(path)[-1]["type"] == "aborted"
    assert negotiate("resume", str(path), "-q").returncode == 0
    events = load_verified(path)
    types = [e["type"] for e in events]
    assert types.index("aborted") + 1 == types.index("resumed")
    uninterrupted = anyio.run(lambda: run_scenario(load_scenario("park-redevelopment"),
                                                   seed=5))
    assert core(events) == core(uninterrupted.transcript.events)


@pytest.mark.parametrize("driver", ["graph", "auto"])
def test_a_resumed_llm_run_does_not_pay_for_calls_twice(tmp_path: Path, driver: str) -> None:
    scenario = load_scenario("platform-app-vendor")
    nash = SpaceAnalysis(scenario).nash
    assert nash is not None
    out = tmp_path / "runs"
    with ScriptedServer(fair_dealer(nash.terms)) as server:
        env = {"OPENAI_BASE_URL": server.base_url}
        process = subprocess.Popen(
            [str(NEGOTIATE), "run", "platform-app-vendor", "--agent", "vendor=llm:scripted",
             "--pace", "0.03", "-q", "--driver", driver, "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env={**os.environ, **env})
        path = wait_for(out / "*.jsonl", 20, process)
        process.send_signal(signal.SIGKILL)
        process.wait()
        paid_before = len(server.requests)
        done = subprocess.run([str(NEGOTIATE), "resume", str(path), "-q"],
                              capture_output=True, text=True, env={**os.environ, **env},
                              timeout=120)
        assert done.returncode == 0, done.stderr
        events = load_verified(path)
        calls = [e for e in events if e["type"] == "llm_call"]
        assert paid_before > 0
        assert len(server.requests) == len(calls)  # every call paid exactly once
    assert events[-1]["type"] == "outcome"


def test_inline_sign_off_pauses_the_graph_until_review(tmp_path: Path) -> None:
    done = negotiate("run", "rd-joint-venture", "--signoff", "inline", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Paused for sign-off" in done.stdout
    (path,) = tmp_path.glob("*.jsonl")
    assert transcript_status(path)[0] is Status.PENDING
    approved = negotiate("review", str(path), "--approve", "--reviewer", "Ada",
                         "--comment", "fine")
    assert approved.returncode == 0, approved.stderr
    assert "paused run is resumed" in approved.stdout
    assert transcript_status(path)[0] is Status.RATIFIED
    assert verify(path).ok


def test_an_unwritable_folder_fails_before_anything_starts(tmp_path: Path) -> None:
    done = negotiate("run", "rd-joint-venture", "--out", "/proc/no-transcripts-here")
    assert done.returncode == 2
    assert "cannot" in done.stderr and "Traceback" not in done.stderr


def test_a_finished_run_cannot_be_resumed(tmp_path: Path) -> None:
    assert negotiate("run", "rd-joint-venture", "-q", "--out", str(tmp_path)).returncode == 0
    (path,) = tmp_path.glob("*.jsonl")
    done = negotiate("resume", str(path))
    assert done.returncode == 2
    assert "already finished" in done.stderr
