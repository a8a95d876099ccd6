"""Tournaments: scenarios × line-ups × seat assignments × seeds, run in parallel processes.

Each negotiation becomes one result row, streamed to CSV (and Parquet, in row groups) as
soon as it finishes, so memory stays flat however large the tournament.  Rows are keyed by
``job``; rerunning a tournament skips the jobs already in its CSV, so an interrupted one
resumes where it stopped.  The leaderboard ranks strategies by their mean gain over
reservation value with percentile-bootstrap confidence intervals (Efron & Tibshirani 1993).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Annotated, Any

import anyio
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.budget import Budget
from negotiation import files
from negotiation.engine import LLMOptions, is_llm, new_llm_run, open_run
from negotiation.errors import InputError
from negotiation.events import EventType
from negotiation.model import Scenario
from negotiation.plugins import command_line_plugins, register_plugin
from negotiation.registry import strategy_problem
from negotiation.scenario import ScenarioError, load_scenario, resolve_scenario_path
from negotiation.strict_yaml import StrictYamlError, load_yaml, read_data_file
from negotiation.transcript import drop_torn_tail
from negotiation.usage import usage_by_party

#: Columns compared by ``--expect``: everything deterministic (wall time is not).
DETERMINISTIC = ["job", "scenario", "seed", "seats", "status", "reason", "rounds",
                 "utilities", "gains", "welfare", "nash_ratio", "ks_distance", "blocked",
                 "warnings", "tokens", "cost_usd", "seat_usage"]
COLUMNS = [*DETERMINISTIC, "wall_seconds"]
_HEADER = ",".join(COLUMNS)


class TournamentError(InputError):
    """A tournament file or a regression check that fails; the message says what to do."""


class TournamentConfig(BaseModel):
    """A tournament file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    scenarios: list[str] = Field(min_length=1, description="Shipped names or file paths.")
    strategies: list[str] = Field(
        default_factory=list,
        description="Round robin: every assignment of these strategies to the seats.")
    lineups: list[list[str]] = Field(
        default_factory=list,
        description="Explicit line-ups, one strategy per seat; with role_swaps each plays "
                    "every seat.")
    role_swaps: bool = True
    seeds: Annotated[int, Field(ge=1, le=100_000)] | list[int] = 3
    rounds: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _some_players(self) -> TournamentConfig:
        if not self.strategies and not self.lineups:
            raise ValueError("give 'strategies' (round robin) or 'lineups'")
        return self

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


@dataclass(frozen=True)
class Job:
    scenario: str
    seats: tuple[tuple[str, str], ...]  # (organisation, strategy) in seat order
    seed: int
    rounds: int | None
    plugins: tuple[str, ...] = ()  # the command line's --plugin specs, for worker processes
    #: The price table (model, input, output USD per 1M tokens) for LLM seats' cost.
    prices: tuple[tuple[str, float, float], ...] = ()

    def llm_options(self) -> LLMOptions:
        """A budget that only prices the calls (a tournament sets no limits)."""
        return LLMOptions(budget=Budget(prices={model: (price_in, price_out)
                                                for model, price_in, price_out in self.prices}))

    @property
    def key(self) -> str:
        seats = ",".join(f"{org}={strategy}" for org, strategy in self.seats)
        return f"{Path(self.scenario).stem}|{seats}|{self.seed}"


def load_config(path: Path) -> TournamentConfig:
    """A tournament file, refused (naming the field) if it names a strategy that is not
    registered: an import path in the file is never imported."""
    config = _read_config(path)
    named = [(f"strategies[{i}]", spec) for i, spec in enumerate(config.strategies)]
    named += [(f"lineups[{i}][{j}]", spec) for i, lineup in enumerate(config.lineups)
              for j, spec in enumerate(lineup)]
    problems = [f"{where}: {problem}" for where, spec in named
                if (problem := strategy_problem(spec)) is not None]
    if problems:
        raise TournamentError(f"{path}: " + "; ".join(problems))
    return config


def _read_config(path: Path) -> TournamentConfig:
    try:
        data = load_yaml(read_data_file(path), str(path))
        return TournamentConfig.model_validate(data)
    except StrictYamlError as error:
        raise TournamentError(str(error)) from None
    except OSError as error:
        raise TournamentError(f"{path}: cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise TournamentError(f"{path}: not UTF-8 text ({error.reason}); save it as UTF-8"
                              ) from None
    except yaml.YAMLError as error:
        raise TournamentError(f"{path}: not valid YAML ({error})") from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}"
                             for e in error.errors(include_url=False))
        raise TournamentError(f"{path}: {problems}") from None


