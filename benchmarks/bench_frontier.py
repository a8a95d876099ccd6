"""Time to compute the Pareto frontier plus the Nash and Kalai–Smorodinsky points for
10^4, 10^5 and 10^6 outcomes with 2 and 3 parties; with NegMAS installed in the same
environment, the same domains are also solved by NegMAS and the time ratio is printed.
Times are CPU seconds of this process (``time.process_time``): on a shared machine wall
time mostly measures the neighbours.

    .venv/bin/python benchmarks/bench_frontier.py [--negmas-max 100000]
"""

from __future__ import annotations

import argparse
import math
import random
import time

from peer import negmas_available, negmas_domain

from negotiation.analysis import SpaceAnalysis
from negotiation.model import Scenario
from negotiation.scenario import scenario_from_data

VALUES = 10


def domain(outcomes: int, parties: int, seed: int = 0) -> Scenario:
    """Linear-additive discrete domain with ``outcomes`` = 10^k outcomes."""
    rng = random.Random(seed)
    issues = round(math.log10(outcomes))
    options = [f"v{k}" for k in range(VALUES)]
    organizations = []
    for p in range(parties):
        raw = [rng.random() + 0.1 for _ in range(issues)]
        weights = [w / sum(raw) for w in raw]
        weights[-1] = 1.0 - sum(weights[:-1])
        organizations.append({
            "id": f"p{p}", "name": f"Party {p}",
            "preferences": {
                "reservation_value": 0.0,
                "weights": {f"i{k}": w for k, w in enumerate(weights)},
                "values": {f"i{k}": {"scores": {o: round(rng.random(), 6) for o in options}}
                           for k in range(issues)},
            },
        })
    return scenario_from_data({
        "id": "frontier-bench", "title": "Frontier benchmark",
        "issues": [{"id": f"i{k}", "kind": "discrete", "name": f"I{k}", "options": options}
                   for k in range(issues)],
        "organizations": organizations})


def ours(scenario: Scenario) -> tuple[float, int]:
    start = time.process_time()
    analysis = SpaceAnalysis(scenario)
    frontier = analysis.frontier
    assert analysis.nash is not None and analysis.kalai_smorodinsky is not None
    return time.process_time() - start, len(frontier)


def negmas_time(scenario: Scenario) -> tuple[float, int] | None:
    if not negmas_available():
        return None
    from negmas.preferences import kalai_points, nash_points
    from negmas.preferences import pareto_frontier as negmas_frontier

    start = time.process_time()
    issues, ufuns = negmas_domain(scenario)
    frontier, _ = negmas_frontier(ufuns, issues=issues)
    nash_points(ufuns, frontier, issues=issues)
    kalai_points(ufuns, frontier, issues=issues)
    return time.process_time() - start, len(frontier)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--negmas-max", type=int, default=100_000,
                        help="largest outcome count to also run through NegMAS")
    args = parser.parse_args()
    print(f"{'outcomes':>10} {'parties':>7} {'ours (s)':>9} {'frontier':>8} "
          f"{'NegMAS (s)':>11} {'its front':>9} {'NegMAS/ours':>11}")
    for outcomes in (10**4, 10**5, 10**6):
        for parties in (2, 3):
            scenario = domain(outcomes, parties)
            seconds, size = ours(scenario)
            peer = negmas_time(scenario) if outcomes <= args.negmas_max else None
            peer_text = peer_size = ratio = "—"
            if peer is not None:
                peer_text, ratio = f"{peer[0]:.3f}", f"{peer[0] / seconds:.1f}×"
                peer_size = str(peer[1])
            print(f"{outcomes:>10,} {parties:>7} {seconds:>9.3f} {size:>8} {peer_text:>11} "
                  f"{peer_size:>9} {ratio:>11}")


if __name__ == "__main__":
    main()
