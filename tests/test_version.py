"""``negotiate --version`` prints the installed package's version."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO


def test_version_prints_the_package_version_and_exits_0() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    done = subprocess.run([str(Path(sys.executable).with_name("negotiate")), "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"negotiate {declared}"


def test_python_m_negotiation_is_the_same_command_whoever_owns_the_script_name() -> None:
    # NegMAS ships a console script also called `negotiate`; `python -m negotiation` is ours.
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    done = subprocess.run([sys.executable, "-m", "negotiation", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"negotiate {declared}"