def jobs(config: TournamentConfig) -> list[Job]:
    """Every negotiation of the tournament, in a fixed order."""
    result: list[Job] = []
    plugins = tuple(command_line_plugins())
    for name in config.scenarios:
        path = str(resolve_scenario_path(name))
        parties = load_scenario(path).party_ids
        assignments: list[tuple[str, ...]] = []
        if config.strategies:
            assignments += list(itertools.product(config.strategies, repeat=len(parties)))
        for lineup in config.lineups:
            if len(lineup) != len(parties):
                raise TournamentError(f"line-up {lineup} has {len(lineup)} strategies but "
                                      f"{name} has {len(parties)} seats ({parties})")
            orders = itertools.permutations(lineup) if config.role_swaps else [tuple(lineup)]
            assignments += list(dict.fromkeys(orders))
        for assignment in dict.fromkeys(assignments):
            for seed in config.seed_list:
                result.append(Job(path, tuple(zip(parties, assignment, strict=True)), seed,
                                  config.rounds, plugins))
    return result


_SCENARIOS: dict[str, Scenario] = {}


def run_job(job: Job) -> dict[str, Any]:
    """One negotiation, in memory, as a result row (runs in a worker process)."""
    return anyio.run(_run_job, job, None)


def run_batch(batch: Sequence[Job]) -> list[dict[str, Any]]:
    """Several negotiations at once in one event loop (one worker process): LLM-bound runs
    wait on the network together, sharing one HTTP connection pool."""
    async def all_of_them() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        llm_run = None
        if any(is_llm(spec) for job in batch for _, spec in job.seats):
            llm_run = new_llm_run(batch[0].llm_options())  # one table for a tournament
        try:
            async with anyio.create_task_group() as group:
                async def one(job: Job) -> None:
                    rows.append(await _run_job(job, llm_run))

                for job in batch:
                    group.start_soon(one, job)
        finally:
            if llm_run is not None:
                await llm_run.aclose()
        return rows

    return anyio.run(all_of_them)


async def _run_job(job: Job, llm_run: Any) -> dict[str, Any]:
    for plugin in job.plugins:  # a spawned worker (or a Ray task) starts without them
        register_plugin(plugin)
    scenario = _SCENARIOS.get(job.scenario)
    if scenario is None:
        scenario = _SCENARIOS[job.scenario] = load_scenario(job.scenario)
    specs = dict(job.seats)
    start = time.perf_counter()
    async with open_run(scenario, agents=specs, seed=job.seed, rounds=job.rounds,
                        llm_run=llm_run, llm=job.llm_options()) as run:
        result = await run.play()
    writer = run.writer
    elapsed = time.perf_counter() - start
    events = writer.events
    outcome = writer.outcome  # typed; the counts below only look at each record's type
    assert outcome is not None
    reservations = outcome.reservation_values
    utilities = result.utilities or {p: reservations[p] for p in specs}
    fairness = outcome.fairness or {}
    calls = [e for e in events if e["type"] == EventType.LLM_CALL]
    return {
        "job": job.key, "scenario": scenario.id, "seed": job.seed,
        "seats": json.dumps(specs), "status": result.status, "reason": result.reason,
        "rounds": result.rounds,
        "utilities": json.dumps({p: round(u, 6) for p, u in utilities.items()}),
        "gains": json.dumps({p: round(utilities[p] - reservations[p], 6) for p in specs}),
        "welfare": round(sum(utilities.values()), 6),
        "nash_ratio": fairness.get("nash_ratio"), "ks_distance": fairness.get("ks_distance"),
        "blocked": sum(e["type"] == EventType.BLOCKED for e in events),
        "warnings": sum(1 for e in events if e.get("verdict", {}).get("level") == "warn"),
        "tokens": sum(c.get("prompt_tokens", 0) + c.get("completion_tokens", 0)
                      for c in calls),
        "cost_usd": round(sum(c.get("cost_usd") or 0.0 for c in calls), 8),
        "seat_usage": json.dumps({party: {"calls": used.calls, "tokens_in": used.tokens_in,
                                          "tokens_out": used.tokens_out,
                                          "cost_usd": used.cost_usd if used.cost_known
                                          else None}
                                  for party, used in sorted(usage_by_party(calls).items())}),
        "wall_seconds": round(elapsed, 6),
    }


