"""The ``negotiate`` command end to end, through a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

NEGOTIATE = Path(sys.executable).with_name("negotiate")


def negotiate(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.run([str(NEGOTIATE), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def only_transcript(folder: Path) -> Path:
    files = list(folder.glob("*.jsonl"))
    assert len(files) == 1, files
    return files[0]


def test_run_prints_moves_and_outcome_and_writes_a_transcript(tmp_path: Path) -> None:
    done = negotiate("run", "platform-app-vendor", "--seed", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Nimbus Cloud Marketplace" in done.stdout
    assert "propose" in done.stdout
    assert "Agreement in round" in done.stdout or "No agreement" in done.stdout
    assert "Utility" in done.stdout and "Reservation" in done.stdout
    path = only_transcript(tmp_path)
    assert str(path.name) in done.stdout.replace("\n", "")
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert events[0]["seed"] == 2 and events[-1]["type"] == "outcome"


def test_run_honours_agent_overrides_and_rounds(tmp_path: Path) -> None:
    done = negotiate("run", "rd-joint-venture", "--agent", "kestrel=hardliner",
                     "--agent", "voltaic=hardliner", "--rounds", "3", "-q",
                     "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "No agreement: deadline: no agreement after 3 rounds" in done.stdout
    header = json.loads(only_transcript(tmp_path).read_text().splitlines()[0])
    assert header["agents"] == {"voltaic": "hardliner", "kestrel": "hardliner"}


def test_verify_accepts_a_clean_transcript_and_rejects_a_tampered_one(tmp_path: Path) -> None:
    assert negotiate("run", "rd-joint-venture", "-q", "--out", str(tmp_path)).returncode == 0
    path = only_transcript(tmp_path)
    clean = negotiate("verify", str(path))
    assert clean.returncode == 0 and "OK" in clean.stdout

    lines = path.read_text().splitlines(keepends=True)
    lines[4] = lines[4].replace('"round":', '"round":1', 1)  # 1-based line 5
    path.write_text("".join(lines))
    tampered = negotiate("verify", str(path))
    assert tampered.returncode == 1
    assert "TAMPERED" in tampered.stdout and "line 5" in tampered.stdout


def test_validate_good_and_broken_files(tmp_path: Path) -> None:
    good = negotiate("scenarios", "validate", *map(str, (REPO / "scenarios").glob("*.yaml")))
    assert good.returncode == 0, good.stderr
    assert good.stdout.count("valid") >= 4

    bad = tmp_path / "bad.yaml"
    text = (REPO / "scenarios" / "rd-joint-venture.yaml").read_text()
    bad.write_text(text.replace("weights: {ip_ownership: 0.35", "weights: {ip_ownership: 0.95"))
    broken = negotiate("scenarios", "validate", str(bad))
    assert broken.returncode == 2
    assert str(bad) in broken.stderr
    assert "organizations[0].preferences.weights" in broken.stderr
    assert "rescale" in broken.stderr
    assert "Traceback" not in broken.stderr


@pytest.mark.parametrize("args, message", [
    (["run", "no-such-scenario"], "file not found"),
    (["run", "rd-joint-venture", "--agent", "kestrel"], "must look like ORG=STRATEGY"),
    (["run", "rd-joint-venture", "--agent", "kestrel=telepathy"], "unknown strategy"),
    (["run", "rd-joint-venture", "--agent", "nobody=boulware"], "unknown organisation"),
    (["verify", "missing.jsonl"], "no such transcript"),
])
def test_user_errors_exit_2_with_a_message_and_no_traceback(args: list[str],
                                                             message: str) -> None:
    done = negotiate(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_run_writes_nothing_when_the_scenario_is_broken(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: y\n")
    out = tmp_path / "out"
    done = negotiate("run", str(bad), "--out", str(out))
    assert done.returncode == 2
    assert not out.exists()


def test_scenarios_list_and_schema_and_agents() -> None:
    listed = negotiate("scenarios", "list")
    assert listed.returncode == 0
    for name in ("platform-app-vendor", "park-redevelopment", "species-reintroduction",
                 "rd-joint-venture"):
        assert name in listed.stdout
    schema = negotiate("scenarios", "schema")
    assert json.loads(schema.stdout)["title"] == "Scenario"
    strategies = negotiate("agents", "list")
    assert "boulware" in strategies.stdout and "tit_for_tat" in strategies.stdout


def test_analyze_prints_zopa_frontier_and_bargaining_points(tmp_path: Path) -> None:
    plot = tmp_path / "space.png"
    done = negotiate("analyze", "park-redevelopment", "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    for text in ("Outcome space", "55,440", "Zone of possible agreement", "Pareto frontier",
                 "Nash", "Kalai–Smorodinsky", "egalitarian", "utilitarian"):
        assert text in done.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_says_plainly_when_no_partnership_is_justified(tmp_path: Path) -> None:
    text = (REPO / "scenarios" / "rd-joint-venture.yaml").read_text()
    hopeless = tmp_path / "hopeless.yaml"
    hopeless.write_text(text.replace("reservation_value: 0.35", "reservation_value: 0.97"))
    done = negotiate("analyze", str(hopeless))
    assert done.returncode == 0, done.stderr
    assert "No zone of possible agreement" in done.stdout
    assert "not justified" in done.stdout
    assert "Kestrel Motors gets at most" in done.stdout


def test_report_reads_the_transcript_and_plots_the_offers(tmp_path: Path) -> None:
    assert negotiate("run", "species-reintroduction", "-q", "--out", str(tmp_path)).returncode == 0
    plot = tmp_path / "trace.png"
    done = negotiate("report", str(only_transcript(tmp_path)), "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    assert "moves" in done.stdout and "Referee" in done.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_review_renders_and_signs_with_flags(tmp_path: Path) -> None:
    assert negotiate("run", "rd-joint-venture", "-q", "--out", str(tmp_path)).returncode == 0
    path = only_transcript(tmp_path)
    before = path.read_bytes()
    looked = negotiate("review", str(path))
    assert looked.returncode == 0
    for text in ("Parties", "Timeline", "Fairness report", "pending sign-off",
                 "Voltaic Materials"):
        assert text in looked.stdout
    assert path.read_bytes() == before  # looking without deciding writes nothing

    signed = negotiate("review", str(path), "--approve", "--reviewer", "Ada Lovelace",
                       "--comment", "balanced")
    assert signed.returncode == 0, signed.stderr
    assert "APPROVED by Ada Lovelace (unsigned, not attributable)" in signed.stdout
    assert "Status: ratified" in signed.stdout
    assert negotiate("verify", str(path)).returncode == 0

    again = negotiate("review", str(path), "--reject", "--reviewer", "Eve")
    assert again.returncode == 2
    assert "already ratified" in again.stderr


def test_transcripts_lists_each_status(tmp_path: Path) -> None:
    runs = {"signed": ["platform-app-vendor"], "rejected": ["rd-joint-venture", "--seed", "1"],
            "tampered": ["rd-joint-venture", "--seed", "2"],
            "failed": ["rd-joint-venture", "--seed", "3", "--rounds", "2",
                       "--agent", "kestrel=hardliner", "--agent", "voltaic=hardliner"]}
    paths = {}
    for name, args in runs.items():
        folder = tmp_path / name
        assert negotiate("run", *args, "-q", "--out", str(folder)).returncode == 0
        paths[name] = only_transcript(folder).rename(tmp_path / f"{name}.jsonl")
    assert negotiate("review", str(paths["signed"]), "--approve", "--reviewer", "A"
                     ).returncode == 0
    assert negotiate("review", str(paths["rejected"]), "--reject", "--reviewer", "B"
                     ).returncode == 0
    text = paths["tampered"].read_text()
    paths["tampered"].write_text(text.replace('"seed":2', '"seed":5', 1))
    listed = negotiate("transcripts", str(tmp_path))
    assert listed.returncode == 0
    rows = {line.split()[1]: line for line in listed.stdout.splitlines()
            if line.startswith("│") and ".jsonl" in line}
    assert "ratified" in rows["signed.jsonl"]
    assert "rejected" in rows["rejected.jsonl"]
    assert "TAMPERED" in rows["tampered.jsonl"]
    assert "no agreement" in rows["failed.jsonl"]


def test_charter_command_writes_md_and_html(tmp_path: Path) -> None:
    assert negotiate("run", "platform-app-vendor", "-q", "--out", str(tmp_path)).returncode == 0
    path = only_transcript(tmp_path)
    for fmt in ("md", "html"):
        done = negotiate("charter", str(path), "--format", fmt)
        assert done.returncode == 0, done.stderr
        assert path.with_suffix(f".charter.{fmt}").exists()
    bad = negotiate("charter", str(path), "--format", "pdf")
    assert bad.returncode == 2 and "md or html" in bad.stderr
