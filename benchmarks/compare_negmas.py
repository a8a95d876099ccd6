"""Side by side with NegMAS on equal work, in one process: negotiations of the same domains
by the same negotiators, warm and cold, bilateral and 3-party, from 10^2 to 10^6 outcomes.

Equal work:
- the same decisions: NegMAS's time-based conceding negotiators (Boulware ``1 − t^4`` vs
  Conceder ``1 − t^0.25``, a linear third party) against the same curves and acceptance
  rule on our side (``peer.AspirationCurve``); before timing a configuration, one run of
  each must reach the same agreement in the same number of rounds, or no ratio is printed;
- **warm**: each system keeps its per-scenario set-up across negotiations (ours: one
  ``SpaceAnalysis``, whose utility functions carry the rankings; NegMAS: a prebuilt outcome
  space and utility functions, a presorted inverse per utility function handed over with
  ``ufun_inverter=``, callbacks off);  **cold**: each pays its set-up in every negotiation
  (ours: a new ``SpaceAnalysis``; NegMAS: new issues, outcome space, utility functions and
  inverses);
- our side runs the whole engine (referee on every move and on the agreement, protocol,
  in-memory transcript) and is timed twice: with the transcript's hash chain computed, as
  a real run writes it, and without.  Ratios use the former.

Timing: a warm-up, then ``--repeats`` alternations of the three timings, each long enough
to last about ``--budget`` seconds of CPU time (``time.process_time``: both systems are
single-threaded, and on a shared machine wall time mostly measures the neighbours); the
table shows medians and ranges (min–max) per negotiation, and ``benchmarks/floor.py``'s
pure-Python loop for the same negotiation: bare (``floor``), and with each move recorded as
a minimal hash-chained event (``+chain``).  The last lines are machine-readable, one per
configuration: ``ratio warm bilateral 1e3: 7.3`` (NegMAS's time per negotiation over
ours).  Installs nothing: NegMAS must be importable.

    .venv/bin/python benchmarks/compare_negmas.py [--sizes 1e2,1e3] [--modes warm]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_frontier import domain
from floor import Floor
from peer import NegmasSide, aspiration_agents, negmas_available, same_moves

from negotiation.analysis import SpaceAnalysis
from negotiation.model import Scenario
from negotiation.session import Negotiation
from negotiation.transcript import TranscriptWriter

ROUNDS = 100
SIZES = {"1e2": 100, "1e3": 1_000, "1e4": 10_000, "1e5": 100_000, "1e6": 1_000_000}
PARTIES = {"bilateral": 2, "3-party": 3}


class OurSide:
    """Our engine on one scenario: warm shares one ``SpaceAnalysis`` across negotiations,
    cold builds a new one for each."""

    def __init__(self, scenario: Scenario, rounds: int, *, warm: bool) -> None:
        self.scenario = scenario
        self.rounds = rounds
        self.analysis = SpaceAnalysis(scenario) if warm else None

    async def _one(self, chain: bool) -> tuple[dict[str, Any] | None, int]:
        analysis = self.analysis or SpaceAnalysis(self.scenario)
        negotiation = Negotiation(self.scenario, rounds=self.rounds, analysis=analysis)
        agents = aspiration_agents(self.scenario)
        with TranscriptWriter(None) as writer:
            result = await negotiation.run(agents, seed=0, writer=writer,
                                           specs=dict.fromkeys(agents, "aspiration"))
            if chain:
                assert len(writer.head_hash) == 64  # every event hashed and serialised
        return (None if result.agreement is None else dict(result.agreement.terms),
                result.rounds)

    def run(self, count: int = 1, *, chain: bool = True) -> tuple[dict[str, Any] | None, int]:
        async def many() -> tuple[dict[str, Any] | None, int]:
            last: tuple[dict[str, Any] | None, int] = (None, 0)
            for _ in range(count):
                last = await self._one(chain)
            return last

        return anyio.run(many)


def per_run(action: Callable[[int], object], count: int) -> float:
    """Seconds per negotiation of ``count`` negotiations done by ``action``."""
    start = time.process_time()
    action(count)
    return (time.process_time() - start) / count


def calibrated(action: Callable[[int], object], budget: float) -> int:
    """How many negotiations last about ``budget`` seconds: the quickest of three timed runs
    decides, so one run that happened to pay for a full garbage collection of the whole
    process (the peer's 10^6 outcome tuples take ~70 ms) cannot shrink the batch to a
    handful of runs that are then timed as noise."""
    once = min(per_run(action, 1) for _ in range(3))
    return max(1, min(10_000, round(budget / max(once, 1e-6))))


@dataclass
class Result:
    mode: str
    parties: str
    size: str
    rounds: int = 0
    refused: str | None = None
    chained: list[float] = field(default_factory=list)
    unchained: list[float] = field(default_factory=list)
    peer: list[float] = field(default_factory=list)
    floor: float | None = None
    floor_chained: float | None = None

    @property
    def ratios(self) -> list[float]:
        return sorted(p / o for p, o in zip(self.peer, self.chained, strict=True))


def measure(mode: str, parties: str, size: str, repeats: int, budget: float) -> Result:
    gc.collect()  # the previous configuration's garbage is not this one's to collect
    scenario = domain(SIZES[size], PARTIES[parties])
    warm = mode == "warm"
    result = Result(mode, parties, size)
    ours = OurSide(scenario, ROUNDS, warm=warm)
    peer = NegmasSide(scenario, ROUNDS, warm=warm)
    # The check doubles as the warm-up of both systems.
    mine, theirs = ours.run(), peer.run()
    result.rounds = mine[1]
    result.refused = same_moves(mine, theirs)
    if result.refused:
        return result
    if warm:
        floor = Floor(scenario, ROUNDS)
        if floor.run() != mine:
            result.refused = f"the floor loop disagrees: {floor.run()} vs {mine}"
            return result

        def quickest(loop: Floor) -> float:
            return min(per_run(loop.runs, calibrated(loop.runs, budget / 4))
                       for _ in range(repeats))

        result.floor = quickest(floor)
        result.floor_chained = quickest(Floor(scenario, ROUNDS, chained=True))

    def chained(count: int) -> object:
        return ours.run(count, chain=True)

    def unchained(count: int) -> object:
        return ours.run(count, chain=False)

    def theirs_many(count: int) -> object:
        for _ in range(count):
            peer.run()
        return None

    counts = [calibrated(action, budget) for action in (chained, unchained, theirs_many)]
    for _ in range(repeats):
        result.chained.append(per_run(chained, counts[0]))
        result.unchained.append(per_run(unchained, counts[1]))
        result.peer.append(per_run(theirs_many, counts[2]))
    return result


def span(values: list[float], scale: float = 1e6) -> str:
    """Median and range, in µs by default."""
    ordered = sorted(values)
    return (f"{statistics.median(ordered) * scale:9.0f} ({ordered[0] * scale:.0f}–"
            f"{ordered[-1] * scale:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help="outcome-space sizes, comma-separated (default: all)")
    parser.add_argument("--modes", default="warm,cold", help="warm, cold or both")
    parser.add_argument("--parties", default="bilateral,3-party")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.3,
                        help="seconds per timing (each repeat times three of them)")
    args = parser.parse_args()
    if not negmas_available():
        print("NegMAS is not importable here: install it into this environment to compare.")
        raise SystemExit(2)
    results = []
    print(f"{'mode':<5} {'parties':<9} {'size':<4} {'rounds':>6}  {'ours+chain µs':>22}  "
          f"{'ours µs':>22}  {'NegMAS µs':>24}  {'floor µs':>8}  {'+chain':>6}  "
          f"ratio (range)")
    for mode in args.modes.split(","):
        for parties in args.parties.split(","):
            for size in args.sizes.split(","):
                result = measure(mode, parties, size, args.repeats, args.budget)
                results.append(result)
                head = f"{mode:<5} {parties:<9} {size:<4} {result.rounds:>6}"
                if result.refused:
                    print(f"{head}  refused: {result.refused}")
                    continue
                ratios = result.ratios
                floor = "—" if result.floor is None else f"{result.floor * 1e6:.0f}"
                floor_chained = "—" if result.floor_chained is None \
                    else f"{result.floor_chained * 1e6:.0f}"
                print(f"{head}  {span(result.chained):>22}  {span(result.unchained):>22}  "
                      f"{span(result.peer):>24}  {floor:>8}  {floor_chained:>6}  "
                      f"{statistics.median(ratios):.1f}× "
                      f"({ratios[0]:.1f}–{ratios[-1]:.1f})", flush=True)
    print()
    for result in results:
        label = f"ratio {result.mode} {result.parties} {result.size}"
        if result.refused:
            print(f"{label}: refused")
        else:
            print(f"{label}: {statistics.median(result.ratios):.1f}")


if __name__ == "__main__":
    main()
