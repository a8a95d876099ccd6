"""NegMAS negotiators seated as organisations (``negmas:NAME``), under our referee."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from negmas.sao import SAOMechanism
from typer.testing import CliRunner

from agents import STRATEGIES, StrategyError, make_agent
from agents.negmas_domain import (
    RED_LINE_UTILITY,
    Domain,
    Valuation,
    utility_function,
    value_label,
)
from agents.negmas_seat import NegMASSeat, negotiator_classes
from negotiation.analysis import SpaceAnalysis
from negotiation.cli import app
from negotiation.devtools.llm_server import ScriptedServer
from negotiation.engine import RunResult, run_scenario
from negotiation.model import Scenario
from negotiation.scenario import load_scenario, parse_scenario
from negotiation.tournament import TournamentError, load_config
from negotiation.transcript import deterministic_lines, load_verified
from negotiation.utility import red_line_mask
from tests.conftest import REPO
from tests.llm_support import fair_dealer

NEGOTIATE = Path(sys.executable).with_name("negotiate")
SEATED = ["AspirationNegotiator", "BoulwareTBNegotiator", "NaiveTitForTatNegotiator",
          "MiCRONegotiator"]

#: Two parties, no red lines: nothing for the referee to block, so a run under our protocol
#: and one under NegMAS's own SAOMechanism see exactly the same moves.
OPEN_MARKET = """
id: open-market
title: A buyer and a seller with no red lines
protocol: {name: alternating_offers, rounds: 20}
issues:
  - {id: price, kind: numeric, name: Price, min: 10, max: 20, step: 1}
  - {id: delivery, kind: discrete, name: Delivery, options: [fast, normal, slow]}
  - {id: share, kind: split, name: Share of savings, parties: [buyer, seller], step: 10}
organizations:
  - id: buyer
    name: Buyer
    preferences:
      reservation_value: 0.3
      weights: {price: 0.5, delivery: 0.2, share: 0.3}
      values:
        price: {prefer: low}
        delivery: {scores: {fast: 1.0, normal: 0.6, slow: 0.0}}
        share: {prefer: high}
  - id: seller
    name: Seller
    preferences:
      reservation_value: 0.25
      weights: {price: 0.6, delivery: 0.3, share: 0.1}
      values:
        price: {prefer: high}
        delivery: {scores: {fast: 0.0, normal: 0.5, slow: 1.0}}
        share: {prefer: high}
