"""How fast the CLI answers (issue #18): the median wall time of N process starts of each
command, and the CPU time (user + system) each start cost, which a busy machine inflates far
less than the wall time.  The runs write to a temporary folder.

    .venv/bin/python benchmarks/bench_startup.py [--starts 10]

Targets on an idle machine: ``negotiate --help`` under 0.15 s; ``negotiate run
platform-app-vendor --quiet`` (the default driver, ``auto``: the plain loop, as nothing in
this run can pause) under 0.7 s.  Also shown: ``--driver graph`` (the durable LangGraph
driver, which ``auto`` takes for a person's seat or an inline sign-off), ``--driver plain``,
``analyze`` and ``verify``, and the one-line bill of each command's imports (``python -X
importtime``: the top-level packages that took longest to import).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

NEGOTIATE = Path(sys.executable).with_name("negotiate")

#: (label, arguments, target seconds on an idle machine or None)
COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("negotiate --help", ["--help"], 0.15),
    ("negotiate run platform-app-vendor --quiet", ["run", "platform-app-vendor", "--quiet"],
     0.7),
    ("negotiate run platform-app-vendor --quiet --driver graph",
     ["run", "platform-app-vendor", "--quiet", "--driver", "graph"], None),
    ("negotiate run platform-app-vendor --quiet --driver plain",
     ["run", "platform-app-vendor", "--quiet", "--driver", "plain"], None),
    ("negotiate analyze platform-app-vendor", ["analyze", "platform-app-vendor"], None),
    ("negotiate verify RUN", ["verify", "RUN"], None),
]


def start(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``negotiate`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run([str(NEGOTIATE), *argv], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_bill(argv: list[str], cwd: Path, top: int = 5) -> str:
    """The top-level packages whose imports took longest (cumulative µs, self time summed
    over each package's modules), from ``python -X importtime``."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import sys; from negotiation.cli import main; "
                           f"sys.argv = ['negotiate', *{argv!r}]; main()"],
                          cwd=cwd, capture_output=True, text=True, check=False)
    spent: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s+([\w.]+)", line)
        if found:
            spent[found.group(2).partition(".")[0]] += int(found.group(1))
    total = sum(spent.values())
    parts = ", ".join(f"{name} {micros / 1e3:.0f}" for name, micros in spent.most_common(top))
    return f"imports {total / 1e3:.0f} ms: {parts}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=10, help="process starts per command")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"{args.starts} starts per command, median (min–max); load average {load:.1f} on "
          f"{os.cpu_count()} CPUs (targets hold on an idle machine)")
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        subprocess.run([str(NEGOTIATE), "run", "rd-joint-venture", "-q", "--out", "seed-run"],
                       cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        run = str(next((cwd / "seed-run").glob("*.jsonl")))
        for label, argv, target in COMMANDS:
            argv = [run if arg == "RUN" else arg for arg in argv]
            start(argv, cwd)  # warm the file cache
            walls, cpus = zip(*(start(argv, cwd) for _ in range(args.starts)), strict=True)
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            verdict = "" if target is None else \
                f"   target {target:.2f} s: {'met' if wall < target else 'NOT met'}"
            print(f"{label:58} wall {wall:5.3f} s ({min(walls):.3f}–{max(walls):.3f})  "
                  f"cpu {cpu:5.3f} s{verdict}")
            print(f"{'':58} {import_bill(argv, cwd)}")


if __name__ == "__main__":
    main()
