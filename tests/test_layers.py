"""The import layers hold: protocols depend on no agent, engine or CLI code; the core never
loads rich, typer, matplotlib or the CLI; the notebook API imports without them."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

PRESENTATION = ("rich", "typer", "matplotlib", "negotiation.cli")
CORE = ("negotiation.model", "negotiation.utility", "negotiation.analysis",
        "negotiation.guardrails", "negotiation.transcript", "negotiation.engine",
        "negotiation.lifecycle", "negotiation.signing", "negotiation.api")


def loaded_after_import(module: str) -> list[str]:
    """The top-level packages a fresh interpreter has loaded after importing ``module``."""
    code = (f"import sys, json, importlib; importlib.import_module({module!r}); "
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True)
    return list(json.loads(done.stdout))


@pytest.mark.parametrize("module", CORE)
def test_the_core_never_loads_presentation_code(module: str) -> None:
    loaded = loaded_after_import(module)
    offenders = [name for name in loaded
                 if any(name == p or name.startswith(p + ".") for p in PRESENTATION)]
    assert offenders == [], f"{module} loads {offenders}"


def test_the_api_loads_no_langgraph() -> None:
    assert not any(name.startswith("langgraph") for name in loaded_after_import(
        "negotiation.api"))


def imported_modules(path: str) -> set[str]:
    tree = ast.parse((REPO / path).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO))
                                        for p in (REPO / "protocols").glob("*.py")))
def test_protocols_import_no_agent_engine_or_cli_code(path: str) -> None:
    forbidden = ("agents", "negotiation.engine", "negotiation.graph", "negotiation.cli")
    offenders = [name for name in imported_modules(path)
                 if any(name == f or name.startswith(f + ".") for f in forbidden)]
    assert offenders == [], f"{path} imports {offenders}"


def test_no_source_file_is_over_600_lines() -> None:
    long = {str(path.relative_to(REPO)): count
            for package in ("negotiation", "agents", "protocols")
            for path in (REPO / package).rglob("*.py")
            if (count := len(path.read_text().splitlines())) > 600}
    assert long == {}, f"split these by concept: {long}"
