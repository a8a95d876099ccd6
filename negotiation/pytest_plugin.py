"""Pytest fixtures for pinning negotiations in your own test suite (registered through
the ``pytest11`` entry point, so they are available wherever this package is installed).

    def test_the_pilot_deal_still_closes(negotiation_run):
        result = negotiation_run("platform-app-vendor", agents={"vendor": "tit_for_tat"},
                                 seed=3)
        assert result.status == "agreement"
        assert result.agreement.terms["exclusivity"] == "months_12"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from negotiation.engine import RunResult, run_scenario
from negotiation.model import Scenario
from negotiation.scenario import load_scenario
from negotiation.transcript import load_verified

Runner = Callable[..., RunResult]


@pytest.fixture
def negotiation_run(tmp_path: Path) -> Runner:
    """Run a scenario (a path, a shipped name or a ``Scenario``) with chosen agents and seed;
    the transcript is written under the test's ``tmp_path`` and verified."""

    def run(scenario: str | Path | Scenario, *, agents: Mapping[str, str] | None = None,
            seed: int = 0, rounds: int | None = None) -> RunResult:
        loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        result = anyio.run(lambda: run_scenario(loaded, seed=seed, rounds=rounds,
                                                agents=agents, out_dir=tmp_path))
        assert result.path is not None
        load_verified(result.path)  # a pinned run must also leave a valid transcript
        return result

    return run


@pytest.fixture
def transcript_events() -> Callable[[RunResult], list[dict[str, Any]]]:
    """The verified events of a run's transcript."""

    def events(result: RunResult) -> list[dict[str, Any]]:
        assert result.path is not None, "run with a transcript file (negotiation_run does)"
        return load_verified(result.path)

    return events
