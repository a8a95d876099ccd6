"""Fuzzing: 1,200 seeded mutations of the shipped scenarios (wrong types, NaN and
infinities, huge numbers, empty lists, unicode and escape sequences, deep nesting, long and
10 MB strings, alias bombs, duplicate keys, code tags) through ``scenarios validate`` and
``run --rounds 5``: every command ends with exit 0 or 2, no traceback, no hang, and the
whole batch stays under 1 GiB."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from tests.conftest import REPO
from tests.fuzz_support import write_mutants

FILES = 1200


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("fuzz")
    write_mutants(folder, FILES, seed=14)
    done = subprocess.run([sys.executable, "-m", "tests.fuzz_support", str(folder)],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_every_mutant_is_validated_and_run(fuzzed: dict[str, Any]) -> None:
    commands = Counter(row["command"] for row in fuzzed["results"])
    assert commands == {"validate": FILES, "run": FILES}


def test_no_command_prints_a_traceback(fuzzed: dict[str, Any]) -> None:
    escaped = [(row["file"], row["command"], row["error"] or row["output"])
               for row in fuzzed["results"] if row["traceback"]]
    assert escaped == []


def test_no_command_hangs(fuzzed: dict[str, Any]) -> None:
    assert [(row["file"], row["command"]) for row in fuzzed["results"] if row["hang"]] == []


def test_every_command_ends_with_exit_0_or_2(fuzzed: dict[str, Any]) -> None:
    others = [(row["file"], row["command"], row["code"], row["output"])
              for row in fuzzed["results"] if row["code"] not in (0, 2)]
    assert others == []


def test_validate_refuses_exactly_what_run_refuses(fuzzed: dict[str, Any]) -> None:
    codes: dict[str, dict[str, int]] = {}
    for row in fuzzed["results"]:
        codes.setdefault(row["file"], {})[row["command"]] = row["code"]
    disagree = [(name, code) for name, code in codes.items() if code["validate"] != code["run"]]
    assert disagree == []


def test_both_outcomes_occur(fuzzed: dict[str, Any]) -> None:
    # A fuzzer whose mutants were all refused (or all accepted) would prove little.
    codes = Counter(row["code"] for row in fuzzed["results"])
    assert codes[0] > 50 and codes[2] > 500


def test_the_batch_stays_under_one_gib(fuzzed: dict[str, Any]) -> None:
    assert fuzzed["max_rss_kib"] <= 1024 * 1024
