"""The promises of the README hold: its test command is what CI runs."""

from __future__ import annotations

import re

from tests.conftest import REPO


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quick_start_has_a_demo_command_then_a_test_command() -> None:
    demo, test = quick_start_commands()[:2]
    assert "negotiate run" in demo
    assert "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test = quick_start_commands()[1]
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines


def test_the_cli_reference_in_the_docs_is_current(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    typer = Path(sys.executable).with_name("typer")
    out = tmp_path / "cli.md"
    subprocess.run([str(typer), "negotiation.cli", "utils", "docs", "--name", "negotiate",
                    "--title", "CLI reference", "--output", str(out)], check=True,
                   capture_output=True)
    committed = (REPO / "docs" / "cli.md").read_text()
    assert out.read_text() == committed, (
        "regenerate: typer negotiation.cli utils docs --name negotiate "
        "--title 'CLI reference' --output docs/cli.md")


def test_the_public_api_exports_what_extensions_need() -> None:
    import negotiation.api as api

    for name in ("Agent", "View", "Action", "Propose", "Accept", "WalkAway", "Offer",
                 "NegotiationProtocol", "ProtocolState", "GuardrailCheck", "Failure",
                 "Verdict", "UtilityFunction", "OutcomeSpace"):
        assert name in api.__all__ and hasattr(api, name)
