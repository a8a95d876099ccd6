"""The docs work as written: the tutorial's YAML blocks make a valid scenario that runs."""

from __future__ import annotations

import re

import anyio

from negotiation.engine import run_scenario
from negotiation.scenario import parse_scenario
from tests.conftest import REPO


def yaml_blocks(path: str) -> list[str]:
    return re.findall(r"```yaml\n(.+?)\n```", (REPO / path).read_text(), flags=re.DOTALL)


def test_the_scenario_tutorial_blocks_make_a_scenario_that_validates_and_runs() -> None:
    blocks = yaml_blocks("docs/tutorial-scenario.md")
    scenario = parse_scenario("\n".join(blocks), "docs/tutorial-scenario.md")
    assert scenario.id == "telehealth-pilot"
    assert scenario.guardrails.pareto.max_distance == 0.02  # step 5's policy is in it too
    result = anyio.run(lambda: run_scenario(scenario, seed=1))
    assert result.status in {"agreement", "no_agreement"} and result.rounds >= 1
