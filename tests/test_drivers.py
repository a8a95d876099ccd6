"""Both drivers show the same thing: the same rendered stream at the terminal (scenario
panel included) and the same view for every agent at every turn, referee feedback for a
person's seat included — not only the same transcript."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio

from agents import View
from negotiation.engine import run_scenario
from negotiation.graph import start_run
from negotiation.model import Action, Offer, Propose, WalkAway
from negotiation.scenario import load_scenario
from negotiation.transcript import deterministic_lines, load_verified
from tests.test_cli import NEGOTIATE, negotiate
from tests.test_graph import core, interruptible, wait_for

SCENARIO = "platform-app-vendor"
#: The vendor's opening crosses the platform's red line (at least 10% of the revenue).
GREEDY = {"revenue_share": {"platform": 5, "vendor": 95}, "certification_fee": 0,
          "data_access": "none", "exclusivity": "none", "term_years": 2}
#: What a person types for that opening, then to walk away on their next turn.
TYPED = "\n".join(["counter", "5", "0", "1", "1", "2", "y", "We build the product.",
                   "walk", "y", "No deal below our costs.", ""])


def seen(view: View) -> dict[str, Any]:
    """What an agent's view holds at its turn."""
    return {"party": view.party, "round": view.state.round, "legal": sorted(view.legal),
            "feedback": None if view.feedback is None else view.feedback.model_dump(),
            "standing": None if view.standing_offer is None else view.standing_offer.terms,
            "history": [(m.round, m.party, m.action.kind) for m in view.history]}


class ScriptedPerson:
    """A person's seat that proposes across a red line once, then walks away."""

    def __init__(self) -> None:
        self.shown: list[dict[str, Any]] = []

    def prompt(self, view: View) -> Action:
        self.shown.append(seen(view))
        if len(self.shown) == 1:
            return Propose(offer=Offer(terms=GREEDY), rationale="We build the product.")
        return WalkAway(rationale="No deal below our costs.")


def run_with(driver: str, folder: Path) -> tuple[list[dict[str, Any]], ScriptedPerson, Path]:
    scenario = load_scenario(SCENARIO)
    views: list[dict[str, Any]] = []
    person = ScriptedPerson()
    path = folder / f"{driver}.jsonl"
    options: dict[str, Any] = {"seed": 1, "agents": {"vendor": "human"}, "person": person,
                               "on_view": lambda view: views.append(seen(view))}
    if driver == "plain":
        anyio.run(lambda: run_scenario(scenario, transcript=path, **options))
    else:
        anyio.run(lambda: start_run(scenario, transcript=path, **options))
    return views, person, path


def test_every_agent_sees_the_same_view_at_every_turn_under_both_drivers(
        tmp_path: Path) -> None:
    plain_views, plain_person, plain_path = run_with("plain", tmp_path)
    graph_views, graph_person, graph_path = run_with("graph", tmp_path)
    assert graph_views == plain_views
    assert graph_person.shown == plain_person.shown
    assert deterministic_lines(load_verified(graph_path)) == \
        deterministic_lines(load_verified(plain_path))
    # The person was blocked once and is told why on the next turn, under both drivers.
    first, second = graph_person.shown
    assert first["feedback"] is None
    assert second["feedback"] is not None and second["feedback"]["codes"] == \
        ["red_line_crossed"]
    assert {view["party"] for view in graph_views} == {"platform", "vendor"}


def test_a_person_sees_the_referee_feedback_after_a_pause_under_the_graph_driver(
        tmp_path: Path) -> None:
    _, person, path = run_with("graph", tmp_path)
    blocked = [e for e in load_verified(path)
               if e["type"] == "blocked" and e["party"] == "vendor"]
    assert len(blocked) == 1
    assert person.shown[1]["feedback"]["message"] == blocked[0]["feedback"]["message"]


