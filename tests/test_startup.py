"""The CLI answers at once (issue #18): heavy modules load only on the commands that need
them.  Each case runs the command in a fresh interpreter and reads ``sys.modules``: a test
of what is imported, not of time (benchmarks/bench_startup.py measures the time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from negotiation.campaign import MANIFEST
from negotiation.cli.audit import CAMPAIGN_MANIFEST

#: Run a ``negotiate`` command line in this interpreter, then print which of the watched
#: modules it loaded, as JSON on the last line of stdout.
PROBE = """
import contextlib, io, json, sys
from negotiation.cli import app
with contextlib.redirect_stdout(io.StringIO()):
    try:
        app(sys.argv[1:], prog_name="negotiate")
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in WATCHED
                        or m in WATCHED)))
"""

WATCHED = {"numpy", "pydantic", "langgraph", "langchain_core", "langsmith", "jinja2",
           "matplotlib", "cryptography", "yaml", "aiosqlite", "pandas",
           "negotiation.model", "negotiation.analysis", "negotiation.engine",
           "negotiation.graph", "negotiation.charter", "negotiation.plots",
           "negotiation.campaign"}


def loaded(*argv: str, cwd: Path | None = None) -> set[str]:
    """The watched modules that ``negotiate ARGV`` imports."""
    done = subprocess.run([sys.executable, "-c", f"WATCHED = {sorted(WATCHED)!r}\n{PROBE}",
                           *argv], capture_output=True, text=True, cwd=cwd, timeout=120,
                          check=True)
    return {name.partition(".")[0] if not name.startswith("negotiation.") else name
            for name in json.loads(done.stdout.splitlines()[-1])}


HEAVY = {"numpy", "langgraph", "langchain_core", "langsmith", "jinja2", "matplotlib",
         "negotiation.model", "negotiation.analysis", "negotiation.graph",
         "negotiation.charter", "negotiation.plots"}


def test_importing_the_cli_loads_no_heavy_module() -> None:
    assert loaded("--version") == set()


def test_negotiate_help_loads_no_model_numpy_pydantic_or_langgraph() -> None:
    assert loaded("--help") & (WATCHED - {"yaml"}) == set()


@pytest.mark.parametrize("command", ["run", "verify", "analyze", "tournament"])
def test_a_command_s_help_loads_no_heavy_module(command: str) -> None:
    assert loaded(command, "--help") & HEAVY == set()


def test_a_plain_run_loads_neither_langgraph_nor_the_charter_nor_plots(tmp_path: Path) -> None:
    used = loaded("run", "rd-joint-venture", "--driver", "plain", "-q", "--out", str(tmp_path))
    assert "negotiation.engine" in used  # it did run
    assert used & {"langgraph", "langchain_core", "langsmith", "jinja2", "matplotlib",
                   "negotiation.graph", "negotiation.charter", "negotiation.plots"} == set()
    assert list(tmp_path.glob("*.jsonl"))


def test_a_default_run_that_cannot_pause_loads_neither_langgraph_nor_langsmith(
        tmp_path: Path) -> None:
    """``--driver auto`` (the default) takes the plain loop when nothing can pause."""
    used = loaded("run", "platform-app-vendor", "--quiet", "--out", str(tmp_path))
    assert "negotiation.engine" in used
    assert used & {"langgraph", "langchain_core", "langsmith", "aiosqlite", "jinja2",
                   "matplotlib", "negotiation.graph", "negotiation.charter",
                   "negotiation.plots"} == set()
    assert list(tmp_path.glob("*.jsonl"))


def test_a_default_run_that_pauses_for_sign_off_loads_the_durable_graph(
        tmp_path: Path) -> None:
    used = loaded("run", "rd-joint-venture", "--signoff", "inline", "-q", "--out",
                  str(tmp_path))
    assert {"langgraph", "aiosqlite", "negotiation.graph"} <= used


def test_resuming_a_run_of_the_plain_loop_does_not_load_langgraph(tmp_path: Path) -> None:
    loaded("run", "park-redevelopment", "--rounds", "3", "-q", "--out", str(tmp_path))
    [run] = tmp_path.glob("*.jsonl")
    lines = run.read_bytes().splitlines(keepends=True)
    run.write_bytes(b"".join(lines[:4]))  # as if killed after its fourth event
    used = loaded("resume", str(run), "-q")
    assert "negotiation.engine" in used  # it did resume
    assert used & {"langgraph", "langchain_core", "langsmith", "negotiation.graph"} == set()
    assert b'"type":"resumed"' in run.read_bytes()


def test_verifying_a_run_loads_neither_numpy_nor_langgraph_nor_campaigns(
        tmp_path: Path) -> None:
    loaded("run", "rd-joint-venture", "--driver", "plain", "-q", "--out", str(tmp_path))
    [run] = tmp_path.glob("*.jsonl")
    used = loaded("verify", str(run))
    assert "negotiation.model" in used  # it did verify
    assert used & {"numpy", "langgraph", "langchain_core", "jinja2", "matplotlib",
                   "negotiation.analysis", "negotiation.campaign"} == set()


def test_the_cli_names_the_campaign_manifest_as_campaigns_do() -> None:
    assert CAMPAIGN_MANIFEST == MANIFEST
