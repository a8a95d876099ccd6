"""The cost of a transcript's hash chain per event: canonical JSON, sha256 and the line.

Records the events of one warm negotiation per domain (``compare_negmas``'s line-up:
Boulware vs Conceder, a linear third party) and chains them again and again, each event's
hash and line as a writer to a file makes them (the in-memory writer makes a line only when
its lines are read), twice: through orjson where its text is
provably ``json``'s (what runs use) and through ``json`` alone (the reference encoder, what
every event took before).  Both write the same bytes, which is checked first.  CPU time
per event, median and range of ``--repeats`` alternated timings, and for the moves alone
(the header and the outcome are each several times a move).  Last, what the chain adds per
event to whole warm runs (a run whose head hash is read, less one whose is not), where each
event's strings are new: more than the same records chained again and again.

    .venv/bin/python benchmarks/bench_transcript.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_frontier import domain
from compare_negmas import OurSide
from peer import aspiration_agents

from negotiation import canonical
from negotiation.analysis import SpaceAnalysis
from negotiation.events import line_bytes, link
from negotiation.session import Negotiation
from negotiation.transcript import GENESIS, TranscriptWriter


def recorded_events(size: int, parties: int) -> list[dict[str, Any]]:
    """The records of one negotiation, without their chain fields."""
    scenario = domain(size, parties)
    analysis = SpaceAnalysis(scenario)

    async def run() -> list[dict[str, Any]]:
        agents = aspiration_agents(scenario)
        writer = TranscriptWriter(None)
        await Negotiation(scenario, rounds=100, analysis=analysis).run(
            agents, seed=0, writer=writer, specs=dict.fromkeys(agents, "aspiration"))
        return writer.events

    return [{key: value for key, value in record.items() if key not in ("hash", "prev_hash")}
            for record in anyio.run(run)]


def chained(records: list[dict[str, Any]]) -> list[bytes]:
    """Each record's hash and line, as a writer to a file makes them (the in-memory writer
    makes the line only when its lines are read)."""
    head, lines = GENESIS, []
    for record in records:
        event = dict(record)
        lines.append(line_bytes(*link(event, head)))
        head = event["hash"]
    return lines


def reference_only(action: Callable[[], Any]) -> Any:
    fast = canonical._orjson_text
    canonical._orjson_text = lambda value: None
    try:
        return action()
    finally:
        canonical._orjson_text = fast


def per_event(records: list[dict[str, Any]], reference: bool, budget: float = 0.2) -> float:
    def many(count: int) -> float:
        start = time.process_time()
        for _ in range(count):
            chained(records)
        return time.process_time() - start

    def timed() -> float:
        once = max(many(1), 1e-6)
        count = max(1, round(budget / once))
        return many(count) / count / len(records)

    return float(reference_only(timed) if reference else timed())


def in_runs(size: int, parties: int, events: int, repeats: int) -> list[float]:
    """The chain's cost per event in whole warm runs: a run whose head hash is read, less
    one whose is not, alternated (fresh strings each run, as a tournament chains them)."""
    side = OurSide(domain(size, parties), 100, warm=True)
    side.run(20)
    side.run(20, chain=False)
    count = max(1, round(0.03 / max(per_run(side.run, 1), 1e-6)))
    unchained = functools.partial(side.run, chain=False)

    def paired() -> float:  # ten pairs, finely alternated: the neighbours' noise is shared
        return statistics.median(per_run(side.run, count) - per_run(unchained, count)
                                 for _ in range(10)) / events

    return [paired() for _ in range(repeats)]


def per_run(action: Callable[[int], object], count: int) -> float:
    start = time.process_time()
    action(count)
    return (time.process_time() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'domain':<22} {'events':>6}  {'orjson path µs/event':>24}  "
          f"{'json only µs/event':>24}  {'moves only, orjson':>24}  {'in whole runs':>24}")
    for size, parties in ((100, 2), (100, 3), (1000, 2)):
        records = recorded_events(size, parties)
        if chained(records) != reference_only(functools.partial(chained, records)):
            raise SystemExit("the two encoders wrote different lines: no timing")
        # The header (with its scenario) and the outcome (with the agreement's report) are
        # each several times a move: the average depends on how many moves there are.
        moves = [record for record in records if record["type"] == "move"]
        fast: list[float] = []
        slow: list[float] = []
        only_moves: list[float] = []
        for _ in range(args.repeats):
            fast.append(per_event(records, reference=False))
            slow.append(per_event(records, reference=True))
            only_moves.append(per_event(moves, reference=False))
        runs = in_runs(size, parties, len(records), args.repeats)
        cells = [f"{statistics.median(v) * 1e6:.2f} ({min(v) * 1e6:.2f}–{max(v) * 1e6:.2f})"
                 for v in (fast, slow, only_moves, runs)]
        print(f"{f'{size} outcomes, {parties} parties':<22} {len(records):>6}  "
              f"{cells[0]:>24}  {cells[1]:>24}  {cells[2]:>24}  {cells[3]:>24}")


if __name__ == "__main__":
    main()
