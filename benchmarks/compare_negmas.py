"""Side by side with NegMAS, in one process: negotiation throughput on the same bilateral
domain (3 issues × 10 values, 100 rounds, linear-additive, Boulware vs Conceder), and the
Pareto frontier plus Nash point on 10^5 outcomes; then the peak memory of a
10,000-negotiation tournament.  Installs nothing: NegMAS must already be importable.

    .venv/bin/pip install negmas   # into the benchmark environment only
    .venv/bin/python benchmarks/compare_negmas.py [--tournament 10000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_frontier import domain, negmas_time, ours
from bench_negotiation import (
    OUR_DEFAULTS,
    benchmark_scenario,
    measure,
    measure_negmas,
    side_by_side,
)
from peer import negmas_available

from negotiation.tournament import TournamentConfig, run_tournament


def peak_rss_mib() -> tuple[float, float]:
    """Peak resident memory of this process and of its (finished) children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tournament", type=int, default=10_000)
    args = parser.parse_args()
    if not negmas_available():
        print("NegMAS is not importable here: install it into this environment to compare.")
        return

    print("== Negotiation throughput (same domain, same process) ==")
    scenario = benchmark_scenario()
    measure("ours, NegMAS's curves", scenario, args.runs, None)
    measure("ours, our boulware/conceder", scenario, args.runs, None, OUR_DEFAULTS)
    measure_negmas(scenario, max(args.runs // 5, 10))
    ours_rates, peer_rates = side_by_side(scenario, args.repeats, args.runs,
                                          max(args.runs // 5, 10))
    ratios = sorted(o / p for o, p in zip(ours_rates, peer_rates, strict=True))
    print(f"alternating {args.repeats}×: ours {statistics.median(ours_rates):.0f}/s, NegMAS "
          f"{statistics.median(peer_rates):.0f}/s (medians); throughput ratio ours/NegMAS, same "
          f"curves: median {statistics.median(ratios):.1f}× (range {ratios[0]:.1f}–"
          f"{ratios[-1]:.1f}×)")

    print("\n== Pareto frontier + Nash (+ Kalai–Smorodinsky) on 10^5 outcomes, 2 parties ==")
    big = domain(100_000, 2)
    seconds, size = ours(big)
    peer = negmas_time(big)
    assert peer is not None
    print(f"ours {seconds:.3f} s ({size} frontier points)   NegMAS {peer[0]:.3f} s "
          f"({peer[1]} points)   ratio NegMAS/ours {peer[0] / seconds:.1f}×")

    print(f"\n== Peak memory of a {args.tournament:,}-negotiation tournament ==")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.yaml"
        path.write_text(yaml.safe_dump(scenario.model_dump(mode="json")))
        config = TournamentConfig(scenarios=[str(path)], strategies=["boulware", "conceder"],
                                  seeds=max(args.tournament // 4, 1))
        before = peak_rss_mib()
        start = time.perf_counter()
        count = run_tournament(config, Path(folder) / "results.csv", workers=2)
        elapsed = time.perf_counter() - start
        own, children = peak_rss_mib()
    print(f"{count:,} negotiations in {elapsed:.1f} s ({count / elapsed:.0f}/s on 2 processes); "
          f"peak RSS: driver {own:.0f} MiB (was {before[0]:.0f} before), workers "
          f"{children:.0f} MiB each at most")


if __name__ == "__main__":
    main()
