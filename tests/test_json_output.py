"""``--json``: one documented object per command on stdout, nothing else there; errors keep
their exit code and add a JSON error object (docs/json-output.md)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from negotiation.analysis import SpaceAnalysis
from negotiation.cli import app
from negotiation.scenario import load_scenario, shipped_scenarios
from tests.conftest import TINY_YAML

NEGOTIATE = Path(sys.executable).with_name("negotiate")


def invoke(*args: str) -> tuple[int, Any, str]:
    """Exit code, stdout parsed as JSON, and stderr of an in-process ``negotiate``."""
    done = CliRunner().invoke(app, list(args))
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    return done.exit_code, json.loads(done.stdout), done.stderr


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    code, data, _ = invoke("run", "platform-app-vendor", "--driver", "plain", "--out", str(out),
                           "--json")
    assert code == 0
    assert data["status"] == "agreement" and data["outcome"]["status"] == "agreement"
    assert list(data["agents"]) == ["platform", "vendor"]
    return Path(data["transcript"])


def test_analyze_json_has_the_counts_and_the_four_solutions_of_issue_19() -> None:
    code, data, _ = invoke("analyze", "platform-app-vendor", "--json")
    assert code == 0
    analysis = SpaceAnalysis(load_scenario("platform-app-vendor"))
    assert data["outcomes"] == analysis.space.size == 11340
    assert data["zopa"] == analysis.zopa_size
    assert data["pareto"] == len(analysis.frontier)
    for name in ("nash", "kalai_smorodinsky", "egalitarian", "utilitarian"):
        point = data[name]
        assert list(point["utilities"]) == ["platform", "vendor"]  # scenario order
        assert point["terms"] == getattr(analysis, name).terms


def tiny_utilities(terms: dict[str, Any]) -> dict[str, float]:
    """The tiny scenario's utilities by hand: weighted scores, a split scored by share."""
    price_b = {0: 1.0, 5: 0.8, 10: 0.0}[terms["price"]]
    return {
        "a": 0.5 * {"red": 1.0, "blue": 0.25}[terms["colour"]] + 0.3 * terms["price"] / 10
        + 0.2 * terms["pot"]["a"] / 100,
        "b": 0.2 * {"red": 0.0, "blue": 1.0}[terms["colour"]] + 0.4 * price_b
        + 0.4 * terms["pot"]["b"] / 100,
    }


