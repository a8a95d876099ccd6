"""``negotiate run`` checks the zone of possible agreement before the first move: with none
it says "partnership not justified" and why, and runs only with ``--anyway``, recording the
verdict in the outcome."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from negotiation.analysis import SpaceAnalysis
from negotiation.cli import app
from negotiation.scenario import parse_scenario
from tests.conftest import REPO

THREE_APART = """
id: three-apart
title: Three organisations, each accepting only its own option
issues:
  - {id: deal, kind: discrete, name: Deal, options: [x, y, z]}
organizations:
""" + "".join(f"""
  - id: {org}
    name: {name}
    preferences:
      reservation_value: 0.5
      weights: {{deal: 1.0}}
      values:
        deal: {{scores: {{{', '.join(f'{o}: {1.0 if o == own else 0.0}' for o in 'xyz')}}}}}
""" for org, name, own in [("a", "Alpha", "x"), ("b", "Beta", "y"), ("c", "Gamma", "z")])

runner = CliRunner()


def negotiate(*args: str) -> tuple[int, str]:
    done = runner.invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    return done.exit_code, " ".join(done.output.split())


def hopeless_pair(folder: Path) -> Path:
    text = (REPO / "scenarios" / "rd-joint-venture.yaml").read_text()
    path = folder / "hopeless.yaml"
    path.write_text(text.replace("reservation_value: 0.35", "reservation_value: 0.97"))
    return path


def test_three_parties_with_no_single_blocker_still_get_reasons() -> None:
    analysis = SpaceAnalysis(parse_scenario(THREE_APART))
    assert analysis.zopa_size == 0
    reasons = analysis.blockers()
    assert set(reasons) == {"a+b", "a+c", "b+c"}
    assert "Alpha and Beta accept no outcome in common" in reasons["a+b"]


def test_run_without_a_zone_of_agreement_is_refused_with_reasons_and_writes_nothing(
        tmp_path: Path) -> None:
    code, output = negotiate("run", str(hopeless_pair(tmp_path)), "-q",
                             "--out", str(tmp_path / "out"))
    assert code == 2
    assert "partnership not justified" in output
    assert "Kestrel Motors gets at most" in output and "--anyway" in output
    assert not list((tmp_path / "out").glob("*.jsonl"))


def test_three_party_run_is_refused_naming_the_pairs(tmp_path: Path) -> None:
    scenario = tmp_path / "three.yaml"
    scenario.write_text(THREE_APART)
    code, output = negotiate("run", str(scenario), "-q", "--out", str(tmp_path))
    assert code == 2
    assert "partnership not justified" in output
    assert "Beta and Gamma accept no outcome in common" in output


def test_run_anyway_plays_and_the_outcome_records_the_verdict(tmp_path: Path) -> None:
    for driver in ("plain", "graph"):
        out = tmp_path / driver
        code, output = negotiate("run", str(hopeless_pair(tmp_path)), "-q", "--anyway",
                                 "--rounds", "3", "--driver", driver, "--out", str(out))
        assert code == 0, output
        (path,) = out.glob("*.jsonl")
        outcome = json.loads(path.read_text().splitlines()[-1])
        assert outcome["type"] == "outcome" and outcome["status"] == "no_agreement"
        assert outcome["zopa"]["justified"] is False
        assert any("Kestrel Motors gets at most" in r for r in outcome["zopa"]["reasons"])
        assert negotiate("verify", str(path))[0] == 0


def test_a_run_with_a_zone_of_agreement_records_no_verdict(tmp_path: Path) -> None:
    code, output = negotiate("run", "rd-joint-venture", "-q", "--driver", "plain",
                             "--out", str(tmp_path))
    assert code == 0, output
    (path,) = tmp_path.glob("*.jsonl")
    assert "zopa" not in json.loads(path.read_text().splitlines()[-1])
