"""Peak memory of `negotiate run` at the largest allowed outcome space (10^7 outcomes,
2 organisations: the cap on outcomes × organisations), per driver.

Each run is a child process; its peak resident set is read from ``getrusage`` of the
children.  ``tests/test_strict_input.py`` builds the same scenario and asserts the 1 GiB
bound; this prints the figures the README quotes.

    .venv/bin/python benchmarks/bench_memory.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.test_strict_input import big_scenario  # noqa: E402  (the scenario the test uses)

MEASURE = ("import resource, subprocess, sys; "
           "done = subprocess.run(sys.argv[1:], capture_output=True); "
           "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def main() -> None:
    negotiate = Path(sys.executable).with_name("negotiate")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.yaml"
        path.write_text(big_scenario(parties=2, radices=(1000, 100, 100)))
        for driver in ("auto", "plain", "graph"):
            output = subprocess.run(
                [sys.executable, "-c", MEASURE, str(negotiate), "run", str(path),
                 "--rounds", "5", "--quiet", "--driver", driver, "--out",
                 str(Path(folder) / driver)], capture_output=True, text=True, check=True)
            code, kib = map(int, output.stdout.split())
            verdict = "ok" if code == 0 else f"exit {code}"
            print(f"run --driver {driver:<5}  10^7 outcomes, 2 parties: peak "
                  f"{kib / 1024 / 1024:.2f} GiB ({verdict}; target 1 GiB)")


if __name__ == "__main__":
    main()
