"""Load on the rehearsal studio: N rehearsals at once on one ``negotiate serve``, each with
two scripted people acting over HTTP (httpx) against a rule-based foundation, on the park
scenario.  Reports the latency of a move — the POST until the server answers, and until the
move reaches the seat's event stream (referee, transcript fsync and checkpoint included) — at p50
and p95, and the server's memory (resident set, peak and at the end).

    .venv/bin/python benchmarks/bench_studio.py [--rehearsals 20] [--margin 0.1]

Target (issue 20): p95 of a move under 100 ms with 20 rehearsals on this machine.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

OPENING = {"funding_split": {"city": 30, "county": 30, "foundation": 40},
           "governance": "equal_thirds", "timeline_years": 3,
           "maintenance": "shared_public", "naming_rights": "pavilion"}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def set_up(client: httpx.AsyncClient, base: str, rounds: int) -> dict[str, str]:
    page = (await client.get(f"{base}/setup/park-redevelopment")).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    reply = await client.post(f"{base}/rehearsals", headers={"origin": base}, data={
        "csrf": csrf.group(1), "scenario": "park-redevelopment", "seat-city": "human",
        "seat-county": "human", "seat-foundation": "conceder", "rounds": str(rounds)})
    reply.raise_for_status()
    return dict(re.findall(r'class="seat-link" data-party="(\w+)" href="([^"]+)"',
                           reply.text))


async def person(client: httpx.AsyncClient, base: str, url: str, opening: dict[str, Any] | None,
                 margin: float, posted: list[float], applied: list[float]) -> None:
    """What the seat page does: follow the seat's event stream; on its turn accept a
    standing offer worth its reservation value plus ``margin``, else propose (the opening
    first, then the standing offer)."""
    page = (await client.get(url)).text
    found = re.search(r'data-csrf="([^"]+)"', page)
    assert found is not None
    csrf = found.group(1)
    moved_at: tuple[int, float] | None = None  # history length before the move, start time
    async with client.stream("GET", url + "/events") as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data: "):
                continue
            state = json.loads(line[6:])
            if moved_at is not None and (len(state["history"]) > moved_at[0]
                                         or state["outcome"] is not None):
                applied.append(time.perf_counter() - moved_at[1])
                moved_at = None
            if state["outcome"] is not None or state["problem"]:
                return
            if not state["your_turn"] or moved_at is not None:
                continue
            standing = state["standing"]
            if "accept" in state["legal"] and standing is not None and \
                    standing["utility"] >= state["reservation_value"] + margin:
                body: dict[str, Any] = {"kind": "accept", "rationale": "works for us"}
            else:
                terms = opening or (standing["terms"] if standing else OPENING)
                opening = None
                body = {"kind": "propose", "terms": terms, "rationale": "a fair split"}
            moved_at = (len(state["history"]), time.perf_counter())
            reply = await client.post(url + "/move", json={**body, "csrf": csrf},
                                      headers={"origin": base})
            posted.append(time.perf_counter() - moved_at[1])
            reply.raise_for_status()


async def load(base: str, rehearsals: int, rounds: int, margin: float, pid: int
               ) -> tuple[list[float], list[float], int]:
    posted: list[float] = []
    applied: list[float] = []
    peak = 0
    limits = httpx.Limits(max_connections=4 * rehearsals + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        seats = [await set_up(client, base, rounds) for _ in range(rehearsals)]
        done = anyio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_kib(pid)) if pid else 0
                await anyio.sleep(0.1)

        async with anyio.create_task_group() as group:
            group.start_soon(sample)
            async with anyio.create_task_group() as people:
                for links in seats:
                    people.start_soon(person, client, base, links["city"], OPENING, margin,
                                      posted, applied)
                    people.start_soon(person, client, base, links["county"], None, margin,
                                      posted, applied)
            done.set()
    return posted, applied, peak


def percentile(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100)[int(p) - 1] if len(samples) > 1 else samples[0]


def report(rehearsals: int, posted: list[float], applied: list[float]) -> None:
    print(f"{rehearsals} rehearsals at once (park-redevelopment, 2 people over HTTP + a "
          f"conceder each): {len(posted)} moves by people")
    for name, samples in (("POST /move answered", posted),
                          ("move back on the stream", applied)):
        print(f"{name:26} p50 {1000 * statistics.median(samples):6.1f} ms   "
              f"p95 {1000 * percentile(samples, 95):6.1f} ms   "
              f"max {1000 * max(samples):6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rehearsals", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--margin", type=float, default=0.1,
                        help="how much above their reservation value people hold out for")
    parser.add_argument("--url", help="load a studio already running here (e.g. under a "
                                      "profiler) instead of starting one")
    args = parser.parse_args()
    if args.url:
        posted, applied, _ = anyio.run(load, args.url.rstrip("/"), args.rehearsals,
                                       args.rounds, args.margin, 0)
        report(args.rehearsals, posted, applied)
        return
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [sys.executable, "-c", "from negotiation.cli import main; main()", "serve",
             "--port", "0", "--transcripts", folder], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None  # its one line, printed once it listens
            said = server.stdout.readline()
            found = re.search(r"Rehearsal studio at (http://127\.0\.0\.1:\d+)/", said)
            if found is None:
                raise SystemExit(f"the studio did not start; it printed: {said!r}")
            base = found.group(1)
            idle = rss_kib(server.pid)
            start = time.perf_counter()
            posted, applied, peak = anyio.run(load, base, args.rehearsals, args.rounds,
                                              args.margin, server.pid)
            took = time.perf_counter() - start
            end = rss_kib(server.pid)
            agreed = sum('"status":"agreement"' in path.read_text()
                         for path in Path(folder).glob("*.jsonl")
                         if not path.name.endswith(".calls.jsonl"))
        finally:
            server.terminate()
            server.wait(30)
    print(f"{took:.1f} s; {agreed} of {args.rehearsals} rehearsals agreed")
    report(args.rehearsals, posted, applied)
    print(f"server memory (RSS): idle {idle / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB, "
          f"after {end / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