"""


@pytest.fixture(scope="module")
def market() -> Scenario:
    return parse_scenario(OPEN_MARKET, "open-market.yaml")


@pytest.fixture(scope="module")
def marketplace() -> Scenario:
    return load_scenario("platform-app-vendor")


def play(scenario: Scenario, agents: dict[str, str], tmp_path: Path, seed: int = 0
         ) -> RunResult:
    return anyio.run(lambda: run_scenario(scenario, agents=agents, seed=seed, out_dir=tmp_path))


def moves_of(result: RunResult, party: str) -> list[dict[str, Any]]:
    assert result.path is not None
    return [e for e in load_verified(result.path) if e["type"] == "move" and
            e["party"] == party]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("negotiator", SEATED)
def test_a_negmas_negotiator_plays_each_rule_based_strategy_under_our_referee(
        marketplace: Scenario, negotiator: str, strategy: str, tmp_path: Path) -> None:
    result = play(marketplace, {"platform": f"negmas:{negotiator}", "vendor": strategy},
                  tmp_path)
    assert result.failure is None, result.failure
    assert result.status in {"agreement", "no_agreement"}
    moves = moves_of(result, "platform")  # the transcript verifies (load_verified)
    assert moves and all(m["action"]["rationale"].startswith(f"NegMAS {negotiator}")
                         for m in moves)
    if result.agreement is not None:
        for org in marketplace.organizations:
            assert result.utilities[org.id] >= org.preferences.reservation_value


def test_a_negmas_negotiator_never_offers_across_its_own_red_lines(
        marketplace: Scenario, tmp_path: Path) -> None:
    result = play(marketplace, {"platform": "negmas:AspirationNegotiator",
                                "vendor": "conceder"}, tmp_path)
    offers = [m["action"]["offer"]["terms"] for m in moves_of(result, "platform")
              if m["action"]["kind"] == "propose"]
    assert offers and all(terms["revenue_share"]["platform"] >= 10 for terms in offers)


def test_a_blocked_negmas_proposal_is_never_made_again(
        marketplace: Scenario, tmp_path: Path) -> None:
    result = play(marketplace, {"platform": "negmas:AspirationNegotiator",
                                "vendor": "negmas:AspirationNegotiator"}, tmp_path)
    assert result.path is not None
    events = load_verified(result.path)
    blocked = [e for e in events if e["type"] == "blocked"]
    assert blocked, "the referee blocks the first proposals (each crosses the other's red line)"
    for party in ("platform", "vendor"):
        refused = [e["action"]["offer"]["terms"] for e in blocked if e["party"] == party]
        offered = [e["action"]["offer"]["terms"] for e in events
                   if e["type"] in ("move", "blocked") and e["party"] == party and
                   e["action"]["kind"] == "propose"]
        for terms in refused:
            assert offered.count(terms) == 1, f"{party} repeated a blocked offer {terms}"
    assert result.status == "agreement", result.reason


def test_our_referee_refuses_an_agreement_a_negmas_negotiator_accepted_below_its_reservation(
        marketplace: Scenario, tmp_path: Path) -> None:
    result = play(marketplace, {"platform": "negmas:RandomAlwaysAcceptingNegotiator",
                                "vendor": "hardliner"}, tmp_path)
    assert result.status == "no_agreement"
    assert "the referee blocked the agreement" in result.reason
    assert "below its reservation value 0.380" in result.reason
    assert moves_of(result, "platform")[-1]["action"]["kind"] == "accept"


def test_an_llm_seat_negotiates_with_a_negmas_negotiator(
        marketplace: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nash = SpaceAnalysis(marketplace).nash
    assert nash is not None
    with ScriptedServer(fair_dealer(nash.terms)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        result = play(marketplace, {"platform": "negmas:BoulwareTBNegotiator",
                                    "vendor": "llm:scripted"}, tmp_path)
    assert server.requests
    assert result.status == "agreement", result.reason
    assert result.path is not None
    events = load_verified(result.path)
    assert {e["party"] for e in events if e["type"] == "llm_call"} == {"vendor"}
    assert moves_of(result, "vendor")[0]["action"]["offer"]["terms"] == nash.terms
    assert any(m["action"]["kind"] == "propose" for m in moves_of(result, "platform"))


def saomechanism_run(market: Scenario, first: str, second: str
                     ) -> tuple[list[tuple[int, str, tuple[Any, ...]]], Any]:
    analysis = SpaceAnalysis(market)
    domain = Domain.of(analysis.space, market.id)
    mechanism = SAOMechanism(outcome_space=domain.outcome_space,
                             n_steps=market.protocol.rounds)
    classes = negotiator_classes()
    for party, name in (("buyer", first), ("seller", second)):
        mechanism.add(classes[name](id=party, name=party),
                      ufun=utility_function(domain, Valuation(
                          domain, analysis.functions[party],
                          market.organization(party).preferences)))
    state = mechanism.run()
    return [(step, party, tuple(o)) for step, party, o in mechanism.extended_trace], \
        state.agreement


@pytest.mark.parametrize(("first", "second"), [
    ("AspirationNegotiator", "BoulwareTBNegotiator"),
    ("AspirationNegotiator", "NaiveTitForTatNegotiator"),
    ("BoulwareTBNegotiator", "ConcederTBNegotiator"),
    ("LinearTBNegotiator", "LinearTBNegotiator"),
    ("NaiveTitForTatNegotiator", "ConcederTBNegotiator"),
    ("CABNegotiator", "MiCRONegotiator"),
    ("ToughNegotiator", "AspirationNegotiator"),
])
def test_negmas_pairs_play_the_same_negotiation_as_under_negmas_own_saomechanism(
        market: Scenario, first: str, second: str, tmp_path: Path) -> None:
    """Same domain, same utilities: every offer, its step (= our round, no offset: both
    count one turn per party as a round) and the agreement are NegMAS's own."""
    theirs, their_agreement = saomechanism_run(market, first, second)
    result = play(market, {"buyer": f"negmas:{first}", "seller": f"negmas:{second}"}, tmp_path)
    assert result.path is not None
    ours = [(e["round"], e["party"],
             tuple(value_label(e["action"]["offer"]["terms"][i.id]) for i in market.issues))
            for e in load_verified(result.path)
            if e["type"] == "move" and e["action"]["kind"] == "propose"]
    assert ours == theirs
    our_agreement = None if result.agreement is None else \
        tuple(value_label(result.agreement.terms[i.id]) for i in market.issues)
    assert our_agreement == (None if their_agreement is None else tuple(their_agreement))


