"""Data files never execute code: scenarios, tournaments, campaigns, transcripts and the
checkpoint database beside a transcript may name extensions only from the registry, and
nothing in them is imported or unpickled.  Each attack below would have run code before."""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ormsgpack
import pytest
import yaml
from typer.testing import CliRunner

from negotiation.cli import app
from negotiation.graph import CheckpointError, OwnTypesSerializer, checkpoint_path
from negotiation.transcript import event_hash, verify
from tests.conftest import REPO, TINY_YAML
from tests.test_cli import NEGOTIATE

FIX = "install it as an entry point, or pass --plugin"
SHIPPED = REPO / "scenarios" / "rd-joint-venture.yaml"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def negotiate(*args: str) -> Result:
    """``negotiate ARGS`` in this process (what a person sees on stdout and stderr)."""
    done = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception  # a bug, not an answer: show its traceback
    return Result(done.exit_code, done.stdout, done.stderr)


@dataclass
class Attack:
    """A module that, if it is ever imported, leaves ``marker`` behind — importable, as if
    the attacker had got it onto the victim's path."""

    module: str
    marker: Path

    @property
    def ran(self) -> bool:
        return self.marker.exists()


@pytest.fixture
def attack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Attack:
    module = f"evil_{abs(hash(tmp_path)) % 10**8}"
    marker = tmp_path / "pwned"
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{module}.py").write_text(textwrap.dedent(f"""
        import pathlib
        pathlib.Path({str(marker)!r}).touch()

        class Agent:
            async def act(self, view): ...

        class Rules:
            pass

        class Check:
            name = "evil"

            def check(self, scenario, terms, subject):
                return []
    """))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    return Attack(module, marker)


def scenario_file(folder: Path, change: Callable[[dict[str, Any]], None],
                  name: str = "shared.yaml") -> Path:
    data = yaml.safe_load(SHIPPED.read_text())
    change(data)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def shell_check(marker: Path) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["guardrails"] = {"custom": [{"use": "os:system",
                                          "options": {"command": f"touch {marker}"}}]}
    return change


def test_a_scenario_check_named_os_system_runs_no_shell_command(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = scenario_file(tmp_path, shell_check(marker))
    for command in (["scenarios", "validate"], ["run", "--driver", "plain", "--out",
                                                str(tmp_path / "out")]):
        done = negotiate(*command, str(path))
        assert done.code == 2
        assert not marker.exists()
        assert str(path) in done.stderr and "guardrails.custom[0].use" in done.stderr
        assert "'os:system' is an import path" in done.stderr and FIX in done.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_the_shell_check_is_refused_by_the_real_command_too(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = scenario_file(tmp_path, shell_check(marker))
    done = subprocess.run([str(NEGOTIATE), "run", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    assert done.returncode == 2, done.stderr
    assert not marker.exists()
    assert "Traceback" not in done.stderr and "--plugin os:system" in done.stderr


FIELDS: dict[str, tuple[str, Callable[[dict[str, Any], str], None]]] = {
    "agent strategy": ("organizations[0].agent.strategy",
                       lambda data, path: data["organizations"][0].update(
                           agent={"strategy": path + ":Agent"})),
    "protocol name": ("protocol.name",
                      lambda data, path: data["protocol"].update(name=path + ":Rules")),
    "guardrail check": ("guardrails.custom[0].use",
                        lambda data, path: data.update(guardrails={"custom": [
                            {"use": path + ":Check"}]})),
}


@pytest.mark.parametrize("field", list(FIELDS))
def test_an_import_path_in_a_scenario_is_refused_and_never_imported(
        attack: Attack, tmp_path: Path, field: str) -> None:
    where, change = FIELDS[field]
    path = scenario_file(tmp_path, lambda data: change(data, attack.module))
    for command in (["scenarios", "validate"], ["run", "--out", str(tmp_path / "out")]):
        done = negotiate(*command, str(path))
        assert done.code == 2, done.stdout
        assert not attack.ran
        assert str(path) in done.stderr and where in done.stderr and FIX in done.stderr


def test_a_tournament_file_cannot_seat_an_import_path(attack: Attack, tmp_path: Path) -> None:
    config = tmp_path / "race.yaml"
    config.write_text(f"scenarios: [rd-joint-venture]\n"
                      f"strategies: [boulware, {attack.module}:Agent]\nseeds: 1\n")
    done = negotiate("tournament", str(config), "--out", str(tmp_path / "r.csv"))
    assert done.code == 2
    assert not attack.ran
    assert str(config) in done.stderr and "strategies[1]" in done.stderr and FIX in done.stderr
    assert not (tmp_path / "r.csv").exists()


def test_a_campaign_file_cannot_seat_an_import_path(attack: Attack, tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump({
        "id": "arc", "title": "Arc", "scenario": "tiny.yaml",
        "agents": {"a": f"{attack.module}:Agent"},
        "stages": [{"id": "pilot", "kind": "negotiate"}]}))
    done = negotiate("campaign", str(path), "--out", str(tmp_path / "out"))
    assert done.code == 2
    assert not attack.ran
    assert str(path) in done.stderr and "agents.a" in done.stderr and FIX in done.stderr


def forge(path: Path, events: list[dict[str, Any]]) -> None:
    """Write ``events`` as a transcript whose hash chain is consistent, as a forger would."""
    previous = "0" * 64
    lines = []
    for event in events:
        event = {**event, "prev_hash": previous}
        event.pop("hash", None)
        event["hash"] = previous = event_hash(event)
        lines.append(json.dumps(event) + "\n")
    path.write_text("".join(lines))


def a_run(tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "honest"
    done = negotiate("run", "rd-joint-venture", "-q", "--driver", "plain", "--seed", "3",
                     "--out", str(out))
    assert done.code == 0, done.stderr
    (transcript,) = out.glob("*.jsonl")
    return [json.loads(line) for line in transcript.read_text().splitlines()]


def test_resuming_a_crafted_transcript_imports_nothing(attack: Attack, tmp_path: Path
                                                       ) -> None:
    events = a_run(tmp_path)
    header = events[0]
    header["agents"] = {party: f"{attack.module}:Agent" for party in header["agents"]}
    header["scenario"]["protocol"]["name"] = f"{attack.module}:Rules"
    crafted = tmp_path / "crafted.jsonl"
    forge(crafted, events[:3])  # cut short, so it looks interrupted
    assert verify(crafted).ok, "the forgery must be a well-formed transcript"
    done = negotiate("resume", str(crafted))
    assert done.code == 2, done.stdout
    assert not attack.ran
    assert str(crafted) in done.stderr and "header.agents." in done.stderr
    assert "header.scenario.protocol.name" in done.stderr and FIX in done.stderr


CHECKPOINT_TABLES = """
    CREATE TABLE checkpoints (
        thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '',
        checkpoint_id TEXT NOT NULL, parent_checkpoint_id TEXT, type TEXT,
        checkpoint BLOB, metadata BLOB,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id));
    CREATE TABLE writes (
        thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '',
        checkpoint_id TEXT NOT NULL, task_id TEXT NOT NULL,
        task_path TEXT NOT NULL DEFAULT '', idx INTEGER NOT NULL, channel TEXT NOT NULL,
        type TEXT, value BLOB,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx));
