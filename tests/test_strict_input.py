"""Strict input: every data file is read by one strict loader that refuses what could hurt
(alias bombs, huge files, deep nesting, code tags, NaN) with exit 2, the file, the field or
line, and the fix — never a traceback; the largest allowed scenario runs in under 1 GiB."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from negotiation.cli import app
from negotiation.cli.common import load_prices
from negotiation.errors import InputError, exit_code
from negotiation.scenario import MAX_UTILITIES, load_scenario, outcome_space_size
from negotiation.strict_yaml import MAX_DEPTH, MAX_FILE_BYTES, dump_yaml
from tests.conftest import TINY_YAML

BIN = Path(sys.executable).parent


@dataclass
class Result:
    code: int
    output: str


def negotiate(*args: str) -> Result:
    """``negotiate ARGS`` in this process: the exit code and what a person sees."""
    done = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return Result(done.exit_code, done.stdout + done.stderr)


def tiny_with(extra: str) -> str:
    """The tiny scenario with ``extra`` YAML appended at the top level."""
    return TINY_YAML + extra


BOMB = """guardrails:
  custom:
    - use: mine
      options:
        a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]
"""

NESTED = "description: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"

# (what is refused, the YAML, the field or line that must be named, the fix that must be given)
REFUSALS = [
    ("duplicate key", tiny_with("id: again\n"), "id (line", "remove one of them"),
    ("alias bomb", tiny_with(BOMB), "guardrails.custom[0].options.b[0]", "write the value out"),
    ("nan", TINY_YAML.replace("reservation_value: 0.2", "reservation_value: .nan"),
     "organizations[0].preferences.reservation_value", "give a finite number"),
    ("nan as text", TINY_YAML.replace("reservation_value: 0.2", "reservation_value: 'nan'"),
     "organizations[0].preferences.reservation_value", "give a finite number"),
    ("inf", TINY_YAML.replace("max: 10, step: 5", "max: .inf, step: 5"), "issues[1].max",
     "give a finite number"),
    ("overflow to inf", TINY_YAML.replace("max: 10, step: 5", "max: 1.0e999, step: 5"),
     "issues[1].max", "give a finite number"),
    ("huge integer", TINY_YAML.replace("max: 10, step: 5", "max: 99999999999999999999, step: 5"),
     "issues[1].max", "use a smaller number"),
    ("depth", tiny_with(NESTED), "description[0]", "flatten the structure"),
    ("python tag", TINY_YAML.replace("title: A two-party",
                                     "title: !!python/object/apply:os.system ['echo pwned']\n"
                                     "description: A two-party"),
     "title (line", "remove it and write a plain value"),
    ("local tag", TINY_YAML.replace("title: A", "title: !secret A"), "title (line",
     "remove it and write a plain value"),
    ("merge key", TINY_YAML.replace("  - id: b\n", "  - <<: {contribution: {value: 2}}\n"
                                                   "    id: b\n"), "organizations[1]",
     "write the fields out"),
]


@pytest.mark.parametrize(("kind", "text", "where", "fix"), REFUSALS,
                         ids=[case[0] for case in REFUSALS])
def test_validate_and_run_refuse_with_file_field_and_fix(tmp_path: Path, kind: str, text: str,
                                                         where: str, fix: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    for command in (["scenarios", "validate", str(path)],
                    ["run", str(path), "--driver", "plain", "--out", str(tmp_path / "t")]):
        result = negotiate(*command)
        assert result.code == 2, result.output
        flat = " ".join(result.output.split())
        assert str(path) in flat
        assert where in flat
        assert fix in flat
        assert "Traceback" not in result.output
    assert not (tmp_path / "t").exists() or not list((tmp_path / "t").iterdir())


def test_a_file_larger_than_the_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(TINY_YAML.replace("title: A", f"title: {'x' * (10 * 1024 * 1024)} A"))
    result = negotiate("scenarios", "validate", str(path))
    assert result.code == 2
    assert str(path) in result.output
    assert f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB" in result.output
    assert "shorten it" in result.output


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    # Nine levels of nine: 9^9 (387 million) items if it were ever expanded.
    lines = ["l0: &l0 [0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    lines += [f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 9)}]" for k in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text(tiny_with("\n".join(lines) + "\n"))
    result = negotiate("scenarios", "validate", str(path))
    assert result.code == 2
    assert "aliases are not allowed in data files" in result.output


def test_a_generated_scenario_reads_back_although_it_shares_objects() -> None:
    shared = {"scores": {"x": 1.0}}
    text = dump_yaml({"a": shared, "b": shared})
    assert "*" not in text and "&" not in text
    assert yaml.safe_load(text) == {"a": shared, "b": shared}


def test_tournament_files_use_the_strict_loader(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("scenarios: [rd-joint-venture]\nstrategies: [boulware]\n"
                    "strategies: [conceder]\n")
    result = negotiate("tournament", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.code == 2
    assert str(path) in result.output and "duplicate key 'strategies'" in result.output
    assert "Traceback" not in result.output


def test_tournament_seeds_and_rounds_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("scenarios: [rd-joint-venture]\nstrategies: [boulware]\n"
                    "seeds: 9007199254740992\n")
    result = negotiate("tournament", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.code == 2
    assert "seeds" in result.output


def test_campaign_files_use_the_strict_loader(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("id: c\ntitle: !!python/name:os.system ''\nscenario: rd-joint-venture\n")
    result = negotiate("campaign", str(path), "--out", str(tmp_path / "out"))
    assert result.code == 2
    assert str(path) in result.output and "title (line 2" in result.output
    assert "is not allowed in data files" in result.output


@pytest.mark.parametrize("table", ["gpt: {input: .nan, output: 1}\n",
                                   "gpt: {input: 'inf', output: 1}\n",
                                   "gpt: &p {input: 1, output: 1}\nother: *p\n"])
def test_price_tables_refuse_nan_infinity_and_aliases(tmp_path: Path, table: str) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(table)
    with pytest.raises(InputError, match=re.escape(str(prices))) as refused:
        load_prices(prices)
    assert exit_code(refused.value) == 2


def test_verify_names_the_line_of_a_nan_in_a_transcript(tmp_path: Path) -> None:
    assert negotiate("run", "rd-joint-venture", "--driver", "plain", "-q",
                     "--out", str(tmp_path)).code == 0
    transcript = next(tmp_path.glob("*.jsonl"))
    lines = transcript.read_text().splitlines()
    event = json.loads(lines[1])
    event["round"] = float("nan")
    lines[1] = json.dumps(event)  # Python writes NaN, which JSON does not allow
    transcript.write_text("\n".join(lines) + "\n")
    result = negotiate("verify", str(transcript))
    assert result.code == 1
    assert "line 2: NaN is not a number a transcript may hold" in " ".join(result.output.split())


def test_a_space_too_large_for_its_parties_is_refused_by_validate(tmp_path: Path) -> None:
    # Three organisations over 10^7 outcomes: within MAX_OUTCOMES, beyond what fits in memory.
    path = tmp_path / "wide.yaml"
    path.write_text(big_scenario(parties=3, radices=(1000, 100, 100)))
    result = negotiate("scenarios", "validate", str(path))
    assert result.code == 2
    assert "more than 6,666,666" in result.output and "1 GiB" in result.output


def big_scenario(parties: int, radices: tuple[int, ...]) -> str:
    """A scenario of numeric issues ``0 … r-1`` that ``parties`` organisations value
    linearly, in opposite directions."""
    issues = [{"id": f"i{k}", "kind": "numeric", "name": f"Issue {k}", "min": 0,
               "max": radix - 1, "step": 1} for k, radix in enumerate(radices)]
    weight = 1 / len(radices)
    organizations = [{
        "id": f"p{p}", "name": f"Party {p}",
        "preferences": {
            "reservation_value": 0.3,
            "weights": {f"i{k}": 1 - weight * (len(radices) - 1) if k == 0 else weight
                        for k in range(len(radices))},
            "values": {f"i{k}": {"prefer": "high" if (p + k) % 2 else "low"}
                       for k in range(len(radices))},
        },
    } for p in range(parties)]
    return dump_yaml({"id": "big", "title": "Largest allowed space", "issues": issues,
                      "organizations": organizations})


MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=300)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@pytest.mark.parametrize("command", [["run", "--driver", "plain", "--rounds", "5", "-q"],
                                     ["analyze"]], ids=["run", "analyze"])
def test_the_largest_allowed_space_runs_within_one_gib(tmp_path: Path,
                                                      command: list[str]) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(big_scenario(parties=2, radices=(1000, 100, 100)))
    scenario = load_scenario(path)
    assert outcome_space_size(scenario) * len(scenario.organizations) == MAX_UTILITIES
    out = ["--out", str(tmp_path / "t")] if command[0] == "run" else []
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE, str(BIN / "negotiate"), command[0], str(path),
         *command[1:], *out], capture_output=True, text=True, timeout=360, check=True)
    code, max_rss_kib = map(int, measured.stdout.split())
    assert code == 0
    assert max_rss_kib <= 1024 * 1024, f"{max_rss_kib / 1024:.0f} MiB"
