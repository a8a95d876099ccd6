"""Concurrency of LLM-bound runs: 50 negotiations at once against the scripted
OpenAI-compatible server with 200 ms of added latency per reply.  Prints the total time,
the ideal time (the slowest negotiation run on its own) and how much of the ideal overlap
was achieved.

    .venv/bin/python benchmarks/bench_llm_concurrency.py [--negotiations 50] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from multiprocessing import Event, Process, Queue
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.llm_client import LLMRun
from negotiation.analysis import SpaceAnalysis
from negotiation.devtools.llm_server import Reply, ScriptedServer
from negotiation.engine import run_scenario
from negotiation.scenario import load_scenario
from negotiation.tournament import TournamentConfig, run_tournament
from tests.llm_support import fair_dealer

ROUNDS = 5


SCENARIO = load_scenario("platform-app-vendor")


async def one(seed: int, llm_run: LLMRun | None = None) -> float:
    start = time.perf_counter()
    await run_scenario(SCENARIO, seed=seed, rounds=ROUNDS, agents={"vendor": "llm:scripted"},
                       llm_run=llm_run)
    return time.perf_counter() - start


async def many(count: int) -> list[float]:
    durations: list[float] = []
    llm_run = LLMRun()  # one connection pool for all, as a tournament would share it

    async def task(seed: int) -> None:
        durations.append(await one(seed, llm_run))

    try:
        async with anyio.create_task_group() as group:
            for seed in range(count):
                group.start_soon(task, seed)
    finally:
        await llm_run.aclose()
    return durations


def serve(latency: float, urls: Queue[str], stop: Event) -> None:
    """The model server, in its own process so that it does not compete for our GIL."""
    nash = SpaceAnalysis(SCENARIO).nash
    assert nash is not None
    script = fair_dealer(nash.terms, accept_above=2.0)  # never accepts: every turn is a call

    def slow(request: dict[str, Any], number: int) -> Reply:
        reply = script(request, number)
        return Reply(reply.status, reply.body, latency, reply.headers)

    with ScriptedServer(slow) as server:
        urls.put(server.base_url)
        stop.wait()


def in_processes(count: int, processes: int) -> float:
    """The same negotiations as a tournament: ``processes`` workers, each running its share
    concurrently in one event loop."""
    config = TournamentConfig(scenarios=["platform-app-vendor"],
                              lineups=[["boulware", "llm:scripted"]], role_swaps=False,
                              seeds=count, rounds=ROUNDS)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        run_tournament(config, Path(folder) / "r.csv", workers=processes, parquet=False,
                       concurrency=-(-count // processes))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--negotiations", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--processes", type=int, default=1,
                        help="spread the negotiations over this many worker processes")
    args = parser.parse_args()
    urls: Queue[str] = Queue()
    stop = Event()
    server = Process(target=serve, args=(args.latency, urls, stop), daemon=True)
    server.start()
    try:
        os.environ["OPENAI_BASE_URL"] = urls.get(timeout=60)
        ideal = max(anyio.run(one, seed) for seed in range(2))
        durations: list[float] = []
        if args.processes > 1:
            total = in_processes(args.negotiations, args.processes)
        else:
            start = time.perf_counter()
            durations = anyio.run(many, args.negotiations)
            total = time.perf_counter() - start
    finally:
        stop.set()
        server.join(timeout=10)
    where = f"{args.processes} worker processes" if args.processes > 1 else "one event loop"
    print(f"{args.negotiations} concurrent negotiations in {where}, {ROUNDS} rounds, one model "
          f"call per LLM turn, {args.latency * 1000:.0f} ms per reply (server in its own "
          "process)")
    slowest = f"   slowest in the batch {max(durations):.2f} s" if durations else ""
    print(f"total {total:.2f} s   ideal (slowest alone) {ideal:.2f} s   "
          f"overlap {ideal / total:.0%}{slowest}   (serial would take "
          f"~{ideal * args.negotiations:.0f} s)")


if __name__ == "__main__":
    main()