def terminal(driver: str, out: Path) -> str:
    """What a person at the terminal sees for the whole run, with the file name made
    neutral (each run has its own)."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "TERM": "dumb"}
    # A relative --out keeps the printed path short wherever tmp_path is, so no line wraps.
    done = subprocess.run([str(NEGOTIATE), "run", SCENARIO, "--seed", "1", "--human",
                           "vendor", "--driver", driver, "--out", driver], cwd=out,
                          input=TYPED, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return re.sub(r"\S*platform-app-vendor-seed1-\S+\.jsonl", "RUN.jsonl", done.stdout)


def test_every_driver_prints_the_same_run_with_a_person_at_the_terminal(tmp_path: Path
                                                                       ) -> None:
    plain, graph = terminal("plain", tmp_path), terminal("graph", tmp_path)
    auto = terminal("auto", tmp_path)
    assert graph == plain == auto
    # A person's turns are pauses: auto took the durable graph, with its checkpoints.
    assert list((tmp_path / "auto").glob("*.checkpoints.sqlite"))
    assert not list((tmp_path / "plain").glob("*.checkpoints.sqlite"))
    assert "platform-app-vendor · seed 1 · 30 rounds" in plain  # the scenario panel
    assert plain.count("Confidential brief: you are vendor") == 1
    # The vendor's blocked offer is shown, and the person is told why on their next turn.
    assert plain.count("platform's share must be at") == 2
    assert "walk_away" in plain


# --- --driver auto: the plain loop unless the run can pause -----------------------------

#: Fixed wall-clock times: a run's transcript is then the same bytes whichever the driver.
REPRODUCIBLE = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "NO_COLOR": "1",
                "COLUMNS": "120", "TERM": "dumb"}


def shown_and_written(driver: str, cwd: Path) -> tuple[str, bytes]:
    """What ``negotiate run`` prints with ``driver`` (file name made neutral), and the
    bytes of the transcript it writes."""
    done = subprocess.run([str(NEGOTIATE), "run", "rd-joint-venture", "--seed", "3",
                           "--driver", driver, "--out", driver], cwd=cwd, env=REPRODUCIBLE,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (path,) = (cwd / driver).glob("*.jsonl")
    return re.sub(r"\S*rd-joint-venture-seed3-\S+\.jsonl", "RUN.jsonl", done.stdout), \
        path.read_bytes()


def test_auto_shows_the_same_stream_and_writes_the_same_bytes_as_both_drivers(
        tmp_path: Path) -> None:
    auto, graph, plain = (shown_and_written(driver, tmp_path)
                          for driver in ("auto", "graph", "plain"))
    assert auto == graph == plain
    assert "rd-joint-venture · seed 3" in auto[0] and b'"type":"outcome"' in auto[1]
    # Nothing in this run can pause, so auto took the plain loop: no checkpoint database.
    assert [p.name.endswith(".jsonl") for p in (tmp_path / "auto").iterdir()] == [True]
    assert list((tmp_path / "graph").glob("*.checkpoints.sqlite"))


def test_auto_takes_the_durable_graph_for_an_inline_sign_off(tmp_path: Path) -> None:
    done = negotiate("run", "rd-joint-venture", "--signoff", "inline", "-q", "--out",
                     str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Paused for sign-off" in done.stdout
    assert list(tmp_path.glob("*.checkpoints.sqlite"))


def test_an_inline_sign_off_on_the_plain_loop_is_refused_with_the_drivers_that_pause(
        tmp_path: Path) -> None:
    done = negotiate("run", "rd-joint-venture", "--signoff", "inline", "--driver", "plain",
                     "--out", str(tmp_path))
    assert done.returncode == 2
    assert "use it with --driver graph (or auto)" in done.stderr
    unknown = negotiate("run", "rd-joint-venture", "--driver", "fast", "--out", str(tmp_path))
    assert unknown.returncode == 2
    assert "--driver must be auto, graph or plain, not 'fast'" in unknown.stderr
    assert not list(tmp_path.iterdir())


def start_paced_auto_run(out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(NEGOTIATE), "run", "park-redevelopment", "--seed", "5",
                             "--pace", "0.03", "-q", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "400"}, preexec_fn=interruptible)


def uninterrupted_park_run() -> list[str]:
    return core(anyio.run(lambda: run_scenario(load_scenario("park-redevelopment"),
                                               seed=5)).transcript.events)


def test_ctrl_c_on_an_auto_run_leaves_an_aborted_event_and_it_resumes_to_the_same_result(
        tmp_path: Path) -> None:
    process = start_paced_auto_run(tmp_path / "runs")
    path = wait_for(tmp_path / "runs" / "*.jsonl", 12, process)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130
    assert process.stderr is not None
    told = process.stderr.read().decode()
    assert f"Continue it with: negotiate resume {path}\n" in told, told
    assert load_verified(path)[-1]["type"] == "aborted"
    assert not list(path.parent.glob("*.checkpoints.sqlite"))  # the plain loop ran it
    resumed = negotiate("resume", str(path), "-q")
    assert resumed.returncode == 0, resumed.stderr
    events = load_verified(path)
    types = [e["type"] for e in events]
    assert types.index("aborted") + 1 == types.index("resumed")
    assert core(events) == uninterrupted_park_run()


def test_an_auto_run_killed_mid_way_resumes_from_its_transcript_alone(tmp_path: Path) -> None:
    process = start_paced_auto_run(tmp_path / "runs")
    path = wait_for(tmp_path / "runs" / "*.jsonl", 20, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert load_verified(path)[-1]["type"] not in {"aborted", "outcome"}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no checkpoints
    resumed = negotiate("resume", str(path), "-q")
    assert resumed.returncode == 0, resumed.stderr
    events = load_verified(path)
    assert [e["type"] for e in events].count("resumed") == 1
    assert core(events) == uninterrupted_park_run()
    # It continued on the plain loop: still nothing beside the transcript.
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_pace_slows_the_plain_loop_too(tmp_path: Path) -> None:
    began = time.monotonic()
    done = negotiate("run", "rd-joint-venture", "--rounds", "4", "--pace", "0.2", "-q",
                     "--driver", "plain", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    turns = sum(e["type"] in {"move", "blocked"} for e in load_verified(
        next(tmp_path.glob("*.jsonl"))))
    assert time.monotonic() - began >= 0.2 * turns


def test_an_auto_run_is_listed_and_signed_off_without_any_checkpoint_database(
        tmp_path: Path) -> None:
    ran = negotiate("run", "rd-joint-venture", "--json", "--out", str(tmp_path))
    assert ran.returncode == 0, ran.stderr
    path = Path(json.loads(ran.stdout)["transcript"])
    listed = negotiate("transcripts", str(tmp_path), "--json")
    assert [row["status"] for row in json.loads(listed.stdout)["transcripts"]] == \
        ["pending sign-off"]
    signed = negotiate("review", str(path), "--approve", "--reviewer", "Ada")
    assert signed.returncode == 0, signed.stderr
    assert "Status: ratified" in signed.stdout and "paused run is resumed" not in signed.stdout
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_ctrl_c_during_a_resume_stops_it_cleanly_and_it_resumes_again(tmp_path: Path) -> None:
    process = start_paced_auto_run(tmp_path / "runs")
    path = wait_for(tmp_path / "runs" / "*.jsonl", 6, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resuming = subprocess.Popen([str(NEGOTIATE), "resume", str(path), "--pace", "0.03", "-q"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "COLUMNS": "400"},
                                preexec_fn=interruptible)
    wait_for(path, 20, resuming)
    resuming.send_signal(signal.SIGINT)
    assert resuming.wait(timeout=30) == 130
    assert resuming.stderr is not None
    told = resuming.stderr.read().decode()
    assert "Traceback" not in told
    assert f"Continue it with: negotiate resume {path}\n" in told, told
    assert load_verified(path)[-1]["type"] == "aborted"
    assert negotiate("resume", str(path), "-q").returncode == 0
    events = load_verified(path)
    assert [e["type"] for e in events].count("resumed") == 2
    assert core(events) == uninterrupted_park_run()
