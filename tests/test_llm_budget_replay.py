"""LLM budgets that are never overshot, and replays that refuse a different run.

Through the real openai client, over real HTTP, against the scripted server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest

from agents.budget import Budget, prompt_token_bound
from agents.llm_client import LLMRun
from negotiation.analysis import SpaceAnalysis
from negotiation.devtools.llm_server import Reply, ScriptedServer, reply_json, reply_status
from negotiation.engine import RunResult, run_scenario
from negotiation.scenario import load_scenario
from negotiation.transcript import load_verified
from tests.test_cli import NEGOTIATE, REPO

SCENARIO = "platform-app-vendor"


def greedy_after_429s(terms: dict[str, Any]) -> Any:
    """Every call first gets a 429 (the client retries), then a proposal that uses every
    completion token the request allows (the worst case for a budget) and reports a
    prompt of a quarter of the request's size."""

    def script(request: dict[str, Any], number: int) -> Reply:
        if number % 2 == 0:
            return reply_status(429)
        prompt = len(json.dumps(request)) // 4
        return reply_json({"kind": "propose", "terms": terms, "rationale": "Firm."},
                          usage=(prompt, request["max_tokens"]))

    return script


def budget_run(budget: Budget, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
               ) -> tuple[RunResult, list[dict[str, Any]], list[dict[str, Any]]]:
    scenario = load_scenario(SCENARIO)
    nash = SpaceAnalysis(scenario).nash
    assert nash is not None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ScriptedServer(greedy_after_429s(nash.terms)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = anyio.run(lambda: run_scenario(
            scenario, agents={"vendor": "llm:scripted"}, out_dir=tmp_path,
            llm_run=LLMRun(budget=budget)))
    assert result.path is not None
    calls = [e for e in load_verified(result.path) if e["type"] == "llm_call"]
    return result, calls, server.requests


def unlimited_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                    ) -> list[tuple[int, int, int]]:
    """(prompt bound, prompt tokens, completion tokens) of each call of an unlimited run:
    the runs are deterministic, so a budget can be set to bind mid-way through call 3."""
    _, calls, requests = budget_run(Budget(), monkeypatch, tmp_path)
    bounds = [prompt_token_bound({k: v for k, v in r.items() if k != "max_tokens"})
              for r in requests[1::2]]
    return [(bound, c["prompt_tokens"], c["completion_tokens"])
            for bound, c in zip(bounds, calls, strict=False)]


def test_a_token_budget_is_never_exceeded_under_429_retries(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first, second, third = unlimited_calls(monkeypatch, tmp_path / "probe")[:3]
    limit = sum(first[1:]) + sum(second[1:]) + third[0] + 400  # call 3 may reply 400
    budget = Budget(max_tokens=limit)
    result, calls, requests = budget_run(budget, monkeypatch, tmp_path)
    assert result.reason.startswith("budget exhausted: token budget spent")
    used = sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls)
    assert used == budget.tokens <= limit
    assert len(requests) == 2 * len(calls)  # every call went 429, then 200
    assert budget.calls == len(requests)  # each attempt counted
    caps = [r["max_tokens"] for r in requests]
    assert caps[:4] == [800] * 4 and caps[4:] == [400, 400]  # call 3's reply was capped
    assert all(c["wall"]["attempts"][0]["status"] == 429 for c in calls)


def test_a_cost_budget_is_never_exceeded_under_429_retries(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first, second, third = unlimited_calls(monkeypatch, tmp_path / "probe")[:3]
    dollars = [(tokens_in * 1.0 + tokens_out * 10.0) / 1e6 for _, tokens_in, tokens_out
               in (first, second)]
    limit = sum(dollars) + (third[0] * 1.0 + 400 * 10.0) / 1e6
    budget = Budget(max_cost=limit, prices={"scripted": (1.0, 10.0)})
    result, calls, requests = budget_run(budget, monkeypatch, tmp_path)
    assert result.reason.startswith("budget exhausted: cost budget spent")
    assert sum(c["cost_usd"] for c in calls) == pytest.approx(budget.cost)
    assert budget.cost <= limit
    assert [r["max_tokens"] for r in requests][4] in {399, 400}  # capped (rounding down)


def test_a_call_is_refused_when_its_prompt_alone_could_spend_the_budget(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result, calls, requests = budget_run(Budget(max_tokens=500), monkeypatch, tmp_path)
    assert requests == [] and calls == []
    assert "token budget spent (0 of 500 tokens used; the next call needs up to" \
        in result.reason


def test_the_prompt_bound_is_the_request_size_in_bytes() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "héllo"}]}
    assert prompt_token_bound(body) == len(
        '{"model":"m","messages":[{"role":"user","content":"héllo"}]}'.encode())


def test_a_spent_budget_ends_negotiate_run_with_exit_3_and_says_so(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIO)
    nash = SpaceAnalysis(scenario).nash
    assert nash is not None
    with ScriptedServer(greedy_after_429s(nash.terms)) as server:
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1",
               "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test"}
        done = subprocess.run(
            [str(NEGOTIATE), "run", SCENARIO, "--agent", "vendor=llm:scripted", "--driver",
             "plain", "--budget-tokens", "20000", "-q", "--out", str(tmp_path)],
            capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert done.returncode == 3, done.stderr
    said = " ".join(done.stderr.split())
    assert "The run ended because an agent failed: budget exhausted: token budget spent" \
        in said and "raise it (--budget-tokens)" in said and "Traceback" not in said
    errors = [e for e in load_verified(next(tmp_path.glob("*.jsonl")))
              if e["type"] == "error"]
    assert errors[-1]["error"].startswith("budget exhausted: token budget spent")


def test_budget_calls_help_says_it_counts_http_requests() -> None:
    from typer.testing import CliRunner

    from negotiation.cli import app

    shown = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "300"}).output
    assert "HTTP requests" in shown and "not turns" in shown


