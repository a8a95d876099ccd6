"""The notebook API: synchronous runs and tournaments, with pandas views of what happened.

``run`` and ``tournament`` block until they are done, also inside a running event loop (a
Jupyter kernel runs one): there the work goes to a worker thread with its own loop, so a
notebook cell can simply call ``run(...)``.  ``arun`` is the same run for async code.
pandas is imported only by the methods that return a DataFrame; without it they say what
to install.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from negotiation.engine import run_scenario
from negotiation.errors import InputError
from negotiation.events import EventType, Outcome
from negotiation.model import Scenario
from negotiation.scenario import load_scenario
from negotiation.session import RunResult as EngineResult
from negotiation.utility import OutcomeSpace, utility_functions

if TYPE_CHECKING:
    import pandas

    from negotiation.tournament import TournamentConfig

PANDAS = "pip install pandas (or: pip install 'partnership-negotiation[notebook]')"

T = TypeVar("T")


class PandasMissing(InputError):
    """A DataFrame was asked for and pandas is not installed."""


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise PandasMissing(f"DataFrames need pandas, which is not installed: {PANDAS}"
                            ) from None
    return pandas


def off_the_loop(work: Callable[[], T]) -> T:
    """Call ``work`` (which may start an event loop of its own) from synchronous code: in
    this thread when no event loop runs here, else in a worker thread (Jupyter's kernel runs
    a loop, and a second one cannot start in its thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="negotiation") as pool:
        return pool.submit(work).result()


@dataclass
class RunResult(EngineResult):
    """How a run ended (``status``, ``reason``, ``rounds``, ``agreement``, ``utilities``,
    ``path``), with its typed outcome, the fairness report and DataFrame views."""

    scenario: Scenario | None = None

    @classmethod
    def of(cls, result: EngineResult, scenario: Scenario) -> RunResult:
        return cls(**{f.name: getattr(result, f.name) for f in fields(EngineResult)},
                   scenario=scenario)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every recorded event, as written to the transcript."""
        return list(self.transcript.events)

    @property
    def outcome(self) -> Outcome | None:
        """The outcome event: status, reason, verdict, fairness, accountability."""
        return self.transcript.outcome

    @property
    def fairness(self) -> dict[str, Any] | None:
        """The referee's fairness report of the agreement (``None`` without one)."""
        outcome = self.outcome
        return None if outcome is None else outcome.fairness

    @property
    def transcript_path(self) -> Path | None:
        """Where the transcript was written (``None``: kept in memory)."""
        return self.path

    def events_frame(self) -> pandas.DataFrame:
        """One row per event: ``seq``, ``type``, ``round``, ``party``, ``kind`` (the move),
        ``terms``, ``rationale``, ``verdict`` (the referee's level) and the ``event``."""
        pd = _pandas()
        rows = []
        for event in self.transcript.events:
            action = event.get("action") or {}
            rows.append({
                "seq": event["seq"], "type": event["type"], "round": event.get("round"),
                "party": event.get("party"), "kind": action.get("kind"),
                "terms": (action.get("offer") or {}).get("terms", event.get("terms")),
                "rationale": action.get("rationale"),
                "verdict": (event.get("verdict") or {}).get("level"),
                "event": event,
            })
        return pd.DataFrame(rows, columns=["seq", "type", "round", "party", "kind", "terms",
                                           "rationale", "verdict", "event"])

    def offers_frame(self) -> pandas.DataFrame:
        """One row per proposal, delivered or blocked: ``seq``, ``round``, ``turn``,
        ``time`` (share of the deadline used, as agents see it), ``party``, ``blocked``,
        one column per issue and ``utility_<org>`` for every organisation."""
        pd = _pandas()
        header = self.transcript.events[0]
        parties: list[str] = list(header["parties"])
        max_rounds = int(header["protocol"]["rounds"])
        scenario = self.scenario
        functions = utility_functions(scenario) if scenario is not None else {}
        space = OutcomeSpace.of(scenario) if scenario is not None else None
        issue_ids = [issue.id for issue in scenario.issues] if scenario is not None else []
        rows = []
        for event in self.transcript.events:
            action = event.get("action") or {}
            if event["type"] not in (EventType.MOVE, EventType.BLOCKED) or \
                    action.get("kind") != "propose":
                continue
            terms = action["offer"]["terms"]
            turn = parties.index(event["party"])
            row: dict[str, Any] = {
                "seq": event["seq"], "round": event["round"], "turn": turn,
                "time": (event["round"] + turn / len(parties)) / max_rounds,
                "party": event["party"], "blocked": event["type"] == EventType.BLOCKED,
            }
            for issue_id in issue_ids or sorted(terms):
                value = terms.get(issue_id)
                row[issue_id] = json.dumps(value) if isinstance(value, dict) else value
            utilities = event.get("utilities")
            if utilities is None and space is not None:
                outcome = space.index_of(terms)
                utilities = {org: fn.of_outcome(outcome) for org, fn in functions.items()}
            for org in parties:
                row[f"utility_{org}"] = (utilities or {}).get(org)
            rows.append(row)
        columns = ["seq", "round", "turn", "time", "party", "blocked", *issue_ids,
                   *(f"utility_{org}" for org in parties)]
        return pd.DataFrame(rows, columns=columns if issue_ids else None)


