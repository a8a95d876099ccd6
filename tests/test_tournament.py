"""Tournaments: enumeration, streaming results, resuming, leaderboards, golden files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation.generate import random_scenario
from negotiation.scenario import scenario_from_data
from negotiation.tournament import (
    DETERMINISTIC,
    TournamentConfig,
    TournamentError,
    bootstrap_ci,
    compare_with_golden,
    jobs,
    leaderboard,
    read_rows,
    run_tournament,
)
from tests.test_cli import negotiate

SMALL = TournamentConfig(scenarios=["platform-app-vendor", "park-redevelopment"],
                         strategies=["boulware", "conceder"], seeds=[0, 1])


def test_round_robin_assigns_every_strategy_to_every_seat() -> None:
    all_jobs = jobs(SMALL)
    # 2 parties: 2² assignments; 3 parties: 2³; two seeds each.
    assert len(all_jobs) == (4 + 8) * 2
    assert len({job.key for job in all_jobs}) == len(all_jobs)


def test_lineups_swap_roles() -> None:
    config = TournamentConfig(scenarios=["rd-joint-venture"],
                              lineups=[["boulware", "hardliner"]], seeds=1)
    seats = {job.seats for job in jobs(config)}
    assert seats == {(("voltaic", "boulware"), ("kestrel", "hardliner")),
                     (("voltaic", "hardliner"), ("kestrel", "boulware"))}
    fixed = config.model_copy(update={"role_swaps": False})
    assert len(jobs(fixed)) == 1


def test_a_lineup_must_fill_every_seat() -> None:
    config = TournamentConfig(scenarios=["park-redevelopment"], lineups=[["boulware"] * 2])
    with pytest.raises(TournamentError, match="3 seats"):
        jobs(config)


def rows_by_job(path: Path) -> dict[str, dict[str, str]]:
    return {row["job"]: {k: row[k] for k in DETERMINISTIC} for row in read_rows(path)}


def test_parallel_and_serial_runs_give_the_same_rows(tmp_path: Path) -> None:
    assert run_tournament(SMALL, tmp_path / "serial.csv", workers=1, parquet=False) == 24
    assert run_tournament(SMALL, tmp_path / "parallel.csv", workers=2, parquet=False) == 24
    assert rows_by_job(tmp_path / "serial.csv") == rows_by_job(tmp_path / "parallel.csv")


def test_an_interrupted_tournament_keeps_its_rows_and_skips_them(tmp_path: Path) -> None:
    full = tmp_path / "full.csv"
    run_tournament(SMALL, full, workers=1, parquet=False)
    partial = tmp_path / "partial.csv"
    lines = full.read_text().splitlines(keepends=True)
    partial.write_text("".join(lines[:10]))  # header and 9 finished rows
    assert run_tournament(SMALL, partial, workers=1, parquet=False) == 24 - 9
    assert rows_by_job(partial) == rows_by_job(full)
    assert run_tournament(SMALL, partial, workers=1, parquet=False) == 0


def test_results_stream_to_parquet_too(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    run_tournament(SMALL, tmp_path / "r.csv", workers=1)
    (part,) = tmp_path.glob("r.part*.parquet")
    table = pq.read_table(part)
    assert table.num_rows == 24
    assert sorted(table.column("job").to_pylist()) == sorted(rows_by_job(tmp_path / "r.csv"))


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible() -> None:
    values = list(np.random.default_rng(3).normal(0.2, 0.1, 200))
    low, high = bootstrap_ci(values)
    assert low < float(np.mean(values)) < high
    assert high - low < 0.05  # ≈ 2·1.96·0.1/√200 = 0.028
    assert bootstrap_ci(values) == (low, high)


def test_leaderboard_counts_seats_and_ranks_by_gain(tmp_path: Path) -> None:
    run_tournament(SMALL, tmp_path / "r.csv", workers=1, parquet=False)
    standings = leaderboard(read_rows(tmp_path / "r.csv"))
    assert {s.strategy for s in standings} == {"boulware", "conceder"}
    assert sum(s.negotiations for s in standings) == 2 * 4 * 2 + 3 * 8 * 2  # seats played
    assert standings[0].mean_gain >= standings[1].mean_gain


def test_golden_comparison_names_what_changed(tmp_path: Path) -> None:
    run_tournament(SMALL, tmp_path / "r.csv", workers=1, parquet=False)
    golden = tmp_path / "golden.csv"
    rows = read_rows(tmp_path / "r.csv")
    assert compare_with_golden(tmp_path / "r.csv", tmp_path / "r.csv") == []
    rows[0]["rounds"] = "999"
    with golden.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[1:] + rows[:1])
    differences = compare_with_golden(tmp_path / "r.csv", golden)
    assert differences == [f"{rows[0]['job']}: rounds expected '999', got "
                           f"'{read_rows(tmp_path / 'r.csv')[0]['rounds']}'"]


def test_tournament_cli_with_expect(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump({"scenarios": ["rd-joint-venture"],
                                      "strategies": ["boulware", "tit_for_tat"], "seeds": 1}))
    out = tmp_path / "r.csv"
    first = negotiate("tournament", str(config), "--out", str(out), "--plot",
                      str(tmp_path / "lb.png"))
    assert first.returncode == 0, first.stderr
    assert "Leaderboard" in first.stdout and "boulware" in first.stdout
    golden = tmp_path / "golden.csv"
    golden.write_text(out.read_text())
    again = negotiate("tournament", str(config), "--out", str(tmp_path / "r2.csv"),
                      "--expect", str(golden))
    assert again.returncode == 0 and "Matches" in again.stdout
    golden.write_text(out.read_text().replace("agreement", "no_agreement", 1))
    changed = negotiate("tournament", str(config), "--out", str(tmp_path / "r3.csv"),
                        "--expect", str(golden))
    assert changed.returncode == 1
    assert "difference(s)" in changed.stdout and "status expected" in changed.stdout
    missing = negotiate("tournament", str(config), "--out", str(tmp_path / "r4.csv"),
                        "--expect", str(tmp_path / "no-such-golden.csv"))
    assert missing.returncode == 2 and "no such golden file" in missing.stderr
    assert not (tmp_path / "r4.csv").exists()  # refused before anything ran


def test_a_broken_tournament_file_is_explained(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text("scenarios: [rd-joint-venture]\nseeds: 2\n")
    done = negotiate("tournament", str(config))
    assert done.returncode == 2
    assert "give 'strategies' (round robin) or 'lineups'" in done.stderr


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(1, 4), st.integers(2, 6), st.integers(0, 10**6))
def test_generated_scenarios_are_valid(parties: int, issues: int, values: int,
                                       seed: int) -> None:
    data = random_scenario(parties, issues, values, seed)
    scenario = scenario_from_data(yaml.safe_load(yaml.safe_dump(data)), "generated")
    assert len(scenario.organizations) == parties and len(scenario.issues) == issues
    assert random_scenario(parties, issues, values, seed) == data


def test_scenarios_generate_cli_writes_valid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    done = negotiate("scenarios", "generate", "--parties", "3", "--issues", "4", "--values",
                     "3", "--seed", "9", "--out", str(path))
    assert done.returncode == 0, done.stderr
    assert negotiate("scenarios", "validate", str(path)).returncode == 0
    assert negotiate("run", str(path), "-q", "--driver", "plain", "--out",
                     str(tmp_path)).returncode == 0


def test_a_local_ray_cluster_gives_the_same_result_table(tmp_path: Path) -> None:
    config = TournamentConfig(scenarios=["rd-joint-venture"],
                              strategies=["boulware", "tit_for_tat", "random"], seeds=2)
    run_tournament(config, tmp_path / "process.csv", workers=2, parquet=False)
    ran = run_tournament(config, tmp_path / "ray.csv", workers=2, parquet=False,
                         backend="ray")
    assert ran == 18
    assert rows_by_job(tmp_path / "ray.csv") == rows_by_job(tmp_path / "process.csv")


def test_llm_tournaments_run_concurrently_inside_workers_with_the_same_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from negotiation.analysis import SpaceAnalysis
    from negotiation.devtools.llm_server import ScriptedServer
    from negotiation.scenario import load_scenario
    from tests.llm_support import fair_dealer

    nash = SpaceAnalysis(load_scenario("platform-app-vendor")).nash
    assert nash is not None
    config = TournamentConfig(scenarios=["platform-app-vendor"],
                              lineups=[["boulware", "llm:scripted"]], seeds=3, rounds=4)
    with ScriptedServer(fair_dealer(nash.terms)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        one_by_one = run_tournament(config, tmp_path / "serial.csv", workers=1,
                                    parquet=False)
        batched = run_tournament(config, tmp_path / "batched.csv", workers=2, parquet=False,
                                 concurrency=3)
    assert one_by_one == batched == 6
    assert rows_by_job(tmp_path / "serial.csv") == rows_by_job(tmp_path / "batched.csv")
    tokens = [int(row["tokens"]) for row in read_rows(tmp_path / "batched.csv")]
    assert all(t > 0 for t in tokens)  # every row did talk to the model


def test_a_row_cut_short_by_a_crash_is_dropped_and_run_again(tmp_path: Path) -> None:
    full = tmp_path / "full.csv"
    run_tournament(SMALL, full, workers=1, parquet=False)
    crashed = tmp_path / "crashed.csv"
    text = full.read_text()
    lines = text.splitlines(keepends=True)
    crashed.write_text("".join(lines[:6]) + lines[6][:25])  # the 6th row was being written
    assert run_tournament(SMALL, crashed, workers=1, parquet=False) == 24 - 5
    assert rows_by_job(crashed) == rows_by_job(full)
    assert len(read_rows(crashed)) == 24