def test_a_cost_budget_without_a_price_for_the_model_is_refused_before_the_run(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from agents import StrategyError

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    budget = Budget(max_cost=1.0, prices={"other-model": (1.0, 2.0)})
    with pytest.raises(StrategyError, match="no price for model 'scripted'") as refused:
        anyio.run(lambda: run_scenario(load_scenario(SCENARIO),
                                       agents={"vendor": "llm:scripted"}, out_dir=tmp_path,
                                       llm_run=LLMRun(budget=budget)))
    assert refused.value.exit_code == 2
    assert not list(tmp_path.glob("*.jsonl"))


# --- replay ------------------------------------------------------------------------------

COMMITTED = Path(__file__).parent / "data" / "llm-vendor-platform.calls.jsonl"


def replay(monkeypatch: pytest.MonkeyPatch, out: Path, seed: int = 0,
           agents: dict[str, str] | None = None, scenario: str = SCENARIO,
           anyway: bool = False) -> RunResult:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return anyio.run(lambda: run_scenario(
        load_scenario(scenario), seed=seed, agents=agents or {"vendor": "llm:scripted"},
        out_dir=out, llm_run=LLMRun(replay=COMMITTED, replay_anyway=anyway)))


@pytest.mark.parametrize(("change", "said"), [
    ({"seed": 1}, "seed 0 (this run: 1)"),
    ({"agents": {"vendor": "llm:scripted", "platform": "tit_for_tat"}},
     "agents platform=boulware, vendor=llm:scripted (this run: platform=tit_for_tat, "
     "vendor=llm:scripted)"),
    ({"scenario": "rd-joint-venture", "agents": {"voltaic": "llm:scripted"}},
     "scenario 'platform-app-vendor' (this run: 'rd-joint-venture')"),
])
def test_replaying_another_seed_scenario_or_agent_set_is_refused_and_says_what_differs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, change: dict[str, Any],
        said: str) -> None:
    from agents.llm_client import ReplayMismatch

    with pytest.raises(ReplayMismatch) as refused:
        replay(monkeypatch, tmp_path, **change)
    assert said in str(refused.value) and "--replay-anyway" in str(refused.value)
    assert refused.value.exit_code == 2
    assert not list(tmp_path.glob("*.jsonl"))  # refused before any transcript


def test_replay_anyway_replays_a_recording_made_with_another_seed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = replay(monkeypatch, tmp_path, seed=1, anyway=True)
    assert result.status == "agreement"  # boulware ignores the seed: every request matches


def test_negotiate_run_refuses_a_replay_with_another_seed_with_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("OPENAI_BASE_URL", None)
    command = [str(NEGOTIATE), "run", SCENARIO, "--agent", "vendor=llm:scripted", "--seed", "1",
               "--replay", str(COMMITTED), "--driver", "plain", "-q", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert "was made with seed 0 (this run: 1)" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    anyway = subprocess.run([*command, "--replay-anyway"], capture_output=True, text=True,
                            cwd=REPO, env=env, timeout=120)
    assert anyway.returncode == 0, anyway.stderr


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [difference for key in sorted(set(a) | set(b))
                for difference in _differences(a.get(key), b.get(key), f"{path}.{key}")]
    return [] if a == b else [path]


def test_two_replays_differ_only_in_the_named_wall_clock_fields(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = replay(monkeypatch, tmp_path / "first")
    second = replay(monkeypatch, tmp_path / "second")
    assert first.path is not None and second.path is not None
    a, b = load_verified(first.path), load_verified(second.path)
    assert [e["type"] for e in a] == [e["type"] for e in b]
    differing = {path for x, y in zip(a, b, strict=True) for path in _differences(x, y)}
    # What README.md promises: everything but the latency (and the hashes that cover it).
    assert differing <= {".wall.latency_ms", ".hash", ".prev_hash"}


def test_a_campaign_replayed_with_another_seed_is_refused(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import yaml

    from agents.llm_client import ReplayMismatch
    from negotiation.campaign import load_campaign, run_campaign
    from tests.llm_support import fair_dealer

    path = tmp_path / "arc.yaml"
    path.write_text(yaml.safe_dump({
        "id": "llm-arc", "title": "LLM arc", "scenario": SCENARIO,
        "agents": {"vendor": "llm:scripted"},
        "stages": [{"id": "pilot", "kind": "negotiate"}]}), encoding="utf-8")
    nash = SpaceAnalysis(load_scenario(SCENARIO)).nash
    assert nash is not None
    loaded = load_campaign(path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ScriptedServer(fair_dealer(nash.terms)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        recorded = anyio.run(lambda: run_campaign(loaded, tmp_path / "live", fsync=False))
    monkeypatch.delenv("OPENAI_BASE_URL")
    calls = recorded.folder / "llm-calls.jsonl"
    with pytest.raises(ReplayMismatch, match=r"was made with seed \d+ \(this run: \d+\)"):
        anyio.run(lambda: run_campaign(loaded, tmp_path / "again", seed=1, fsync=False,
                                       llm_run=LLMRun(replay=calls)))
    same = anyio.run(lambda: run_campaign(loaded, tmp_path / "same", fsync=False,
                                          llm_run=LLMRun(replay=calls)))
    assert [s.status for s in same.stages] == [s.status for s in recorded.stages]
