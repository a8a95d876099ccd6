"""Extensions written outside the package: strategies, checks, protocols, entry points and
the pytest plugin.  The extension code here imports only from ``negotiation.api``."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from negotiation.api import Scenario, load_scenario, run_scenario
from tests.test_cli import NEGOTIATE, negotiate

pytest_plugins = ["pytester"]


def run_cli(*args: str, cwd: Path, pythonpath: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([str(NEGOTIATE), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def test_the_example_strategy_plugs_in_by_import_path(tmp_path: Path) -> None:
    done = negotiate("run", "rd-joint-venture", "-q", "--agent",
                     "kestrel=examples.tough_negotiator:ToughNegotiator",
                     "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "examples.tough_negotiator:ToughNegotiator" in done.stdout


def test_the_example_strategy_races_the_built_in_ones_once_the_user_vouches_for_it(
        tmp_path: Path) -> None:
    config = tmp_path / "race.yaml"
    config.write_text(textwrap.dedent("""
        scenarios: [rd-joint-venture, platform-app-vendor]
        strategies: [examples.tough_negotiator:ToughNegotiator, tough, boulware, conceder]
        seeds: 1
    """))
    refused = negotiate("tournament", str(config), "--out", str(tmp_path / "r.csv"))
    assert refused.returncode == 2
    assert "strategies[0]" in refused.stderr and "--plugin" in refused.stderr
    done = negotiate("--plugin", "tough=examples.tough_negotiator:ToughNegotiator",
                     "tournament", str(config), "--out", str(tmp_path / "r.csv"),
                     "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "examples.tough_negotiator:ToughNegotiator" in done.stdout  # on the leaderboard
    assert "tough" in done.stdout.replace("examples.tough_negotiator:ToughNegotiator", "")


@pytest.fixture
def exclusivity_plugin(plugin: Callable[[str], list[str]]) -> None:
    """What ``--plugin no_long_exclusivity=examples.no_long_exclusivity:NoLongExclusivity``
    does on the command line."""
    plugin("no_long_exclusivity=examples.no_long_exclusivity:NoLongExclusivity")


def scenario_with_check(level: str) -> Scenario:
    data = load_scenario("platform-app-vendor").model_dump(mode="json")
    data["guardrails"] = {"custom": [{
        "use": "no_long_exclusivity",
        "options": {"max_months": 12}, "proposals": level, "agreements": "block"}]}
    return Scenario.model_validate(data)


@pytest.mark.usefixtures("exclusivity_plugin")
def test_the_example_check_flags_long_exclusivity_on_every_proposal() -> None:
    result = anyio.run(lambda: run_scenario(scenario_with_check("warn"),
                                            agents={"platform": "hardliner"}, rounds=3))
    platform = [e for e in result.transcript.events
                if e.get("party") == "platform" and e["type"] == "move"]
    assert platform
    for event in platform:
        codes = {f["code"]: f for f in event["verdict"]["findings"]}
        assert codes["exclusivity_too_long"]["level"] == "warn"
        assert codes["exclusivity_too_long"]["check"] == "no_long_exclusivity"


@pytest.mark.usefixtures("exclusivity_plugin")
def test_the_example_check_can_block_and_agents_recover() -> None:
    result = anyio.run(lambda: run_scenario(scenario_with_check("block")))
    blocked = [e for e in result.transcript.events if e["type"] == "blocked"]
    assert any(f["code"] == "exclusivity_too_long"
               for e in blocked for f in e["verdict"]["findings"])
    if result.agreement is not None:
        assert result.agreement.terms["exclusivity"] != "months_24"


BROKEN = {
    "missing module": ("kestrel=nowhere_to_be_found:Agent", "no module named"),
    "raises on import": ("kestrel=exploding:Agent", "raised RuntimeError: boom"),
    "missing attribute": ("kestrel=fine:Missing", "has no attribute 'Missing'"),
    "not an agent": ("kestrel=fine:NotAnAgent", "has no 'act' method"),
    "sync act": ("kestrel=fine:SyncAgent", "must be 'async def act"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_extensions_fail_clearly_and_write_nothing(tmp_path: Path, case: str) -> None:
    (tmp_path / "exploding.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "fine.py").write_text(textwrap.dedent("""
        class NotAnAgent:
            pass

        class SyncAgent:
            def act(self, view):
                return None
    """))
    spec, message = BROKEN[case]
    out = tmp_path / "out"
    done = run_cli("run", "rd-joint-venture", "--agent", spec, "--out", str(out),
                   cwd=tmp_path, pythonpath=tmp_path)
    assert done.returncode == 2
    assert spec.split("=", 1)[1] in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(out.glob("*.jsonl")) if out.exists() else True


def test_installed_entry_points_are_listed_and_usable(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "acme_negotiators").mkdir(parents=True)
    (site / "acme_negotiators" / "__init__.py").write_text(textwrap.dedent('''
        from negotiation.api import Accept, Propose, View

        class Gentle:
            """Accepts whatever is on the table, or opens with its best terms."""

            async def act(self, view: View):
                if "accept" in view.legal:
                    return Accept(rationale="Fine by us.")
                return Propose(offer=view.space.offer(int(view.utility.vector.argmax())),
                               rationale="Our opening.")
    '''))
    dist = site / "acme_negotiators-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-negotiators\n"
                                   "Version: 1.0\n")
    (site / "acme_negotiators" / "checks.py").write_text(textwrap.dedent('''
        class NoZeroFee:
            """Flags terms that charge no certification fee."""

            name = "no_zero_fee"

            def check(self, scenario, terms, subject):
                return []
    '''))
    (dist / "entry_points.txt").write_text(
        "[negotiation.agents]\ngentle = acme_negotiators:Gentle\n\n"
        "[negotiation.guardrails]\nno_zero_fee = acme_negotiators.checks:NoZeroFee\n")
    listed = run_cli("agents", "list", cwd=tmp_path, pythonpath=site)
    assert listed.returncode == 0
    assert "gentle" in listed.stdout and "Accepts whatever is on the table" in listed.stdout
    checks = run_cli("guardrails", "list", cwd=tmp_path, pythonpath=site)
    assert "no_zero_fee" in checks.stdout and "Flags terms that charge no" in checks.stdout
    ran = run_cli("run", "rd-joint-venture", "-q", "--driver", "plain", "--agent",
                  "voltaic=gentle", "--out", str(tmp_path / "out"), cwd=tmp_path,
                  pythonpath=site)
    assert ran.returncode == 0, ran.stderr


def test_a_protocol_given_by_plugin_must_fit_the_interface(tmp_path: Path) -> None:
    (tmp_path / "rules.py").write_text("class Half:\n    def start(self): ...\n")
    scenario = tmp_path / "s.yaml"
    text = (Path(__file__).parent.parent / "scenarios" / "rd-joint-venture.yaml").read_text()
    scenario.write_text(text.replace("name: alternating_offers", "name: half"))
    done = run_cli("--plugin", "half=rules:Half", "run", str(scenario), "--out",
                   str(tmp_path / "out"), cwd=tmp_path, pythonpath=tmp_path)
    assert done.returncode == 2
    assert "protocol 'half' does not fit the interface" in done.stderr


def test_a_plugin_module_in_the_current_folder_is_not_imported_by_accident(
        tmp_path: Path) -> None:
    (tmp_path / "tough.py").write_text("class Tough:\n    async def act(self, view): ...\n")
    done = run_cli("--plugin", "tough:Tough", "agents", "list", cwd=tmp_path)
    assert done.returncode == 2
    assert "no module named 'tough'" in done.stderr and "PYTHONPATH" in done.stderr
    listed = run_cli("--plugin", "tough:Tough", "agents", "list", cwd=tmp_path,
                     pythonpath=tmp_path)
    assert listed.returncode == 0, listed.stderr


def test_the_pytest_plugin_pins_a_negotiation(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(textwrap.dedent("""
        def test_the_joint_venture_still_closes(negotiation_run, transcript_events):
            result = negotiation_run("rd-joint-venture", seed=1)
            assert result.status == "agreement"
            events = transcript_events(result)
            assert events[0]["type"] == "header" and events[-1]["type"] == "outcome"

        def test_a_hardline_pair_does_not(negotiation_run):
            result = negotiation_run("rd-joint-venture", rounds=3,
                                     agents={"voltaic": "hardliner", "kestrel": "hardliner"})
            assert result.status == "no_agreement"
    """))
    outcome = pytester.runpytest("-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=2)
