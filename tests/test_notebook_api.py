"""The notebook API: ``negotiation.api.run`` / ``arun`` / ``tournament`` and DataFrames."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import anyio
import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

import negotiation.api as api
from negotiation.api import RunResult, arun, run, tournament
from negotiation.engine import run_scenario
from negotiation.scenario import load_scenario
from negotiation.tournament import TournamentError
from negotiation.transcript import load_verified
from tests.conftest import REPO

#: The public API, pinned: a change to it is a decision (update this list deliberately).
PUBLIC_API = [
    "Accept", "Action", "ActionKind", "Agent", "Bidder", "Failure", "Feedback", "Finding",
    "GuardrailCheck", "History", "IllegalActionError", "Issue", "Move", "NegotiationProtocol",
    "Offer", "Organization", "OutcomeSpace", "Preferences", "Propose", "ProtocolBase",
    "ProtocolState", "PublicScenario", "RedLine", "RunResult", "Scenario", "ScenarioError",
    "SpaceAnalysis", "TermValue", "TimeDependentCurve", "UtilityFunction", "Verdict", "View",
    "WalkAway", "arun", "derive_seed", "load_scenario", "pareto_mask", "parse_scenario",
    "red_line_mask", "run", "run_scenario", "shapley_values", "tournament", "violates",
]


def test_the_public_api_is_exactly_the_pinned_list() -> None:
    assert sorted(api.__all__) == sorted(PUBLIC_API)
    assert all(hasattr(api, name) for name in api.__all__)


def test_run_returns_outcome_agreement_fairness_and_the_transcript_path(tmp_path: Path) -> None:
    result = run("platform-app-vendor", agents={"vendor": "tit_for_tat"}, seed=3,
                 out_dir=tmp_path)
    assert isinstance(result, RunResult)
    assert result.status == "agreement" and result.agreement is not None
    assert result.outcome is not None and result.outcome.status == "agreement"
    assert result.fairness == result.outcome.fairness
    assert result.fairness is not None and 0 < result.fairness["nash_ratio"] <= 1
    assert result.transcript_path is not None and result.transcript_path.parent == tmp_path
    assert load_verified(result.transcript_path)[-1]["type"] == "outcome"
    assert result.agents == {"platform": "boulware", "vendor": "tit_for_tat"}


def test_run_is_the_same_negotiation_as_the_async_engine(tmp_path: Path) -> None:
    scenario = load_scenario("rd-joint-venture")
    ours = run(scenario, seed=7)
    engine = anyio.run(lambda: run_scenario(scenario, seed=7))
    assert (ours.status, ours.rounds, ours.agreement, ours.utilities) == \
        (engine.status, engine.rounds, engine.agreement, engine.utilities)
    awaited = anyio.run(lambda: arun(scenario, seed=7))
    assert awaited.agreement == ours.agreement


def test_run_works_inside_a_running_event_loop_as_in_jupyter() -> None:
    async def cell() -> RunResult:
        return run("platform-app-vendor", seed=1)

    result = asyncio.run(cell())
    assert result.status == "agreement"


def test_a_bad_scenario_is_refused_before_any_run(tmp_path: Path) -> None:
    from negotiation.scenario import ScenarioError

    with pytest.raises(ScenarioError):
        run(tmp_path / "missing.yaml")


def test_events_frame_has_one_row_per_recorded_event() -> None:
    result = run("platform-app-vendor", seed=2)
    frame = result.events_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["seq"]) == [e["seq"] for e in result.events]
    assert frame.iloc[0]["type"] == "header" and frame.iloc[-1]["type"] == "outcome"
    moves = frame[frame["type"] == "move"]
    assert set(moves["kind"]) <= {"propose", "accept", "walk_away"}
    assert set(moves["party"]) == {"platform", "vendor"}


def test_offers_frame_has_every_proposal_with_every_partys_utility() -> None:
    scenario = load_scenario("platform-app-vendor")
    result = run(scenario, agents={"platform": "negmas:AspirationNegotiator",
                                   "vendor": "negmas:AspirationNegotiator"}, seed=0)
    frame = result.offers_frame()
    proposals = [e for e in result.events if e["type"] in ("move", "blocked")
                 and e["action"]["kind"] == "propose"]
    assert len(frame) == len(proposals)
    assert frame["blocked"].any(), "the referee blocks proposals crossing red lines"
    assert list(frame.columns) == ["seq", "round", "turn", "time", "party", "blocked",
                                   *(i.id for i in scenario.issues), "utility_platform",
                                   "utility_vendor"]
    delivered = frame[~frame["blocked"]].iloc[0]
    recorded = next(e for e in proposals if e["seq"] == delivered["seq"])
    assert delivered["utility_vendor"] == recorded["utilities"]["vendor"]
    blocked = frame[frame["blocked"]].iloc[0]
    terms = next(e for e in proposals if e["seq"] == blocked["seq"])["action"]["offer"]["terms"]
    from negotiation.analysis import SpaceAnalysis

    functions = SpaceAnalysis(scenario).functions
    assert blocked["utility_platform"] == pytest.approx(functions["platform"](terms))
    assert frame["time"].is_monotonic_increasing and frame["time"].between(0, 1).all()


def test_tournament_returns_its_rows_as_a_dataframe(tmp_path: Path) -> None:
    frame = tournament({"scenarios": ["platform-app-vendor"],
                        "strategies": ["boulware", "negmas:AspirationNegotiator"], "seeds": 1},
                       results=tmp_path / "rows.csv")
    assert len(frame) == 4  # two strategies on two seats, one seed
    assert {"job", "status", "welfare", "nash_ratio"} <= set(frame.columns)
    assert all(isinstance(seats, dict) for seats in frame["seats"])
    assert (tmp_path / "rows.csv").exists()


def test_tournament_also_runs_inside_a_running_event_loop() -> None:
    async def cell() -> pd.DataFrame:
        return tournament({"scenarios": ["platform-app-vendor"], "lineups": [["boulware",
                                                                              "conceder"]],
                           "seeds": 1})

    assert len(asyncio.run(cell())) == 2


def test_tournament_given_in_code_is_checked_like_a_file() -> None:
    with pytest.raises(TournamentError, match=r"negmas:os\.system"):
        tournament({"scenarios": ["platform-app-vendor"],
                    "strategies": ["boulware", "negmas:os.system"]})
    with pytest.raises(TournamentError, match="strategies"):
        tournament({"scenarios": ["platform-app-vendor"], "strategies": "boulware"})


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120, env={**os.environ})


def test_the_api_imports_without_loading_pandas_or_negmas() -> None:
    done = python("import sys, negotiation.api; "
                  "print(sorted(m for m in ('pandas', 'negmas') if m in sys.modules))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_frames_without_pandas_say_what_to_install() -> None:
    done = python("import sys; sys.modules['pandas'] = None\n"
                  "from negotiation.api import run\n"
                  "result = run('platform-app-vendor')\n"
                  "print(result.status)\n"
                  "try:\n    result.offers_frame()\n"
                  "except Exception as error:\n    print(type(error).__name__, error)\n")
    assert done.returncode == 0, done.stderr
    assert "agreement" in done.stdout
    assert "PandasMissing DataFrames need pandas, which is not installed: pip install pandas" \
        in done.stdout


def test_the_example_notebook_runs_end_to_end() -> None:
    """examples/notebook.ipynb: a GENIUS domain imported, our strategies against NegMAS
    negotiators, offers plotted over time, the fairness report, a tournament."""
    notebook = nbformat.read(REPO / "examples" / "notebook.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "examples")}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for o in outputs)
    assert "holiday (imported from GENIUS)" in text
    assert "negmas:AspirationNegotiator" in text
    assert "nash_ratio" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the offers are plotted"