def check_result_file(csv_path: Path) -> bool:
    """Whether ``csv_path`` already holds results; ``TournamentError`` if something that is
    not a tournament's result file (or a symlink) is there, so it is never touched."""
    if not os.path.lexists(csv_path):
        return False
    if csv_path.is_symlink() or not csv_path.is_file():
        kind = "a symbolic link" if csv_path.is_symlink() else "not a regular file"
        raise TournamentError(f"{csv_path} is {kind}; results are never written through it. "
                              "Choose another --out")
    with csv_path.open("rb") as handle:
        first = handle.readline()
    if first.rstrip(b"\r\n") != _HEADER.encode():
        if first.startswith(b"job,scenario,"):
            raise TournamentError(f"{csv_path} holds results with other columns (an older "
                                  "version's); it is left as it is. Choose another --out")
        raise TournamentError(f"{csv_path} exists and is not a tournament result file (its "
                              "first line is not the result header); it is left as it is. "
                              "Choose another --out, or remove it")
    return True


def done_jobs(csv_path: Path) -> set[str]:
    if not check_result_file(csv_path):
        return set()
    drop_torn_tail(csv_path)
    with csv_path.open(newline="", encoding="utf-8") as handle:
        return {row["job"] for row in csv.DictReader(handle)}


class ResultSink:
    """Appends rows to CSV (each row whole, or not at all) and Parquet (row groups of
    ``batch``).  A new CSV appears with its header; an existing file is appended to only
    if it is a result file (:func:`check_result_file`)."""

    def __init__(self, csv_path: Path, parquet: bool = True, batch: int = 1000) -> None:
        self.csv_path = csv_path
        try:
            if check_result_file(csv_path):
                drop_torn_tail(csv_path)  # a row cut short by a crash never finished
            else:
                csv_path.parent.mkdir(parents=True, exist_ok=True)
                files.write_file(csv_path, _HEADER + "\r\n")
            self._fd = files.open_existing(csv_path)
        except OSError as error:
            raise TournamentError(str(files.write_error(csv_path, error))) from None
        except files.OutputError as error:
            raise TournamentError(str(error)) from None
        self.parquet_path = csv_path.with_suffix(".parquet") if parquet else None
        self._batch: list[dict[str, Any]] = []
        self._batch_size = batch
        self._parquet: Any = None
        self._part: IO[bytes] | None = None

    def add(self, row: dict[str, Any]) -> None:
        line = io.StringIO()
        csv.DictWriter(line, fieldnames=COLUMNS).writerow(row)
        with self._writing(self.csv_path):
            files.append_whole(self._fd, line.getvalue().encode(), fsync=False)
        if self.parquet_path is not None:
            self._batch.append(row)
            if len(self._batch) >= self._batch_size:
                self._flush_parquet()

    @contextmanager
    def _writing(self, path: Path) -> Iterator[None]:
        """A full disk becomes a ``TournamentError``; finished rows stay, and re-running
        the same command continues with the jobs not yet in the file."""
        try:
            yield
        except OSError as error:
            raise TournamentError(str(files.write_error(
                path, error, resume="run the same command again to continue"))) from None
        except files.OutputError as error:
            raise TournamentError(str(error)) from None

    def _flush_parquet(self) -> None:
        if not self._batch or self.parquet_path is None:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self._batch, schema=_parquet_schema(pa))
        with self._writing(self.parquet_path):
            if self._parquet is None:
                self._part = self._new_part()
                self._parquet = pq.ParquetWriter(self._part, table.schema)
            self._parquet.write_table(table)
        self._batch = []

    def _new_part(self) -> IO[bytes]:
        """A new Parquet file per session (Parquet files cannot be appended to), created
        exclusively: never an existing file, never through a symlink."""
        assert self.parquet_path is not None
        n = 0
        while True:
            candidate = self.parquet_path.with_name(
                f"{self.parquet_path.stem}.part{n}.parquet")
            if not os.path.lexists(candidate):
                return os.fdopen(files.create_exclusive(candidate), "wb")
            n += 1

    def close(self) -> None:
        try:
            self._flush_parquet()
            if self._parquet is not None:
                with self._writing(self.parquet_path or self.csv_path):
                    self._parquet.close()
        finally:
            if self._part is not None:
                self._part.close()
            os.close(self._fd)


