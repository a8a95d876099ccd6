"""Adversarial review of session 4's non-studio changes: each attack that worked, as a test.

A hostile model server, a stranger's GENIUS files, odd scenarios: every one must end in a
clear refusal or a bounded run, never a silent bypass or a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from agents.budget import Budget
from agents.llm_client import LLMRun
from negotiation.analysis import SpaceAnalysis
from negotiation.devtools.llm_server import Reply, ScriptedServer
from negotiation.engine import RunResult, run_scenario
from negotiation.scenario import load_scenario
from negotiation.transcript import load_verified

SCENARIO = "platform-app-vendor"


def _completion(move: dict[str, Any], usage: dict[str, Any] | None) -> Reply:
    body: dict[str, Any] = {
        "id": "chatcmpl-hostile", "object": "chat.completion", "created": 0,
        "model": "scripted",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": json.dumps(move)}}]}
    if usage is not None:
        body["usage"] = usage
    return Reply(body=json.dumps(body))


def _hostile_run(usage: dict[str, Any] | None, budget: Budget, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> tuple[RunResult, list[dict[str, Any]], int]:
    """A run whose model always proposes the Nash point (never agreed: the other side
    holds out) and reports ``usage`` (or none) for every call."""
    scenario = load_scenario(SCENARIO)
    nash = SpaceAnalysis(scenario).nash
    assert nash is not None
    move = {"kind": "propose", "terms": nash.terms, "rationale": "Firm."}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ScriptedServer(lambda request, number: _completion(move, usage)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = anyio.run(lambda: run_scenario(
            scenario, agents={"vendor": "llm:scripted", "platform": "hardliner"},
            out_dir=tmp_path, llm_run=LLMRun(budget=budget)))
        requests = len(server.requests)
    assert result.path is not None
    calls = [e for e in load_verified(result.path) if e["type"] == "llm_call"]
    return result, calls, requests


@pytest.mark.parametrize("usage", [
    None,  # a server that reports no usage at all
    {"prompt_tokens": -1_000_000, "completion_tokens": -1_000_000, "total_tokens": -2_000_000},
], ids=["no-usage", "negative-usage"])
def test_a_server_that_hides_or_forges_its_usage_cannot_outrun_a_token_budget(
        usage: dict[str, Any] | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    limit = 20_000  # a handful of calls of this scenario's prompts at most
    budget = Budget(max_tokens=limit)
    result, calls, requests = _hostile_run(usage, budget, monkeypatch, tmp_path)
    assert result.reason.startswith("budget exhausted: token budget spent"), result.reason
    assert 0 < budget.tokens <= limit
    assert requests < 20  # without the fix, every round of the run was a paid call
    assert all(c["prompt_tokens"] >= 0 and c["completion_tokens"] >= 0 for c in calls)


def _run_into_closed_pipe(tmp_path: Path, *extra: str) -> tuple[int, str]:
    """``negotiate run … | true``: the reader of stdout is gone before the run starts."""
    import subprocess

    from tests.test_cli import NEGOTIATE

    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run([str(NEGOTIATE), "run", SCENARIO, "--out", str(tmp_path), *extra],
                              stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(writer)
    return done.returncode, done.stderr


@pytest.mark.parametrize("extra", [(), ("--json",)], ids=["live", "json"])
def test_a_run_whose_stdout_reader_has_gone_still_finishes_and_records_its_outcome(
        extra: tuple[str, ...], tmp_path: Path) -> None:
    code, stderr = _run_into_closed_pipe(tmp_path, *extra)
    (path,) = tmp_path.glob("*.jsonl")
    events = load_verified(path)
    assert events[-1]["type"] == "outcome", "the run stopped at the first line it printed"
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


def test_editing_a_runs_header_does_not_change_the_next_run_of_the_same_scenario(
        tmp_path: Path) -> None:
    """The header's scenario is computed once per scenario: a caller who redacts or edits
    the header of one run (before sharing it, say) must not edit the next run's."""
    scenario = load_scenario(SCENARIO)
    fresh = anyio.run(lambda: run_scenario(scenario, out_dir=None))
    expected = json.loads(json.dumps(fresh.transcript.events[0]["scenario"]))
    first = anyio.run(lambda: run_scenario(scenario, out_dir=None))
    header = first.transcript.events[0]
    header["scenario"].pop("organizations")  # redact the private preferences
    header["scenario"]["issues"][0]["name"] = "edited"
    second = anyio.run(lambda: run_scenario(scenario, out_dir=tmp_path))
    assert second.transcript.events[0]["scenario"] == expected
    assert second.path is not None
    on_disk = load_verified(second.path)[0]["scenario"]
    assert on_disk == expected


def test_the_utility_tables_runs_share_are_read_only() -> None:
    """Runs of one scenario share its utility table and each party's utility vector: an
    agent that wrote into its ``view.utility.vector`` would change every later run."""
    from negotiation.session import analysis_of

    analysis = analysis_of(load_scenario(SCENARIO))
    shared = [analysis.full_utilities, analysis.rational_full,
              *(function.vector for function in analysis.functions.values())]
    for array in shared:
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0.0


GENIUS_DATA = Path(__file__).parent / "data" / "genius"


def test_an_organisation_named_like_the_domain_file_does_not_overwrite_it(
        tmp_path: Path) -> None:
    from negotiation.genius import export_scenario, import_genius, write_export
    from negotiation.scenario import scenario_from_data

    _, data = import_genius(GENIUS_DATA / "catering")
    data["organizations"][-1]["id"] = f"{data['id']}-domain"
    scenario = scenario_from_data(data, "collide")
    written = write_export(export_scenario(scenario), tmp_path / "out")
    assert len(written) == 1 + len(scenario.organizations)
    again, _ = import_genius(tmp_path / "out")
    assert [org.id for org in again.organizations] == sorted(
        org.id.replace("-", "_") for org in scenario.organizations)


def test_a_forged_transcript_with_a_word_for_a_number_reads_as_a_conversation(
        tmp_path: Path) -> None:
    """A stranger's transcript, hash chain intact, whose offer gives a numeric issue a
    word: ``report --conversation`` shows the word, not a traceback."""
    from typer.testing import CliRunner

    from negotiation.cli import app
    from tests.test_events import rechained

    result = anyio.run(lambda: run_scenario(load_scenario(SCENARIO), seed=1,
                                            out_dir=tmp_path))
    assert result.path is not None

    def forge(records: list[dict[str, Any]]) -> None:
        move = next(r for r in records if r["type"] == "move" and r["action"].get("offer"))
        move["action"]["offer"]["terms"]["term_years"] = "forever"

    forged = rechained(result.path, tmp_path / "forged.jsonl", forge)
    shown = CliRunner().invoke(app, ["report", str(forged), "--conversation"])
    assert shown.exception is None or isinstance(shown.exception, SystemExit), shown.exception
    assert shown.exit_code in (0, 1, 2)
    assert "forever" in shown.output
