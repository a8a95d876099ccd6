"""The floor: the benchmark negotiation as a bare pure-Python loop, no referee, no
transcript, no text, no models — what any engine doing the same decisions must at least
pay.  ``compare_negmas.py`` prints it beside both systems; alone it prints µs per
negotiation for each domain size.

``Floor(..., chained=True)`` adds the least a hash-chained record of every move costs: each
move as a small event (sequence number, round, party, action, the terms of a proposal, the
previous hash) in sorted-key JSON (orjson), and its SHA-256 — no referee, no text, no
utilities, no header or outcome event.  A target of "within 2× of the floor" is out of
reach for any engine that records every move in a hash chain once this alone costs more
than the floor.

The decisions are ``peer.AspirationCurve``'s (NegMAS's time-based concession): at relative
time t = (round + 1) / (rounds + 1) each party's floor is
low = u_min + (1 − t^e)(u_max − u_min) − ε; it accepts a standing offer worth at least
``low`` and otherwise offers its worst outcome worth at least ``low``.  The per-scenario
preparation (rankings, per-issue utility tables) is done once, as in the warm benchmark.

    .venv/bin/python benchmarks/floor.py
"""

from __future__ import annotations

import bisect
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_frontier import domain
from peer import LINEUP, NEGMAS_EPS

from negotiation.analysis import SpaceAnalysis
from negotiation.model import Scenario


class _Party:
    """One party's ranked outcomes and per-issue utility tables, as plain lists."""

    def __init__(self, analysis: SpaceAnalysis, party: str, exponent: float) -> None:
        function = analysis.functions[party]
        vector = function.vector
        reservation = function.reservation_value
        ascending = [int(o) for o in vector.argsort(kind="stable") if vector[o] >= reservation]
        self.exponent = exponent
        self.ascending = ascending
        self.sorted_utility = [float(vector[o]) for o in ascending]
        self.best, self.worst = self.sorted_utility[-1], self.sorted_utility[0]
        self.tables = [table.tolist() for table in function.tables]
        self.digits = list(zip(analysis.space._strides, analysis.space.radices, strict=True))

    def value(self, outcome: int) -> float:
        # The same additions in the same order as the utility vector: the same floats.
        total = 0.0
        for table, (stride, radix) in zip(self.tables, self.digits, strict=True):
            total += table[(outcome // stride) % radix]
        return total


class _Chain:
    """The least record of a run's moves: each a small event, hashed after the last."""

    def __init__(self, space: Any, names: list[str]) -> None:
        self.space, self.names = space, names
        self.seq, self.head = 0, ""

    def move(self, round_: int, party: int, outcome: int | None) -> None:
        action: dict[str, Any] = {"kind": "accept"} if outcome is None else {
            "kind": "propose", "terms": self.space.terms(outcome)}
        event = {"seq": self.seq, "type": "move", "round": round_, "party": self.names[party],
                 "action": action, "prev_hash": self.head}
        self.head = hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()
        self.seq += 1


class Floor:
    """The benchmark negotiation of one scenario, prepared once."""

    def __init__(self, scenario: Scenario, rounds: int, *, chained: bool = False) -> None:
        analysis = SpaceAnalysis(scenario)
        self.space = analysis.space
        self.rounds = rounds
        self.chained = chained
        self.names = scenario.party_ids
        #: The last chained run's record.
        self.chain: _Chain | None = None
        self.parties = [_Party(analysis, party, exponent)
                        for party, exponent in zip(scenario.party_ids, LINEUP, strict=False)]

    def run(self) -> tuple[dict[str, Any] | None, int]:
        """One negotiation: the agreed terms (``None``: none) and its number of rounds."""
        parties, count = self.parties, len(self.parties)
        standing, proposer, accepted = -1, -1, 0
        chain = self.chain = _Chain(self.space, self.names) if self.chained else None
        for round_ in range(self.rounds):
            t = min(1.0, (round_ + 1) / (self.rounds + 1))
            for number, party in enumerate(parties):
                low = max(party.worst, party.worst + (1.0 - t ** party.exponent)
                          * (party.best - party.worst) - NEGMAS_EPS)
                if standing >= 0 and proposer != number and party.value(standing) >= low:
                    if chain is not None:
                        chain.move(round_, number, None)
                    accepted += 1
                    if accepted == count - 1:
                        return dict(self.space.terms(standing)), round_ + 1
                    continue
                start = bisect.bisect_left(party.sorted_utility, low)
                standing = party.ascending[min(start, len(party.ascending) - 1)]
                proposer, accepted = number, 0
                if chain is not None:
                    chain.move(round_, number, standing)
        return None, self.rounds

    def runs(self, count: int) -> None:
        for _ in range(count):
            self.run()


def main() -> None:
    for parties in (2, 3):
        for size in (100, 1_000, 10_000, 100_000, 1_000_000):
            scenario = domain(size, parties)
            floor, chained = Floor(scenario, 100), Floor(scenario, 100, chained=True)
            terms, rounds = floor.run()
            count = 2000
            start = time.process_time()
            floor.runs(count)
            seconds = (time.process_time() - start) / count
            start = time.process_time()
            chained.runs(count)
            with_chain = (time.process_time() - start) / count
            print(f"{parties} parties, {size:>9,} outcomes: {seconds * 1e6:6.1f} µs per "
                  f"negotiation, {with_chain * 1e6:6.1f} with each move hash-chained "
                  f"({rounds} rounds, {'agreement' if terms else 'no agreement'})")


if __name__ == "__main__":
    main()
