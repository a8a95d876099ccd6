"""Golden runs: what the engine records, move for move, stays what it was.

Performance work on the turn (views, referee, protocol, the rule-based agents' texts) must
not change a single recorded move.  These runs cover discrete, numeric and split issues, a
red line that blocks proposals (feedback), every rule-based strategy, two and three parties
and the NegMAS-peer line-up of the benchmarks; their events (without the wall clock, the
package version and the hashes, which other tests pin) hash to a digest first computed at
commit 0dc4c30, before that work.  A change of the digest is a change of behaviour: find it.
"""

from __future__ import annotations

import hashlib
import itertools
import sys
from pathlib import Path
from typing import Any

import anyio

from agents import Agent
from negotiation.events import canonical_json
from negotiation.model import Scenario
from negotiation.scenario import parse_scenario
from negotiation.seats import build_agents
from negotiation.session import Negotiation
from negotiation.transcript import TranscriptWriter
from tests.conftest import TINY_YAML

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_frontier import domain
from peer import aspiration_agents

STRATEGIES = ("boulware", "conceder", "tit_for_tat", "hardliner", "random")
GOLDEN = "589d169264b0626e93ff90ce1b51acb15bdfed81146a3f17a60a203387061e4e"


def recorded(event: dict[str, Any]) -> str:
    kept = {key: value for key, value in event.items()
            if key not in ("wall", "hash", "prev_hash", "version")}
    return canonical_json(kept)


def run(scenario: Scenario, agents: dict[str, Agent], seed: int, rounds: int | None) -> str:
    async def play() -> list[dict[str, Any]]:
        with TranscriptWriter(None) as writer:
            await Negotiation(scenario, rounds=rounds).run(
                agents, seed=seed, writer=writer, specs=dict.fromkeys(agents, "golden"))
            return writer.events
    return "\n".join(recorded(event) for event in anyio.run(play))


def golden_digest() -> str:
    digest = hashlib.sha256()
    tiny = parse_scenario(TINY_YAML, "tiny.yaml")
    for line_up in itertools.product(STRATEGIES, repeat=2):
        for seed in (0, 1):
            specs = dict(zip(tiny.party_ids, line_up, strict=True))
            digest.update(run(tiny, build_agents(specs, seed), seed, None).encode())
    three = domain(100, 3, seed=4)
    for line_up in (("boulware", "conceder", "tit_for_tat"), ("random", "hardliner", "linear")):
        specs = dict(zip(three.party_ids, line_up, strict=True))
        digest.update(run(three, build_agents(specs, 2), 2, 30).encode())
    for outcomes, parties in ((100, 2), (1000, 3)):
        scenario = domain(outcomes, parties)
        digest.update(run(scenario, dict(aspiration_agents(scenario)), 0, 100).encode())
    return digest.hexdigest()


def test_golden_runs_record_the_same_moves_as_before_the_turn_was_made_faster() -> None:
    assert golden_digest() == GOLDEN