def test_the_negmas_utility_is_ours_on_every_outcome_and_red_lines_are_worth_nothing(
        marketplace: Scenario) -> None:
    analysis = SpaceAnalysis(marketplace)
    domain = Domain.of(analysis.space, marketplace.id)
    for org in marketplace.organizations:
        ufun = utility_function(domain, Valuation(domain, analysis.functions[org.id],
                                                  org.preferences))
        assert ufun.reserved_value == org.preferences.reservation_value
        ours = analysis.functions[org.id].vector
        keeps = red_line_mask(analysis.space, org.preferences.red_lines)
        for index in range(0, analysis.space.size, 7):
            outcome = domain.outcome(analysis.space.offer(index))
            expected = ours[index] if keeps[index] else RED_LINE_UTILITY
            assert ufun(outcome) == pytest.approx(expected, abs=1e-12)
            assert domain.offer(outcome) is analysis.space.offer(index)


def test_a_seeded_random_negmas_seat_repeats_its_run_and_leaves_global_random_alone(
        market: Scenario, tmp_path: Path) -> None:
    random.seed(1234)
    before = random.getstate()
    agents = {"buyer": "negmas:RandomNegotiator", "seller": "boulware"}
    first = play(market, agents, tmp_path / "a", seed=5)
    assert random.getstate() == before
    second = play(market, agents, tmp_path / "b", seed=5)
    assert first.path is not None and second.path is not None
    assert deterministic_lines(load_verified(first.path)) == \
        deterministic_lines(load_verified(second.path))


@pytest.mark.parametrize("spec", ["negmas:os.system", "negmas:../x", "negmas:SAOMechanism",
                                  "negmas:negmas.sao.AspirationNegotiator", "negmas:",
                                  "negmas:SAONegotiator", "negmas:SAOMetaNegotiator"])
def test_a_negmas_name_resolves_only_among_negmas_negotiators(spec: str) -> None:
    with pytest.raises(StrategyError):
        make_agent(spec, party="vendor", seed=0)


def test_a_negmas_name_resolves_to_negmas_own_class() -> None:
    seat = make_agent("negmas:MiCRONegotiator", party="vendor", seed=0)
    assert isinstance(seat, NegMASSeat)
    assert seat.negotiator_class.__module__.startswith("negmas.")


