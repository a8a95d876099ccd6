"""Invalid-reply rate of LLM agents against a model that answers with random moves its
request allows (``random_valid_moves`` of the scripted server), over real HTTP.

"without schema" sends no schema (JSON mode): the model draws from the reply format the
prompt describes.  "with schema" sends the per-turn JSON Schema (structured output): only
the moves legal now, a non-blank rationale, the allowed splits.  Each negotiation seats
LLMs only, or one LLM with rule-based agents, on a 2-party and a 3-party scenario.

    .venv/bin/python benchmarks/bench_llm_invalid_replies.py [--negotiations 20]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from negotiation.devtools.llm_server import ScriptedServer, random_valid_moves
from negotiation.engine import run_scenario
from negotiation.model import LLMSettings, Scenario
from negotiation.scenario import load_scenario

#: (scenario, which organisations are LLMs: all, or the first only)
TABLES = [("platform-app-vendor", "all"), ("platform-app-vendor", "first"),
          ("park-redevelopment", "all"), ("park-redevelopment", "first")]


def with_llms(scenario: Scenario, who: str, response_format: str) -> tuple[Scenario,
                                                                          dict[str, str]]:
    settings = LLMSettings(model="random", response_format=response_format,  # type: ignore[arg-type]
                           use_tools=False, max_invalid_replies=2, max_retries=0)
    seats = scenario.party_ids if who == "all" else scenario.party_ids[:1]
    organizations = [org.model_copy(update={"agent": org.agent.model_copy(
        update={"llm": settings})}) if org.id in seats else org
        for org in scenario.organizations]
    return scenario.model_copy(update={"organizations": organizations}), \
        {party: "llm" for party in seats}


def _kind(error: str) -> str:
    for needle, name in [("not allowed now", "illegal move (e.g. accept before an offer)"),
                         ("needs 'terms'", "proposal without terms"),
                         ("rationale", "blank rationale"), ("invalid terms", "invalid terms"),
                         ("JSON", "not JSON")]:
        if needle in error:
            return name
    return error[:60]


def measure(response_format: str, negotiations: int) -> tuple[int, Counter[str]]:
    """Replies received and the problems of the invalid ones, over every table."""
    calls: list[dict[str, Any]] = []
    with ScriptedServer(random_valid_moves(seed=1)) as server:
        os.environ["OPENAI_BASE_URL"] = server.base_url
        os.environ.setdefault("OPENAI_API_KEY", "random")
        for name, who in TABLES:
            scenario, agents = with_llms(load_scenario(name), who, response_format)
            for seed in range(negotiations):
                anyio.run(functools.partial(
                    run_scenario, scenario, seed=seed, agents=agents, rounds=6, fsync=False,
                    on_event=lambda e: calls.append(e) if e["type"] == "llm_call" else None))
    problems = Counter(_kind(call.get("error", "")) for call in calls
                       if call["status"] == "invalid")
    return len(calls), problems


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--negotiations", type=int, default=20,
                        help="negotiations per table (4 tables)")
    arguments = parser.parse_args()
    for label, response_format in [("without schema (JSON mode)", "json_object"),
                                   ("with the per-turn schema", "json_schema")]:
        replies, problems = measure(response_format, arguments.negotiations)
        invalid = sum(problems.values())
        print(f"{label}: {invalid} invalid of {replies} replies "
              f"({invalid / max(replies, 1):.1%})")
        for problem, count in problems.most_common():
            print(f"    {count:5d}  {problem}")


if __name__ == "__main__":
    main()