def _parquet_schema(pa: Any) -> Any:
    text, number, integer = pa.string(), pa.float64(), pa.int64()
    types = {"job": text, "scenario": text, "seed": integer, "seats": text, "status": text,
             "reason": text, "rounds": integer, "utilities": text, "gains": text,
             "welfare": number, "nash_ratio": number, "ks_distance": number,
             "blocked": integer, "warnings": integer, "tokens": integer, "cost_usd": number,
             "seat_usage": text, "wall_seconds": number}
    return pa.schema([(column, types[column]) for column in COLUMNS])


def run_tournament(config: TournamentConfig, csv_path: Path, *, workers: int | None = None,
                   parquet: bool = True,
                   progress: Callable[[int, int], None] | None = None,
                   backend: str = "process", address: str | None = None,
                   concurrency: int = 1,
                   prices: Mapping[str, tuple[float, float]] | None = None) -> int:
    """Run every job not yet in ``csv_path``; return how many ran.  Results stream to disk
    as they finish; at most a few jobs per worker are in flight at any time.

    ``backend="ray"`` runs the jobs as Ray tasks (``address`` of a cluster, or a local Ray
    instance by default) and writes the same rows.  ``concurrency`` > 1 runs that many
    negotiations at once inside each worker (for LLM-bound runs, which mostly wait).
    ``prices`` (model: input, output USD per 1M tokens) give LLM seats' calls a cost."""
    table = tuple((model, *pair) for model, pair in sorted((prices or {}).items()))
    pending = [replace(job, prices=table) for job in jobs(config)
               if job.key not in done_jobs(csv_path)]
    sink = ResultSink(csv_path, parquet=parquet)
    workers = workers or os.cpu_count() or 1
    finished = 0
    try:
        if backend == "ray":
            for row in _run_on_ray(pending, address, in_flight=workers * 4):
                sink.add(row)
                finished += 1
                if progress:
                    progress(finished, len(pending))
            return finished
        if backend != "process":
            raise TournamentError(f"unknown backend '{backend}'; use process or ray")
        if concurrency > 1:
            batches = [pending[k:k + concurrency] for k in range(0, len(pending), concurrency)]
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for rows in pool.map(run_batch, batches):
                    for row in rows:
                        sink.add(row)
                        finished += 1
                        if progress:
                            progress(finished, len(pending))
            return finished
        if workers == 1:
            for job in pending:
                sink.add(run_job(job))
                finished += 1
                if progress:
                    progress(finished, len(pending))
            return finished
        with ProcessPoolExecutor(max_workers=workers) as pool:
            queue: Iterator[Job] = iter(pending)
            flight: set[Future[dict[str, Any]]] = set()
            for job in itertools.islice(queue, workers * 4):
                flight.add(pool.submit(run_job, job))
            while flight:
                done, flight = wait(flight, return_when=FIRST_COMPLETED)
                for future in done:
                    sink.add(future.result())
                    finished += 1
                    if progress:
                        progress(finished, len(pending))
                for job in itertools.islice(queue, len(done)):
                    flight.add(pool.submit(run_job, job))
    finally:
        sink.close()
    return finished


