"""Reaching the model: a missing API key is refused before the run starts (unless the
server is on this machine), and a server that cannot be reached is named."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from negotiation.analysis import SpaceAnalysis
from negotiation.cli import app
from negotiation.devtools.llm_server import ScriptedServer
from negotiation.scenario import load_scenario
from negotiation.transcript import load_verified
from tests.llm_support import fair_dealer
from tests.test_cli import NEGOTIATE, REPO

SCREEN = {"COLUMNS": "200", "NO_COLOR": "1"}


def run_llm(tmp_path: Path, *extra: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, [
        "run", "platform-app-vendor", "--agent", "vendor=llm:scripted", "--rounds", "3",
        "--driver", "plain", "--out", str(tmp_path / "out"), *extra], env=SCREEN)
    return done.exit_code, done.stdout + done.stderr


def test_a_missing_api_key_for_a_remote_server_is_refused_before_the_run(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY",)}
    env.update(SCREEN, OPENAI_BASE_URL="https://llm.example.com/v1")
    done = subprocess.run(
        [str(NEGOTIATE), "run", "platform-app-vendor", "--agent", "vendor=llm:gpt-x",
         "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO, env=env,
        timeout=120)
    assert done.returncode == 2
    assert "OPENAI_API_KEY" in done.stderr and "https://llm.example.com/v1" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "out").glob("*.jsonl"))  # refused before any transcript


def test_a_missing_api_key_for_the_openai_default_names_the_variable(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("MY_LLM_KEY", "")
    scenario_file = tmp_path / "s.yaml"
    data = load_scenario("platform-app-vendor").model_dump(mode="json", exclude_none=True)
    data["organizations"][1]["agent"] = {"strategy": "llm", "llm": {
        "model": "gpt-x", "api_key_env": "MY_LLM_KEY"}}
    scenario_file.write_text(yaml.safe_dump(data, sort_keys=False))
    done = CliRunner().invoke(app, ["run", str(scenario_file), "--agent", "vendor=llm",
                                    "--out", str(tmp_path / "out")], env=SCREEN)
    output = done.stdout + done.stderr
    assert done.exit_code == 2
    assert "MY_LLM_KEY" in output and "https://api.openai.com/v1" in output


def test_a_server_on_this_machine_needs_no_api_key(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    nash = SpaceAnalysis(load_scenario("platform-app-vendor")).nash
    assert nash is not None
    with ScriptedServer(fair_dealer(nash.terms)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url.replace("127.0.0.1",
                                                                        "localhost"))
        code, output = run_llm(tmp_path)
        assert server.requests
    assert code == 0, output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_is_named_with_the_model(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    code, output = run_llm(tmp_path)
    assert code == 3
    said = f"cannot reach {url} (model 'scripted'): connection refused"
    assert said in " ".join(output.split())
    [path] = (tmp_path / "out").glob("*.jsonl")
    calls = [e for e in load_verified(path) if e["type"] == "llm_call"]
    assert calls and said in calls[-1]["error"]
