"""Regenerate the committed LLM recording (run from the repository root):

    .venv/bin/python tests/data/make_llm_recording.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio

from agents.llm_client import LLMRun
from negotiation.analysis import SpaceAnalysis
from negotiation.devtools.llm_server import ScriptedServer
from negotiation.engine import run_scenario
from negotiation.scenario import load_scenario
from tests.llm_support import fair_dealer

HERE = Path(__file__).parent


def main() -> None:
    scenario = load_scenario("platform-app-vendor")
    nash = SpaceAnalysis(scenario).nash
    assert nash is not None
    recording = HERE / "llm-vendor-platform.calls.jsonl"
    recording.unlink(missing_ok=True)
    with ScriptedServer(fair_dealer(nash.terms)) as server:
        os.environ["OPENAI_BASE_URL"] = server.base_url
        result = anyio.run(lambda: run_scenario(scenario, agents={"vendor": "llm:scripted"},
                                                llm_run=LLMRun(record=recording)))
    assert result.agreement is not None
    (HERE / "llm-vendor-platform.expected.json").write_text(json.dumps(
        {"status": result.status, "terms": result.agreement.terms, "rounds": result.rounds},
        indent=2) + "\n")
    print(f"recorded {len(server.requests)} calls; {result.status} in round {result.rounds}")


if __name__ == "__main__":
    main()