def test_analyze_json_matches_a_brute_force_enumeration(tmp_path: Path) -> None:
    """Counts, terms (the scenario's own values: a split stays a mapping, a number a
    number) and utilities, against every outcome enumerated by hand."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_YAML)
    code, data, _ = invoke("analyze", str(path), "--json")
    assert code == 0
    every = [dict(zip(("colour", "price", "pot"), values, strict=True)) for values in
             product(["red", "blue"], [0, 5, 10],
                     [{"a": 0, "b": 100}, {"a": 50, "b": 50}, {"a": 100, "b": 0}])]
    feasible = [t for t in every if t["pot"]["b"] >= 50]  # b's red line
    utility = {i: tiny_utilities(t) for i, t in enumerate(feasible)}
    rational = [i for i, u in utility.items() if u["a"] >= 0.2 and u["b"] >= 0.3]
    pareto = [i for i, u in utility.items() if not any(
        v["a"] >= u["a"] and v["b"] >= u["b"] and v != u for v in utility.values())]
    best = max((utility[i]["a"] - 0.2) * (utility[i]["b"] - 0.3) for i in rational)
    assert data["outcomes"] == len(every) == 18
    assert data["feasible"] == len(feasible)
    assert data["zopa"] == len(rational)
    assert data["pareto"] == len(pareto)
    nash = data["nash"]
    assert nash["terms"] in feasible
    assert nash["utilities"] == pytest.approx(tiny_utilities(nash["terms"]), abs=1e-12)
    assert (nash["utilities"]["a"] - 0.2) * (nash["utilities"]["b"] - 0.3) == \
        pytest.approx(best, abs=1e-12)
    assert isinstance(nash["terms"]["pot"], dict) and isinstance(nash["terms"]["price"], int)


def test_analyze_json_gives_null_solutions_and_the_blockers_without_a_zone_of_agreement(
        tmp_path: Path) -> None:
    data = yaml.safe_load(TINY_YAML)
    data["organizations"][0]["preferences"]["reservation_value"] = 0.99
    path = tmp_path / "greedy.yaml"
    path.write_text(yaml.safe_dump(data))
    code, shown, _ = invoke("analyze", str(path), "--json")
    assert code == 0
    assert shown["zopa"] == 0 and shown["justified"] is False
    assert all(shown[name] is None for name in
               ("nash", "kalai_smorodinsky", "egalitarian", "utilitarian"))
    assert "a" in shown["blockers"]


def test_report_json_reports_the_parties_moves_and_outcome(finished_run: Path) -> None:
    assert finished_run.exists()
    lines = finished_run.read_text().splitlines()
    assert json.loads(lines[-1])["type"] == "outcome"
    code, data, _ = invoke("report", str(finished_run), "--json")
    assert code == 0
    assert data["scenario"]["parties"] == ["platform", "vendor"]
    assert data["outcome"]["status"] == "agreement"
    assert data["outcome"]["agreement"]["terms"]["revenue_share"] == {"platform": 20,
                                                                      "vendor": 80}
    kinds = [json.loads(line)["type"] for line in lines]
    assert data["blocked"] == kinds.count("blocked")
    assert data["moves"] == kinds.count("move") + kinds.count("blocked")
    assert data["signoffs"]["decision"] is None  # pending sign-off


def test_verify_json_says_ok_for_a_clean_run_and_tampered_with_exit_1(
        finished_run: Path, tmp_path: Path) -> None:
    code, data, _ = invoke("verify", str(finished_run), "--json")
    assert code == 0
    assert data["ok"] is True and data["kind"] == "transcript"
    [one] = data["transcripts"]
    assert one["state"] == "ok" and one["finished"] is True
    assert one["events"] == len(finished_run.read_text().splitlines())
    forged = tmp_path / finished_run.name
    text = finished_run.read_text()
    assert '"vendor":80' in text
    forged.write_text(text.replace('"vendor":80', '"vendor":81', 1))
    code, data, _ = invoke("verify", str(forged), "--json")
    assert code == 1
    assert data["ok"] is False and data["transcripts"][0]["state"] == "tampered"


def test_verify_json_of_a_folder_lists_each_transcript_and_skips_other_files(
        finished_run: Path, tmp_path: Path) -> None:
    (tmp_path / finished_run.name).write_bytes(finished_run.read_bytes())
    (tmp_path / "notes.jsonl").write_text('{"hello": "world"}\n')
    code, data, _ = invoke("verify", str(tmp_path), "--json")
    assert code == 0 and data["kind"] == "folder" and data["ok"] is True
    states = {Path(t["path"]).name: t["state"] for t in data["transcripts"]}
    assert states == {finished_run.name: "ok", "notes.jsonl": "skipped"}


def test_transcripts_json_lists_each_run(finished_run: Path) -> None:
    code, data, _ = invoke("transcripts", str(finished_run.parent), "--json")
    assert code == 0
    [row] = [r for r in data["transcripts"] if r["file"] == finished_run.name]
    assert row["scenario"] == "platform-app-vendor"
    assert row["status"] == "pending sign-off"
    assert row["outcome"]["status"] == "agreement"


def test_scenarios_list_json_lists_every_shipped_scenario() -> None:
    code, data, _ = invoke("scenarios", "list", "--json")
    assert code == 0
    assert [s["name"] for s in data["scenarios"]] == [p.stem for p in shipped_scenarios()]
    vendor = next(s for s in data["scenarios"] if s["name"] == "platform-app-vendor")
    assert vendor == {**vendor, "valid": True, "parties": ["platform", "vendor"],
                      "issues": 5, "outcomes": 11340}


def test_tournament_json_gives_the_leaderboard_and_the_golden_comparison(
        tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text("scenarios: [rd-joint-venture]\nstrategies: [boulware, conceder]\n"
                      "seeds: 1\n")
    csv_path = tmp_path / "first.csv"
    code, data, _ = invoke("tournament", str(config), "--out", str(csv_path), "--workers", "1",
                           "--no-parquet", "--json")
    assert code == 0
    assert data["ran"] == 4 and data["skipped"] == 0 and data["golden"] is None
    assert {row["strategy"] for row in data["leaderboard"]} == {"boulware", "conceder"}
    assert all(row["ci95"][0] <= row["mean_gain"] <= row["ci95"][1]
               for row in data["leaderboard"])
    code, again, _ = invoke("tournament", str(config), "--out", str(tmp_path / "second.csv"),
                            "--workers", "1", "--no-parquet", "--expect", str(csv_path),
                            "--json")
    assert code == 0 and again["golden"]["matches"] is True


def test_an_error_keeps_its_exit_code_and_is_a_json_object_too() -> None:
    code, data, stderr = invoke("analyze", "no-such-scenario", "--json")
    assert code == 2
    assert data["error"]["exit_code"] == 2
    assert "no-such-scenario" in data["error"]["message"]
    assert "no-such-scenario" in stderr


def test_run_json_stdout_holds_only_the_json_in_a_real_process(tmp_path: Path) -> None:
    """End to end, as a script would call it: stdout parses whole, with either driver."""
    for driver in ("graph", "plain"):
        done = subprocess.run([str(NEGOTIATE), "run", "rd-joint-venture", "--driver", driver,
                               "--out", str(tmp_path), "--json"],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert data["status"] in {"agreement", "no_agreement"}
        assert Path(data["transcript"]).is_file()
        assert data["head"] == json.loads(
            Path(data["transcript"]).read_text().splitlines()[-1])["hash"]


def test_resume_json_reports_the_finished_run_and_keeps_stdout_clean(tmp_path: Path) -> None:
    from tests.test_graph import start_slow_run, wait_for

    out = tmp_path / "runs"
    process = start_slow_run(out)
    path = wait_for(out / "*.jsonl", 6, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = subprocess.run([str(NEGOTIATE), "resume", str(path), "--json"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["transcript"] == str(path) and data["scenario"] == "park-redevelopment"
    assert data["outcome"]["status"] == data["status"]
    assert "Resumed after" in done.stderr


def test_json_escapes_what_a_terminal_would_obey_and_parses_back_to_the_same_text(
        tmp_path: Path) -> None:
    data = yaml.safe_load(TINY_YAML)
    hostile = "Al\u202epha\x9b31m\x1b[2J"
    data["organizations"][0]["name"] = hostile
    data["organizations"][0]["preferences"]["reservation_value"] = 0.99  # blockers name it
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    done = CliRunner().invoke(app, ["analyze", str(path), "--json"])
    assert done.exit_code == 0, done.stderr
    assert not any(ch in done.stdout for ch in "\u202e\x9b\x1b")
    assert "\\u202e" in done.stdout and "\\u009b" in done.stdout and "\\u001b" in done.stdout
    assert hostile in json.loads(done.stdout)["blockers"]["a"]