def negotiate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([str(NEGOTIATE), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def test_run_refuses_a_negmas_import_path_with_exit_2(tmp_path: Path) -> None:
    done = negotiate("run", "platform-app-vendor", "--agent", "platform=negmas:os.system",
                     "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "'negmas:os.system'" in done.stderr
    assert "import paths are not accepted" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("*.jsonl"))


def test_run_refuses_a_negmas_path_with_exit_2(tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["run", "platform-app-vendor", "--agent",
                                    "platform=negmas:../x", "--out", str(tmp_path)],
                              env={"COLUMNS": "200"})
    assert done.exit_code == 2, done.output
    assert "'negmas:../x'" in done.output and "import paths are not accepted" in done.output
    assert not list(tmp_path.glob("*.jsonl"))


def test_run_seats_a_negmas_negotiator_and_the_transcript_verifies(tmp_path: Path) -> None:
    done = negotiate("run", "platform-app-vendor", "--agent",
                     "platform=negmas:AspirationNegotiator", "--out", str(tmp_path),
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "NegMAS AspirationNegotiator" in done.stdout
    (transcript,) = tmp_path.glob("*.jsonl")
    checked = negotiate("verify", str(transcript), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


WITHOUT_NEGMAS = "import sys; sys.modules['negmas'] = None; " \
                 "from negotiation.cli import main; sys.argv = ['negotiate', *sys.argv[1:]]; main()"


def test_without_negmas_a_negmas_seat_says_what_to_install(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_NEGMAS, "run", "platform-app-vendor",
                           "--agent", "platform=negmas:AspirationNegotiator",
                           "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert "NegMAS is not installed" in said
    assert "pip install 'partnership-negotiation[negmas]'" in said
    assert "Traceback" not in done.stderr
    listing = subprocess.run([sys.executable, "-c", WITHOUT_NEGMAS, "agents", "list"],
                             capture_output=True, text=True, cwd=REPO, timeout=120,
                             env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    assert listing.returncode == 0, listing.stderr
    assert "negmas:NAME" in listing.stdout and "not installed" in listing.stdout


def test_agents_list_shows_the_negmas_negotiators() -> None:
    done = CliRunner().invoke(app, ["agents", "list"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    for name in SEATED:
        assert f"negmas:{name}" in done.output
    assert "negmas:SAOMetaNegotiator" not in done.output


def test_scenario_files_seat_negmas_negotiators(tmp_path: Path) -> None:
    text = (REPO / "scenarios" / "platform-app-vendor.yaml").read_text()
    seated = text.replace("strategy: boulware", "strategy: negmas:AspirationNegotiator", 1)
    path = tmp_path / "seated.yaml"
    path.write_text(seated)
    scenario = load_scenario(path)
    result = anyio.run(lambda: run_scenario(scenario, out_dir=tmp_path))
    assert result.agents["platform"] == "negmas:AspirationNegotiator"
    assert moves_of(result, "platform")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("strategy: boulware", "strategy: negmas:os.system", 1))
    done = CliRunner().invoke(app, ["scenarios", "validate", str(bad)], env={"COLUMNS": "200"})
    assert done.exit_code == 2
    assert "organizations[0].agent.strategy" in done.output


def test_tournament_files_seat_negmas_negotiators(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("scenarios: [platform-app-vendor]\n"
                    "strategies: [boulware, 'negmas:AspirationNegotiator']\nseeds: 1\n")
    assert "negmas:AspirationNegotiator" in load_config(good).strategies
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios: [platform-app-vendor]\n"
                   "strategies: [boulware, 'negmas:os.system']\nseeds: 1\n")
    with pytest.raises(TournamentError, match=r"strategies\[1\]"):
        load_config(bad)


def test_a_run_with_negmas_seats_killed_midway_resumes_to_the_same_negotiation(
        tmp_path: Path) -> None:
    """A resumed run re-plays its transcript through fresh seats: a NegMAS negotiator
    (its own random stream included) must make the same moves again."""
    import signal
    import time

    from negotiation.transcript import verify
    from tests.test_graph import core, interruptible, wait_for

    out = tmp_path / "runs"
    seats = ["--agent", "platform=negmas:AspirationNegotiator",
             "--agent", "vendor=negmas:RandomNegotiator"]
    process = subprocess.Popen([str(NEGOTIATE), "run", "platform-app-vendor", "--seed", "4",
                                "--pace", "0.03", "-q", "--out", str(out), *seats],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               preexec_fn=interruptible)
    path = wait_for(out / "*.jsonl", 6, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(0.05)
    done = negotiate("resume", str(path), "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = verify(path)
    assert result.ok, result.reason
    assert any(e["type"] == "resumed" for e in result.events)
    uninterrupted = play(load_scenario("platform-app-vendor"),
                         {"platform": "negmas:AspirationNegotiator",
                          "vendor": "negmas:RandomNegotiator"}, tmp_path / "plain", seed=4)
    assert core(result.events) == core(uninterrupted.transcript.events)


@pytest.mark.parametrize("name", sorted(negotiator_classes()))
def test_every_listed_negmas_negotiator_can_take_a_seat(market: Scenario, name: str) -> None:
    result = anyio.run(lambda: run_scenario(market, agents={"buyer": f"negmas:{name}",
                                                            "seller": "conceder"}, rounds=8))
    assert result.failure is None, result.failure
    assert any(m["party"] == "buyer" for m in result.transcript.events if m["type"] == "move")