def _scenario(scenario: Scenario | str | Path) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


async def arun(scenario: Scenario | str | Path, *, agents: Mapping[str, str] | None = None,
               seed: int = 0, **options: Any) -> RunResult:
    """One negotiation of ``scenario`` (a ``Scenario``, a shipped name or a file), with
    ``agents`` overriding organisations' strategies (``{"vendor": "negmas:MiCRONegotiator"}``)
    and ``options`` passed to :func:`negotiation.engine.run_scenario` (``rounds``,
    ``transcript``, ``out_dir``, ``llm``, ``on_event`` …)."""
    loaded = _scenario(scenario)
    result = await run_scenario(loaded, seed=seed, agents=agents, **options)
    return RunResult.of(result, loaded)


def run(scenario: Scenario | str | Path, *, agents: Mapping[str, str] | None = None,
        seed: int = 0, **options: Any) -> RunResult:
    """:func:`arun`, blocking until the run ends — also in a notebook (see the module)."""
    loaded = _scenario(scenario)  # a bad file is refused here, in the caller's thread
    return off_the_loop(lambda: anyio.run(lambda: arun(loaded, agents=agents, seed=seed,
                                                       **options)))


def tournament(config: TournamentConfig | Mapping[str, Any] | str | Path, *,
               results: Path | None = None, workers: int = 1,
               **options: Any) -> pandas.DataFrame:
    """Run a tournament (a ``TournamentConfig``, its YAML file, or the same as a dict) and
    return its rows as a DataFrame, one per negotiation.  Rows go to ``results`` (a CSV
    file; rerunning skips the jobs already in it) or to a temporary file; ``options`` go
    to :func:`negotiation.tournament.run_tournament` (``backend``, ``concurrency`` …)."""
    from negotiation.tournament import load_config, run_tournament

    pd = _pandas()
    loaded = load_config(Path(config)) if isinstance(config, (str, Path)) else _config(config)
    with tempfile.TemporaryDirectory(prefix="negotiation-tournament-") as scratch:
        csv_path = results or Path(scratch) / "results.csv"
        off_the_loop(lambda: run_tournament(loaded, csv_path, workers=workers, parquet=False,
                                            **options))
        frame = pd.read_csv(csv_path)
    for column in ("seats", "utilities", "gains"):
        frame[column] = frame[column].map(json.loads)
    return frame


def _config(config: TournamentConfig | Mapping[str, Any]) -> TournamentConfig:
    """A tournament given in code, checked as a file would be (strategies must exist)."""
    from pydantic import ValidationError

    from negotiation.registry import strategy_problem
    from negotiation.tournament import TournamentConfig, TournamentError

    if not isinstance(config, TournamentConfig):
        try:
            config = TournamentConfig.model_validate(dict(config))
        except ValidationError as error:
            raise TournamentError(f"tournament: {error}") from None
    named = [*config.strategies, *(spec for lineup in config.lineups for spec in lineup)]
    problems = [problem for spec in named if (problem := strategy_problem(spec)) is not None]
    if problems:
        raise TournamentError("tournament: " + "; ".join(problems))
    return config
