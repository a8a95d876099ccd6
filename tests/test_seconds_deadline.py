"""A deadline in seconds: read from the clock the driver passes in, recorded in the
transcript, so a run replays and resumes exactly; the protocols stay pure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from negotiation.engine import run_scenario
from negotiation.graph import resume_run
from negotiation.model import Scenario
from negotiation.scenario import load_scenario, parse_scenario, scenario_digest
from negotiation.transcript import deterministic_lines, load_verified, verify

META = {"resumed", "aborted"}


def fake_clock(step: float = 1.0, start: float = 1000.0) -> Callable[[], float]:
    """A clock that moves ``step`` seconds each time it is read."""
    now = [start]

    def read() -> float:
        now[0] += step
        return now[0]

    return read


def with_seconds(name: str, seconds: float, rounds: int = 30) -> Scenario:
    data: dict[str, Any] = load_scenario(name).model_dump(mode="json")
    data["protocol"] = {**data["protocol"], "seconds": seconds, "rounds": rounds}
    return parse_scenario(yaml.safe_dump(data), f"{name}-timed.yaml")


def run(scenario: Scenario, path: Path, clock: Callable[[], float]) -> Any:
    return anyio.run(lambda: run_scenario(scenario, seed=3, transcript=path, clock=clock))


def test_the_run_ends_when_the_seconds_run_out_and_records_each_reading(tmp_path: Path
                                                                        ) -> None:
    scenario = with_seconds("rd-joint-venture", 5)
    result = run(scenario, tmp_path / "t.jsonl", fake_clock())
    assert result.status == "no_agreement"
    assert result.reason == "the deadline of 5 seconds passed (5 s)"
    events = load_verified(tmp_path / "t.jsonl")
    assert events[0]["protocol"] == {"name": "alternating_offers", "rounds": 30, "seconds": 5.0}
    assert [e["clock"] for e in events if e["type"] in {"move", "blocked"}] == [1, 2, 3, 4]
    assert events[-1]["type"] == "outcome" and events[-1]["clock"] == 5


def test_rounds_still_end_a_run_that_has_time_left(tmp_path: Path) -> None:
    scenario = with_seconds("rd-joint-venture", 10_000, rounds=2)
    result = run(scenario, tmp_path / "t.jsonl", fake_clock())
    assert result.rounds == 2 and "seconds" not in result.reason


def test_a_run_with_a_seconds_deadline_is_byte_identical_with_the_same_clock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    scenario = with_seconds("platform-app-vendor", 7.5)
    run(scenario, tmp_path / "a.jsonl", fake_clock(0.5))
    run(scenario, tmp_path / "b.jsonl", fake_clock(0.5))
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    run(scenario, tmp_path / "c.jsonl", fake_clock(0.25))  # another clock, another run
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()


def core(events: list[dict[str, Any]]) -> list[str]:
    kept = [{k: v for k, v in e.items() if k != "seq"} for e in events if e["type"] not in META]
    return deterministic_lines(kept)


def test_a_resumed_run_replays_the_recorded_clock_and_counts_on_from_it(tmp_path: Path
                                                                       ) -> None:
    scenario = with_seconds("park-redevelopment", 9)
    whole = tmp_path / "whole.jsonl"
    run(scenario, whole, fake_clock())
    lines = whole.read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines[:5]))  # the header and four turns: a crash mid-run
    # Resumed under a clock that moves 3 s per reading: the replayed turns must take the
    # recorded readings (1-4 s; live ones would not match the transcript and the resume
    # would be refused), and the new turns count on from the last one: 7 s, then 10 s.
    resumed = anyio.run(lambda: resume_run(cut, clock=fake_clock(step=3.0)))
    assert resumed.status == "no_agreement"
    assert resumed.reason == "the deadline of 9 seconds passed (10 s)"
    events = load_verified(cut)
    assert verify(cut).ok
    assert [e["clock"] for e in events if e["type"] in {"move", "blocked"}] == [1, 2, 3, 4, 7]
    assert [e["type"] for e in events].count("resumed") == 1
    assert core(events)[:5] == core(load_verified(whole))[:5]


def test_resuming_with_the_same_clock_gives_the_uninterrupted_run(tmp_path: Path) -> None:
    scenario = with_seconds("park-redevelopment", 9)
    whole = tmp_path / "whole.jsonl"
    run(scenario, whole, fake_clock())
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(whole.read_bytes().splitlines(keepends=True)[:5]))
    anyio.run(lambda: resume_run(cut, clock=fake_clock(start=9e6)))
    assert core(load_verified(cut)) == core(load_verified(whole))


def test_undated_scenarios_keep_their_digest_and_header() -> None:
    scenario = load_scenario("rd-joint-venture")
    assert "seconds" not in scenario.protocol.model_dump(mode="json")
    data = scenario.model_dump(mode="json")
    assert scenario_digest(parse_scenario(yaml.safe_dump(data), "x.yaml")) == \
        scenario_digest(scenario)
