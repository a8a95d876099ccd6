"""Throughput of the plain driver: bilateral, 3 issues × 10 values, 100 rounds,
Boulware vs Conceder.  Prints negotiations per second and the cost per round; with NegMAS
installed in the same environment, runs the same domain there too and prints the ratio.

Both systems concede along ``1 − t^e`` (Faratin et al. 1998).  NegMAS's BoulwareTB and
ConcederTB use e = 4 and e = 0.25; ours are written with β = 1/e, so the like-for-like
line-up is ``time_dependent:beta=0.25`` vs ``time_dependent:beta=4``.  Our named
``boulware``/``conceder`` (β = 0.2 and 2) concede more slowly and are measured too.

    .venv/bin/python benchmarks/bench_negotiation.py [--runs N]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import anyio
from peer import negmas_available, negmas_domain

from negotiation.analysis import SpaceAnalysis
from negotiation.engine import Negotiation, build_agents
from negotiation.model import Scenario
from negotiation.scenario import scenario_from_data
from negotiation.transcript import TranscriptWriter


def benchmark_scenario(issues: int = 3, values: int = 10, rounds: int = 100,
                       seed: int = 0) -> Scenario:
    """A linear-additive bilateral domain with seeded random scores and weights."""
    rng = random.Random(seed)
    options = [f"v{k}" for k in range(values)]
    issue_list = [{"id": f"i{k}", "kind": "discrete", "name": f"Issue {k}", "options": options}
                  for k in range(issues)]
    organizations = []
    for party in ("buyer", "seller"):
        raw = [rng.random() + 0.1 for _ in range(issues)]
        weights = {f"i{k}": w / sum(raw) for k, w in enumerate(raw)}
        weights[f"i{issues - 1}"] = 1.0 - sum(list(weights.values())[:-1])
        organizations.append({
            "id": party, "name": party.title(),
            "preferences": {
                "reservation_value": 0.0,
                "weights": weights,
                "values": {f"i{k}": {"scores": {o: round(rng.random(), 6) for o in options}}
                           for k in range(issues)},
            },
        })
    return scenario_from_data({"id": "bench", "title": "Benchmark domain", "issues": issue_list,
                               "organizations": organizations,
                               "protocol": {"rounds": rounds}})


#: Our line-up with NegMAS's curves (BoulwareTB e=4, ConcederTB e=0.25; β = 1/e).
LIKE_NEGMAS = {"buyer": "time_dependent:beta=0.25", "seller": "time_dependent:beta=4"}
#: Our named strategies (boulware β=0.2, conceder β=2).
OUR_DEFAULTS = {"buyer": "boulware", "seller": "conceder"}


async def run_many(scenario: Scenario, runs: int, out_dir: Path | None,
                   specs: dict[str, str]) -> tuple[int, int]:
    analysis = SpaceAnalysis(scenario)
    steps = agreements = 0
    for seed in range(runs):
        negotiation = Negotiation(scenario, analysis=analysis)
        path = out_dir / f"{seed}.jsonl" if out_dir else None
        with TranscriptWriter(path, fsync=out_dir is not None) as writer:
            result = await negotiation.run(build_agents(specs, seed), seed=seed,
                                           writer=writer, specs=specs)
        steps += sum(1 for e in writer.events if e["type"] == "move")
        agreements += result.status == "agreement"
    return steps, agreements


def measure(label: str, scenario: Scenario, runs: int, out_dir: Path | None,
            specs: dict[str, str] = LIKE_NEGMAS, quiet: bool = False) -> float:
    start = time.perf_counter()
    steps, agreements = anyio.run(run_many, scenario, runs, out_dir, specs)
    elapsed = time.perf_counter() - start
    rate = runs / elapsed
    rounds = steps / 2
    if not quiet:
        print(f"{label:<34} {rate:9.1f} negotiations/s   {elapsed / rounds * 1e6:7.1f} "
              f"µs/round   ({agreements}/{runs} agreements, {rounds / runs:.1f} rounds on "
              "average)")
    return rate


def measure_negmas(scenario: Scenario, runs: int, quiet: bool = False) -> float | None:
    if not negmas_available():
        return None
    from negmas import SAOMechanism
    from negmas.sao import BoulwareTBNegotiator, ConcederTBNegotiator

    issues, ufuns = negmas_domain(scenario)
    rounds = agreements = 0
    start = time.perf_counter()
    for _ in range(runs):
        mechanism = SAOMechanism(issues=issues, n_steps=scenario.protocol.rounds)
        mechanism.add(BoulwareTBNegotiator(), preferences=ufuns[0])
        mechanism.add(ConcederTBNegotiator(), preferences=ufuns[1])
        state = mechanism.run()
        rounds += mechanism.current_step
        agreements += state.agreement is not None
    elapsed = time.perf_counter() - start
    rate = runs / elapsed
    if not quiet:
        print(f"{'NegMAS SAOMechanism (same domain)':<34} {rate:9.1f} negotiations/s   "
              f"{elapsed / max(rounds, 1) * 1e6:7.1f} µs/round   ({agreements}/{runs} "
              f"agreements, {rounds / runs:.1f} rounds on average)")
    return rate


def side_by_side(scenario: Scenario, repeats: int, ours_runs: int, peer_runs: int
                 ) -> tuple[list[float], list[float]]:
    """Both systems warmed up, then measured in alternation ``repeats`` times, so that a
    noisy neighbour slows both rather than one."""
    measure("warm-up", scenario, max(ours_runs // 10, 5), None, quiet=True)
    measure_negmas(scenario, max(peer_runs // 10, 2), quiet=True)
    ours, peer = [], []
    for _ in range(repeats):
        ours.append(measure("ours", scenario, ours_runs, None, quiet=True))
        peer.append(measure_negmas(scenario, peer_runs, quiet=True) or float("nan"))
    return ours, peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    scenario = benchmark_scenario()
    ours = measure("NegMAS's curves, in memory", scenario, args.runs, None)
    measure("our boulware/conceder, in memory", scenario, args.runs, None, OUR_DEFAULTS)
    with tempfile.TemporaryDirectory() as folder:
        measure("NegMAS's curves, fsynced file", scenario, max(args.runs // 10, 10),
                Path(folder))
    peer = measure_negmas(scenario, max(args.runs // 5, 10))
    if peer is not None:
        print(f"ratio (ours in memory / NegMAS, same curves): {ours / peer:.1f}×")


if __name__ == "__main__":
    main()