"""


class Shell:
    """Unpickling this runs a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


def plant_checkpoint(transcript: Path, kind: str, payload: bytes, head: str) -> Path:
    """A checkpoint database in LangGraph's table layout, written with sqlite3."""
    path = checkpoint_path(transcript)
    with sqlite3.connect(path) as db:
        db.executescript(CHECKPOINT_TABLES)
        db.execute("INSERT INTO checkpoints VALUES (?, '', '1f0', NULL, ?, ?, ?)",
                   (transcript.stem, kind, payload, json.dumps({"transcript_head": head})))
    db.close()
    return path


def pending_inline(tmp_path: Path) -> Path:
    """A transcript awaiting inline sign-off (so review hands it to the paused graph)."""
    events = a_run(tmp_path)
    assert events[-1]["status"] == "agreement"
    events[0]["options"] = {"signoff": "inline"}
    crafted = tmp_path / "crafted.jsonl"
    forge(crafted, events)
    return crafted


def shell_msgpack(marker: Path) -> bytes:
    """LangGraph's msgpack encoding of ``os.system('touch MARKER')`` as a constructor."""
    call = ormsgpack.packb(["os", "system", [f"touch {marker}"]])
    return ormsgpack.packb({"v": 1, "channel_values": {"x": ormsgpack.Ext(1, call)}})


@pytest.mark.parametrize("bound", [True, False], ids=["head copied", "foreign head"])
@pytest.mark.parametrize("kind", ["pickle", "msgpack"])
def test_review_beside_a_crafted_checkpoint_runs_nothing(tmp_path: Path, kind: str,
                                                         bound: bool) -> None:
    marker = tmp_path / "pwned"
    transcript = pending_inline(tmp_path)
    head = json.loads(transcript.read_text().splitlines()[0])["hash"] if bound else "f" * 64
    payload = pickle.dumps(Shell(f"touch {marker}")) if kind == "pickle" \
        else shell_msgpack(marker)
    plant_checkpoint(transcript, kind, payload, head)
    before = transcript.read_bytes()
    done = negotiate("review", str(transcript), "--approve", "--reviewer", "Ana")
    assert done.code == 2, done.stdout
    assert not marker.exists()
    assert transcript.read_bytes() == before, "refused before any sign-off is recorded"
    assert str(checkpoint_path(transcript)) in done.stderr
    if not bound:
        assert "not written for this transcript" in done.stderr and "remove" in done.stderr


