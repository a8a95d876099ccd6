"""Transcript events: one module names and types them; lines are byte-identical to what the
writer produced; a hash-valid event that is not what its type says is refused by line."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from negotiation.cli import app
from negotiation.engine import run_scenario
from negotiation.events import EventType, Move, Outcome, Transcript, event_hash, line_of
from negotiation.scenario import load_scenario
from negotiation.transcript import read_transcript, verify

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    result = anyio.run(lambda: run_scenario(load_scenario("platform-app-vendor"), seed=1,
                                            out_dir=out))
    assert result.path is not None
    return result.path


def rechained(source: Path, target: Path, change: object) -> Path:
    """Rewrite ``source`` with ``change`` applied to its records and a consistent hash
    chain, as a forger with the published format would."""
    records = [json.loads(line) for line in source.read_text().splitlines()]
    change(records)  # type: ignore[operator]
    head = "0" * 64
    for seq, record in enumerate(records):
        record["seq"], record["prev_hash"] = seq, head
        record.pop("hash", None)
        head = record["hash"] = event_hash(record)
    target.write_text("".join(line_of(record) + "\n" for record in records))
    return target


def test_every_line_is_the_canonical_serialisation_of_its_typed_event(run_file: Path) -> None:
    transcript = read_transcript(run_file)
    lines = run_file.read_text(encoding="utf-8").splitlines()
    assert [line_of(record) for record in transcript.records] == lines
    assert transcript.header is not None and transcript.header.scenario_id == \
        "platform-app-vendor"
    assert isinstance(transcript.outcome, Outcome) and transcript.outcome.agreed
    assert all(isinstance(event, Move) for event in transcript.proposals)
    assert transcript.head_hash == verify(run_file).head_hash


def test_typing_records_keeps_them_exactly_as_hashed(run_file: Path) -> None:
    transcript = read_transcript(run_file)
    again = Transcript.of(list(transcript.records))
    assert [event_hash(r) for r in again.records] == [e.hash for e in transcript.events]


def drop_outcome_status(records: list[dict[str, object]]) -> None:
    next(r for r in records if r["type"] == EventType.OUTCOME).pop("status")


def test_verify_refuses_a_hash_valid_event_with_a_missing_field_by_line(
        run_file: Path, tmp_path: Path) -> None:
    forged = rechained(run_file, tmp_path / "forged.jsonl", drop_outcome_status)
    line = len(forged.read_text().splitlines())
    done = CliRunner().invoke(app, ["verify", str(forged)])
    assert done.exit_code == 1, done.output
    said = " ".join(done.output.split())
    assert f"line {line}: the outcome event's field 'status' is missing" in said
    assert "Traceback" not in done.output


def test_report_refuses_a_hash_valid_malformed_event_with_exit_2(
        run_file: Path, tmp_path: Path) -> None:
    forged = rechained(run_file, tmp_path / "forged.jsonl", drop_outcome_status)
    negotiate = Path(sys.executable).parent / "negotiate"
    done = subprocess.run([str(negotiate), "report", str(forged)], capture_output=True,
                          text=True, cwd=tmp_path, check=False)
    assert done.returncode == 2, done.stderr
    assert "line" in done.stderr and "'status' is missing" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_an_unknown_event_type_is_refused_naming_the_known_ones(
        run_file: Path, tmp_path: Path) -> None:
    def rename(records: list[dict[str, object]]) -> None:
        records[1]["type"] = "teleport"

    forged = rechained(run_file, tmp_path / "forged.jsonl", rename)
    result = verify(forged)
    assert not result.ok and result.bad_line == 2
    assert "unknown event type 'teleport'" in result.reason


def test_event_type_names_are_spelled_only_in_the_event_module() -> None:
    """No module outside negotiation/events.py compares or records an event ``type`` with a
    bare string: ``e["type"] == "move"``, ``record("move", …)``, ``append("move", …)``."""
    names = {t.value for t in EventType}
    offenders = []
    for path in sorted([*ROOT.glob("negotiation/**/*.py"), *ROOT.glob("agents/**/*.py")]):
        if path.name == "events.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and _is_type_lookup(node.left):
                for right in node.comparators:
                    if _literals(right) & names:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in {"record", "append"} and node.args and \
                    _literals(node.args[0]) & names and len(node.args) >= 2:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def _is_type_lookup(node: ast.expr) -> bool:
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "type"
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
        node.func.attr == "get" and bool(node.args) and \
        isinstance(node.args[0], ast.Constant) and node.args[0].value == "type"


def _literals(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Set | ast.Tuple | ast.List):
        return {e.value for e in node.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()
