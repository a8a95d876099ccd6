"""Both drivers show the same thing: the same rendered stream at the terminal (scenario
panel included) and the same view for every agent at every turn, referee feedback for a
person's seat included — not only the same transcript."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import anyio

from agents import View
from negotiation.engine import run_scenario
from negotiation.graph import start_run
from negotiation.model import Action, Offer, Propose, WalkAway
from negotiation.scenario import load_scenario
from negotiation.transcript import deterministic_lines, load_verified
from tests.test_cli import NEGOTIATE

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


def test_both_drivers_print_the_same_run_at_the_terminal(tmp_path: Path) -> None:
    plain, graph = terminal("plain", tmp_path), terminal("graph", tmp_path)
    assert graph == plain
    assert "platform-app-vendor · seed 1 · 30 rounds" in plain  # the scenario panel
    assert plain.count("Confidential brief: you are vendor") == 1
    # The vendor's blocked offer is shown, and the person is told why on their next turn.
    assert plain.count("platform's share must be at") == 2
    assert "walk_away" in plain
