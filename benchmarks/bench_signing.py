"""The cost of attributable sign-offs: verifying a ~10,000-event transcript with Ed25519
signatures against the same transcript signed off without them, and the latency of a
sign-off (in-process and through ``negotiate review``/``negotiate verify``).

    .venv/bin/python benchmarks/bench_signing.py [--events 10000] [--repeat 7]

Both transcripts come from the same negotiation (same seed, same agents, same length); the
only difference is the scenario's ``signatories:`` block and the sign-off events.  Every
measurement is the median of ``--repeat`` runs, warm (files in the page cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
import yaml

from negotiation.engine import run_scenario
from negotiation.lifecycle import sign_off, sign_offs
from negotiation.scenario import load_scenario, shipped_scenarios_dir
from negotiation.signing import LocalKey, new_key
from negotiation.transcript import verify

NEGOTIATE = Path(sys.executable).with_name("negotiate")
AGENTS = {"kestrel": "boulware", "voltaic": "boulware"}


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scenario_file(folder: Path, keys: dict[str, LocalKey] | None) -> Path:
    data = yaml.safe_load((shipped_scenarios_dir() / "rd-joint-venture.yaml").read_text())
    if keys:
        data["signatories"] = {org: {"keys": [{"name": key.signatory.name,
                                               "public_key": key.signatory.public_key}]}
                               for org, key in keys.items()}
    path = folder / ("signed.yaml" if keys else "unsigned.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def long_run(scenario: Path, out: Path, events: int) -> Path:
    """A run with an agreement and at least ``events`` events (rounds scaled to fit)."""
    rounds = events // 2 + 200
    while True:
        result = anyio.run(partial(run_scenario, load_scenario(scenario), seed=0,
                                   rounds=rounds, agents=AGENTS, out_dir=out))
        assert result.path is not None and result.status == "agreement"
        if len(result.transcript.events) >= events:
            return result.path
        result.path.unlink()
        rounds = int(rounds * 1.15)


def full_check(path: Path) -> None:
    """What ``negotiate verify`` does: the chain, the typed events, every signature."""
    result = verify(path)
    assert result.ok and result.transcript is not None
    assert not sign_offs(result.transcript).problems


def cli_seconds(args: list[str], repeat: int, env: dict[str, str]) -> float:
    def call() -> None:
        done = subprocess.run([str(NEGOTIATE), *args], capture_output=True, env=env)
        assert done.returncode == 0, done.stderr
    return median_seconds(call, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        env = {**os.environ, "XDG_CONFIG_HOME": str(folder / "config")}
        key_folder = folder / "config" / "negotiate" / "keys"
        keys = {org: new_key(org, f"Signer of {org}", key_folder) for org in AGENTS}
        signed = long_run(scenario_file(folder, keys), folder / "signed", args.events)
        unsigned = long_run(scenario_file(folder, None), folder / "unsigned", args.events)

        start = time.perf_counter()
        sign_off(signed, approve=True, org="voltaic", key=keys["voltaic"].private_key())
        first_signature = time.perf_counter() - start
        start = time.perf_counter()
        sign_off(unsigned, approve=True, reviewer="Ada")
        unsigned_signoff = time.perf_counter() - start
        review = cli_seconds(["review", str(signed), "--approve", "--as", "kestrel"], 1, env)

        count = len(verify(signed).events)
        chain_signed = median_seconds(lambda: verify(signed), args.repeat)
        chain_unsigned = median_seconds(lambda: verify(unsigned), args.repeat)
        check_signed = median_seconds(lambda: full_check(signed), args.repeat)
        check_unsigned = median_seconds(lambda: full_check(unsigned), args.repeat)
        cli_signed = cli_seconds(["verify", str(signed)], 3, env)
        cli_unsigned = cli_seconds(["verify", str(unsigned)], 3, env)

    print(f"transcripts: {count:,} events each, 2 Ed25519 sign-offs vs 1 unsigned sign-off")
    print(f"verify, chain only      signed {chain_signed * 1e3:7.1f} ms   unsigned "
          f"{chain_unsigned * 1e3:7.1f} ms   ratio {chain_signed / chain_unsigned:.2f}")
    print(f"verify, chain + sign-offs signed {check_signed * 1e3:7.1f} ms   unsigned "
          f"{check_unsigned * 1e3:7.1f} ms   ratio {check_signed / check_unsigned:.2f}")
    print(f"negotiate verify (CLI)   signed {cli_signed * 1e3:7.1f} ms   unsigned "
          f"{cli_unsigned * 1e3:7.1f} ms   ratio {cli_signed / cli_unsigned:.2f}")
    print(f"sign-off in process      signed {first_signature * 1e3:7.1f} ms   unsigned "
          f"{unsigned_signoff * 1e3:7.1f} ms   ratio {first_signature / unsigned_signoff:.2f}")
    print(f"negotiate review --approve --as ORG (CLI, whole review printed): "
          f"{review * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
