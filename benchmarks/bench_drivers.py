"""Per-step overhead of the durable LangGraph driver against the plain driver on the same
rule-based negotiation, and the SQLite checkpoint size per step.

    .venv/bin/python benchmarks/bench_drivers.py [--runs 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import anyio

from negotiation.engine import run_scenario
from negotiation.graph import checkpoint_path, start_run
from negotiation.scenario import load_scenario
from negotiation.transcript import load_verified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--scenario", default="park-redevelopment")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        plain_time = graph_time = 0.0
        steps = checkpoint_bytes = 0
        for seed in range(args.runs):
            start = time.perf_counter()
            anyio.run(partial(run_scenario, scenario, seed=seed, out_dir=out / "plain"))
            plain_time += time.perf_counter() - start

            path = out / "graph" / f"{seed}.jsonl"
            path.parent.mkdir(exist_ok=True)
            start = time.perf_counter()
            anyio.run(partial(start_run, scenario, transcript=path, seed=seed))
            graph_time += time.perf_counter() - start
            steps += sum(e["type"] in {"move", "blocked"} for e in load_verified(path))
            checkpoint_bytes += checkpoint_path(path).stat().st_size
    per_plain = plain_time / steps * 1e6
    per_graph = graph_time / steps * 1e6
    print(f"{args.scenario}: {args.runs} runs, {steps / args.runs:.0f} turns each; both write "
          "fsynced file transcripts")
    print(f"plain driver   {per_plain:9.0f} µs per turn")
    print(f"graph driver   {per_graph:9.0f} µs per turn   ratio {per_graph / per_plain:.1f}×   "
          f"overhead {per_graph - per_plain:.0f} µs per turn")
    print(f"checkpoints    {checkpoint_bytes / steps / 1024:9.1f} KiB per turn "
          f"({checkpoint_bytes / args.runs / 1024:.0f} KiB per run, SQLite)")


if __name__ == "__main__":
    main()