def test_the_checkpoint_serializer_refuses_foreign_types_before_building_them(
        tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    serde = OwnTypesSerializer()
    with pytest.raises(CheckpointError, match=r"os\.system"):
        serde.loads_typed(("msgpack", shell_msgpack(marker)))
    with pytest.raises(CheckpointError, match="'pickle' payload"):
        serde.loads_typed(("pickle", pickle.dumps(Shell(f"touch {marker}"))))
    assert not marker.exists()
    assert serde.loads_typed(serde.dumps_typed({"events": 3})) == {"events": 3}


def test_a_checkpoint_with_a_trigger_is_refused(tmp_path: Path) -> None:
    transcript = pending_inline(tmp_path)
    head = json.loads(transcript.read_text().splitlines()[0])["hash"]
    path = plant_checkpoint(transcript, "msgpack", ormsgpack.packb({}), head)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TRIGGER t AFTER INSERT ON writes BEGIN DELETE FROM writes; END")
    db.close()
    done = negotiate("review", str(transcript), "--approve", "--reviewer", "Ana")
    assert done.code == 2
    assert "trigger 't'" in done.stderr


def test_a_durable_run_binds_its_checkpoints_to_its_transcript(tmp_path: Path) -> None:
    done = negotiate("run", "rd-joint-venture", "-q", "--rounds", "4", "--driver", "graph",
                     "--out", str(tmp_path))
    assert done.code in (0, 3), done.stderr
    (transcript,) = tmp_path.glob("*.jsonl")
    head = json.loads(transcript.read_text().splitlines()[0])["hash"]
    with sqlite3.connect(checkpoint_path(transcript)) as db:
        heads = {row[0] for row in db.execute(
            "SELECT json_extract(metadata, '$.transcript_head') FROM checkpoints")}
    db.close()
    assert heads == {head}


def test_a_file_that_shadows_a_shipped_scenario_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rd-joint-venture").write_text(SHIPPED.read_text())
    done = negotiate("scenarios", "validate", "rd-joint-venture")
    assert done.code == 2
    assert "both a shipped scenario" in done.stderr and "./rd-joint-venture" in done.stderr
    assert negotiate("scenarios", "validate", "./rd-joint-venture").code == 0
    (tmp_path / "rd-joint-venture").unlink()
    assert negotiate("scenarios", "validate", "rd-joint-venture").code == 0


def test_validate_reports_unknown_names_and_options_a_check_rejects(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["organizations"][1]["agent"] = {"strategy": "boulwar"}
        data["protocol"]["name"] = "alternating"
        data["guardrails"] = {"custom": [
            {"use": "no_such_check"},
            {"use": "no_long_exclusivity", "options": {"max_month": 6}}]}

    path = scenario_file(tmp_path, change)
    plugin = ["--plugin", "no_long_exclusivity=examples.no_long_exclusivity:NoLongExclusivity"]
    done = negotiate(*plugin, "scenarios", "validate", str(path))
    assert done.code == 2
    for where in ("organizations[1].agent.strategy", "protocol.name",
                  "guardrails.custom[0].use", "guardrails.custom[1].options"):
        assert where in done.stderr, where
    assert "unknown strategy 'boulwar'" in done.stderr and "max_month" in done.stderr


def test_an_import_path_is_usable_once_given_with_plugin(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, lambda data: data.update(guardrails={"custom": [
        {"use": "examples.no_long_exclusivity:NoLongExclusivity",
         "options": {"max_months": 12}}]}))
    assert negotiate("scenarios", "validate", str(path)).code == 2
    trusted = negotiate("--plugin", "examples.no_long_exclusivity:NoLongExclusivity",
                        "scenarios", "validate", str(path))
    assert trusted.code == 0, trusted.stderr
    again = negotiate("scenarios", "validate", str(path))  # --plugin lasts one command
    assert again.code == 2


def test_a_plugin_may_not_take_a_built_in_name() -> None:
    done = negotiate("--plugin", "boulware=examples.tough_negotiator:ToughNegotiator",
                     "agents", "list")
    assert done.code == 2
    assert "'boulware' is a built-in name" in done.stderr


def test_a_method_call_on_an_allowed_class_is_refused_too(tmp_path: Path) -> None:
    # Found by an adversarial review: LangGraph's "method call" encoding (ext code 3) naming
    # its own Interrupt class passed the class check and crashed review after signing.
    method = ormsgpack.Ext(3, ormsgpack.packb(("langgraph.types", "Interrupt", "x",
                                               "__class__")))
    with pytest.raises(CheckpointError, match="kind 3"):
        OwnTypesSerializer().loads_typed(("msgpack", ormsgpack.packb(method)))
    done = subprocess.run([str(NEGOTIATE), "run", "rd-joint-venture", "--signoff", "inline",
                           "-q", "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (transcript,) = tmp_path.glob("*.jsonl")
    with sqlite3.connect(checkpoint_path(transcript)) as db:
        db.execute("UPDATE writes SET value = ? WHERE type = 'msgpack' AND checkpoint_id = "
                   "(SELECT MAX(checkpoint_id) FROM checkpoints)", (ormsgpack.packb(method),))
    db.close()
    before = transcript.read_bytes()
    refused = negotiate("review", str(transcript), "--approve", "--reviewer", "Ana")
    assert refused.code == 2 and "kind 3" in refused.stderr
    assert transcript.read_bytes() == before, "refused before any sign-off is recorded"
