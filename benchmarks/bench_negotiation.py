"""Throughput of the plain driver: bilateral, 3 issues × 10 values, 100 rounds,
Boulware vs Conceder.  Prints negotiations per second and the cost per round, in memory and
with an fsynced file.  The comparison with NegMAS on equal work (the same decisions checked
move for move, warm and cold, 10^2 to 10^6 outcomes) is ``benchmarks/compare_negmas.py``.

NegMAS's BoulwareTB and ConcederTB concede along ``1 − t^e`` with e = 4 and e = 0.25; ours
are written with β = 1/e (Faratin et al. 1998), so the line-up with NegMAS's curves is
``time_dependent:beta=0.25`` vs ``time_dependent:beta=4``.  Our named
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    scenario = benchmark_scenario()
    measure("NegMAS's curves, in memory", scenario, args.runs, None)
    measure("our boulware/conceder, in memory", scenario, args.runs, None, OUR_DEFAULTS)
    with tempfile.TemporaryDirectory() as folder:
        measure("NegMAS's curves, fsynced file", scenario, max(args.runs // 10, 10),
                Path(folder))


if __name__ == "__main__":
    main()