def _run_on_ray(pending: Sequence[Job], address: str | None,
                in_flight: int) -> Iterator[dict[str, Any]]:
    """Yield rows as Ray tasks finish, with a bounded number of tasks in flight."""
    try:
        import ray
    except ImportError:
        raise TournamentError("the ray backend needs Ray: pip install '.[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        # Workers import this package from the same environment; nothing is uploaded.
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    remote = ray.remote(run_job)
    try:
        queue = iter(pending)
        flight = [remote.remote(job) for job in itertools.islice(queue, in_flight)]
        while flight:
            done, flight = ray.wait(flight, num_returns=1)
            for ref in done:
                yield ray.get(ref)
            flight += [remote.remote(job) for job in itertools.islice(queue, len(done))]
    finally:
        if started_here:
            ray.shutdown()


# --- analysis ------------------------------------------------------------------------------


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@dataclass(frozen=True)
class Standing:
    strategy: str
    negotiations: int
    agreement_rate: float
    mean_gain: float
    low: float
    high: float
    #: What the strategy's LLM seats used in all (0 for rule-based strategies).
    tokens: int = 0
    cost_usd: float = 0.0


#: Resampled values drawn at once: bounds the bootstrap's memory whatever the data's size.
BOOTSTRAP_CHUNK = 1 << 20


def bootstrap_ci(values: Sequence[float], *, resamples: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (seeded: reproducible).

    Resamples are drawn a chunk of rows at a time from one generator, which continues its
    stream across calls, so the means equal those of one ``resamples × n`` draw while the
    memory stays at ``BOOTSTRAP_CHUNK`` indices.  The interval depends on the order of
    ``values``: callers pass them in a stable order (see :func:`leaderboard`)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    rows = max(1, BOOTSTRAP_CHUNK // data.size)
    for start in range(0, resamples, rows):
        count = min(rows, resamples - start)
        picks = rng.integers(0, data.size, size=(count, data.size))
        means[start:start + count] = data[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def leaderboard(rows: Sequence[Mapping[str, str]]) -> list[Standing]:
    """Each strategy's mean gain over reservation per seat played (0 without agreement).

    Rows are taken in the order of their job key and seats in the order of their party, so
    the bootstrap intervals do not depend on the order of the CSV's rows."""
    gains: dict[str, list[float]] = {}
    agreements: dict[str, list[bool]] = {}
    tokens: dict[str, int] = {}
    costs: dict[str, float] = {}
    for row in sorted(rows, key=lambda row: (row["job"], sorted(row.items()))):
        seats: dict[str, str] = json.loads(row["seats"])
        row_gains: dict[str, float] = json.loads(row["gains"])
        agreed = row["status"] == "agreement"
        usage: dict[str, dict[str, Any]] = json.loads(row.get("seat_usage") or "{}")
        for party, used in usage.items():
            strategy = seats.get(party, party)
            tokens[strategy] = tokens.get(strategy, 0) + used["tokens_in"] + used["tokens_out"]
            costs[strategy] = costs.get(strategy, 0.0) + (used["cost_usd"] or 0.0)
        for party, strategy in sorted(seats.items()):
            gains.setdefault(strategy, []).append(row_gains[party] if agreed else 0.0)
            agreements.setdefault(strategy, []).append(agreed)
    standings = []
    for strategy, values in gains.items():
        low, high = bootstrap_ci(values)
        standings.append(Standing(strategy, len(values), float(np.mean(agreements[strategy])),
                                  float(np.mean(values)), low, high,
                                  tokens.get(strategy, 0), round(costs.get(strategy, 0.0), 8)))
    return sorted(standings, key=lambda s: (-s.mean_gain, s.strategy))


def compare_with_golden(csv_path: Path, golden: Path) -> list[str]:
    """Differences between a run's deterministic columns and a golden CSV, readable."""
    got = {row["job"]: row for row in read_rows(csv_path)}
    try:
        expected = {row["job"]: row for row in read_rows(golden)}
    except OSError as error:
        raise TournamentError(f"{golden}: cannot read the golden file ({error})") from None
    differences = [f"missing: {job} (in {golden.name}, not produced)"
                   for job in sorted(expected.keys() - got.keys())]
    differences += [f"unexpected: {job} (produced, not in {golden.name})"
                    for job in sorted(got.keys() - expected.keys())]
    for job in sorted(expected.keys() & got.keys()):
        for column in DETERMINISTIC:
            if column not in expected[job]:
                continue  # a golden file from before the column existed
            if expected[job].get(column) != got[job].get(column):
                differences.append(f"{job}: {column} expected {expected[job].get(column)!r}, "
                                   f"got {got[job].get(column)!r}")
    return differences


def plot_leaderboard(standings: Sequence[Standing], path: Path) -> Path:
    from matplotlib.figure import Figure

    from negotiation.plots import save_png

    figure = Figure(figsize=(7, 0.6 * len(standings) + 1.5))
    ax = figure.subplots()
    names = [s.strategy for s in standings][::-1]
    means = [s.mean_gain for s in standings][::-1]
    errors = [[s.mean_gain - s.low for s in standings][::-1],
              [s.high - s.mean_gain for s in standings][::-1]]
    ax.barh(names, means, xerr=errors, color="#7fa7d8", capsize=4)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("mean gain over reservation value per seat (95% bootstrap CI)")
    figure.tight_layout()
    return save_png(figure, path)


def ensure_scenarios(config: TournamentConfig) -> None:
    for name in config.scenarios:
        try:
            load_scenario(name)
        except ScenarioError as error:
            raise TournamentError(str(error)) from None
