"""Per-party LLM usage (calls, attempts, tokens, cost) read from a run's events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from agents.budget import Budget
from agents.llm_client import LLMRun
from negotiation.analysis import SpaceAnalysis
from negotiation.devtools.llm_server import Reply, ScriptedServer, reply_status
from negotiation.engine import run_scenario
from negotiation.events import Transcript
from negotiation.scenario import load_scenario
from negotiation.transcript import load_verified
from negotiation.usage import Usage, total_usage, usage_by_party
from tests.llm_support import fair_dealer


def test_usage_sums_each_partys_calls_attempts_tokens_and_cost(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    scenario = load_scenario("platform-app-vendor")
    nash = SpaceAnalysis(scenario).nash
    assert nash is not None
    dealer = fair_dealer(nash.terms)

    def script(request: dict[str, Any], number: int) -> Reply:
        return reply_status(429) if number == 0 else dealer(request, number)

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ScriptedServer(script) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        llm_run = LLMRun(budget=Budget(prices={"scripted": (1.0, 2.0)}))
        result = anyio.run(lambda: run_scenario(
            scenario, agents={"vendor": "llm:scripted", "platform": "llm:other"},
            out_dir=tmp_path, llm_run=llm_run))
    assert result.path is not None
    records = load_verified(result.path)
    calls = [r for r in records if r["type"] == "llm_call"]
    vendor_calls = [c for c in calls if c["party"] == "vendor"]
    platform_calls = [c for c in calls if c["party"] == "platform"]
    assert vendor_calls and platform_calls

    by_party = usage_by_party(Transcript.of(records).events)
    assert by_party == usage_by_party(records)  # typed events and plain records agree
    first = calls[0]["party"]
    assert by_party[first].attempts == by_party[first].calls + 1  # the 429, then a 200
    vendor = by_party["vendor"]
    assert vendor.tokens_in == 100 * len(vendor_calls)
    assert vendor.tokens_out == 20 * len(vendor_calls)
    assert vendor.cost_usd == pytest.approx(len(vendor_calls) * (100 * 1 + 20 * 2) / 1e6)
    assert vendor.cost_known
    platform = by_party["platform"]
    assert platform.unpriced_calls == len(platform_calls) and not platform.cost_known
    total = total_usage(by_party)
    assert total.calls == len(calls) == llm_run.budget.calls - 1
    assert total.attempts == llm_run.budget.calls
    assert total.tokens == llm_run.budget.tokens


def test_a_run_without_llm_agents_has_no_usage() -> None:
    assert usage_by_party([{"type": "move", "party": "a"}]) == {}
    assert total_usage({}) == Usage()


def test_a_tournament_prices_each_llm_seat_and_its_leaderboard_shows_tokens_and_cost(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from negotiation.cli import app
    from negotiation.tournament import read_rows

    scenario = load_scenario("platform-app-vendor")
    nash = SpaceAnalysis(scenario).nash
    assert nash is not None
    config = tmp_path / "llm.yaml"
    config.write_text("scenarios: [platform-app-vendor]\nlineups: [[boulware, llm:scripted]]\n"
                      "role_swaps: false\nseeds: 2\nrounds: 3\n")
    prices = tmp_path / "prices.yaml"
    prices.write_text("scripted: {input: 1.0, output: 2.0}\n")
    out = tmp_path / "results.csv"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ScriptedServer(fair_dealer(nash.terms, accept_above=2.0)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        done = CliRunner().invoke(app, [
            "tournament", str(config), "--prices", str(prices), "--out", str(out),
            "--workers", "1", "--no-parquet"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert done.exit_code == 0, done.output
    rows = read_rows(out)
    assert len(rows) == 2
    for row in rows:
        usage = json.loads(row["seat_usage"])
        assert set(usage) == {"vendor"}  # the LLM seat; boulware made no call
        vendor = usage["vendor"]
        assert vendor["tokens_in"] == 100 * vendor["calls"]
        assert vendor["cost_usd"] == pytest.approx(vendor["calls"] * 140 / 1e6)
        assert float(row["cost_usd"]) == pytest.approx(vendor["cost_usd"])
        assert vendor["cost_usd"] > 0
    total_tokens = sum(int(row["tokens"]) for row in rows)
    assert "Tokens" in done.output and "Cost" in done.output
    llm_line = next(line for line in done.output.splitlines() if "llm:scripted" in line)
    assert f"{total_tokens:,}" in llm_line
    total_cost = sum(float(row["cost_usd"]) for row in rows)
    assert f"${total_cost:.4f}" in llm_line


def test_the_dev_server_wants_a_script_or_random_moves() -> None:
    from typer.testing import CliRunner

    from negotiation.cli import app

    done = CliRunner().invoke(app, ["dev", "llm-server"], env={"NO_COLOR": "1"})
    assert done.exit_code == 2
    assert "give --script FILE or --random-moves SEED" in done.output
