"""Prototype (design study, not used by the engine): many negotiations of one scenario
advanced in lockstep over shared numpy rankings, for rule-based line-ups.

Every negotiation of a batch is at the same round and turn, so one vectorised step plays
that turn in all of them: the aspiration floor per negotiation (each may have its own
concession exponent), one ``searchsorted`` in the party's shared ranking for the offers,
one gather in its utility vector for the acceptances.  Finished negotiations drop out of
the active set.  The decisions are ``peer.AspirationCurve``'s, so the prototype is checked
against the per-negotiation engine (same agreement, same round) before it is timed.

What a production path would add to give byte-identical tournament rows: the referee's
per-move checks as vectorised masks (red lines and rationality are per-outcome tables
already), the agreement report per distinct agreed outcome, and the similarity tie-break
of our own time-dependent agents (an argmax over at most 256 candidates per negotiation).

    .venv/bin/python benchmarks/lockstep.py [--batch 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_frontier import domain
from compare_negmas import OurSide
from floor import Floor
from peer import BOULWARE, CONCEDER, NEGMAS_EPS

from negotiation.analysis import SpaceAnalysis
from negotiation.model import Scenario


class Lockstep:
    """A batch of bilateral negotiations of one scenario, party 0 opening."""

    def __init__(self, scenario: Scenario, rounds: int) -> None:
        analysis = SpaceAnalysis(scenario)
        self.rounds = rounds
        self.utility = [analysis.functions[p].vector for p in scenario.party_ids]
        self.ascending = []
        self.sorted_utility = []
        for vector in self.utility:
            ranked = np.argsort(vector, kind="stable")
            self.ascending.append(ranked)
            self.sorted_utility.append(vector[ranked])

    def run(self, exponents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``exponents``: (batch, 2) concession exponents.  Returns each negotiation's
        agreed outcome (−1: none) and its number of rounds."""
        batch = len(exponents)
        standing = np.full(batch, -1)
        agreed = np.full(batch, -1)
        rounds = np.full(batch, self.rounds)
        active = np.arange(batch)
        best = [float(u[-1]) for u in self.sorted_utility]
        worst = [float(u[0]) for u in self.sorted_utility]
        for round_ in range(self.rounds):
            t = min(1.0, (round_ + 1) / (self.rounds + 1))
            for party in (0, 1):
                if not len(active):
                    return agreed, rounds
                span = best[party] - worst[party]
                low = np.maximum(worst[party], worst[party] + (1.0 - t ** exponents[active, party])
                                 * span - NEGMAS_EPS)
                offer = standing[active]
                accepts = (offer >= 0) & (self.utility[party][np.maximum(offer, 0)] >= low)
                done = active[accepts]
                agreed[done], rounds[done] = standing[done], round_ + 1
                active, low = active[~accepts], low[~accepts]
                index = np.searchsorted(self.sorted_utility[party], low, side="left")
                index = np.minimum(index, len(self.ascending[party]) - 1)
                standing[active] = self.ascending[party][index]
        return agreed, rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--outcomes", type=int, default=1_000)
    args = parser.parse_args()
    scenario = domain(args.outcomes, 2)
    rng = np.random.default_rng(0)
    exponents = np.column_stack([rng.uniform(BOULWARE / 2, BOULWARE * 2, args.batch),
                                 rng.uniform(CONCEDER / 2, CONCEDER * 2, args.batch)])
    exponents[0] = (BOULWARE, CONCEDER)
    lockstep = Lockstep(scenario, 100)
    agreed, rounds = lockstep.run(exponents)
    # The checks: the engine's Boulware vs Conceder, and the floor loop for a sample.
    ours = OurSide(scenario, 100, warm=True).run()
    space = SpaceAnalysis(scenario).space
    assert ours == (dict(space.terms(int(agreed[0]))), int(rounds[0])), "engine disagrees"
    floor = Floor(scenario, 100)
    for k in range(0, args.batch, max(1, args.batch // 50)):
        for number, party in enumerate(floor.parties):
            party.exponent = float(exponents[k, number])
        terms, length = floor.run()
        assert terms == dict(space.terms(int(agreed[k]))) and length == rounds[k], k
    start = time.process_time()
    lockstep.run(exponents)
    seconds = time.process_time() - start
    start = time.process_time()
    ours_runs = 200
    OurSide(scenario, 100, warm=True).run(ours_runs)
    engine = (time.process_time() - start) / ours_runs
    print(f"lockstep: {args.batch:,} negotiations at {args.outcomes:,} outcomes in "
          f"{seconds:.3f} s CPU = {args.batch / seconds:,.0f}/s ({seconds / args.batch * 1e6:.1f} "
          f"µs each, {np.mean(rounds):.1f} rounds on average); the engine per negotiation "
          f"(Boulware vs Conceder, chain computed): {engine * 1e6:.0f} µs = {1 / engine:,.0f}/s")


if __name__ == "__main__":
    main()
