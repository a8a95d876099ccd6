"""The ``negotiate`` command: run negotiations, verify transcripts, manage scenarios."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import anyio
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.prompt import Prompt
from rich.table import Table
from rich.text import Text

from agents import STRATEGIES
from negotiation import render
from negotiation.analysis import SpaceAnalysis
from negotiation.engine import (
    HUMAN,
    RunResult,
    agent_specs,
    is_llm,
    new_transcript_path,
    run_scenario,
)
from negotiation.errors import InputError, NegotiationError, exit_code
from negotiation.lifecycle import SignOffError, Status, sign_off, transcript_status
from negotiation.model import Scenario
from negotiation.scenario import (
    ScenarioError,
    load_scenario,
    outcome_space_size,
    shipped_scenarios,
)
from negotiation.transcript import (
    TranscriptError,
    load_verified,
    negotiation_header,
    verify,
)
from protocols import get_protocol

app = typer.Typer(
    name="negotiate",
    help="Rehearse and study partnership negotiations between organisations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
scenarios_app = typer.Typer(help="List, validate and describe scenario files.",
                            no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")

console = Console(highlight=False)

USAGE_ERROR = 2
P = ParamSpec("P")
R = TypeVar("R")


class UsageError(InputError):
    """Bad input on the command line, reported without a traceback."""


def fail(message: str, code: int = USAGE_ERROR) -> NoReturn:
    render.error_console().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a user can fix into a message and exit code 2, never a traceback."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except NegotiationError as error:
            fail(str(error), exit_code(error))
        except MemoryError:
            fail("out of memory: the scenario is too large for this machine; use coarser "
                 "steps or fewer options", exit_code(MemoryError()))

    return wrapper


def load_prices(path: Path | None) -> dict[str, tuple[float, float]]:
    """Read ``MODEL: {input: USD/1M tokens, output: USD/1M tokens}`` from a YAML file."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return {str(model): (float(row["input"]), float(row["output"]))
                for model, row in (data or {}).items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise UsageError(f"{path}: a price table maps each model to {{input: N, output: N}} "
                         f"in US dollars per million tokens ({error})") from None


def parse_agent_overrides(values: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for value in values:
        org, sep, spec = value.partition("=")
        if not sep or not org or not spec:
            raise UsageError(f"--agent '{value}' must look like ORG=STRATEGY, "
                             "e.g. --agent vendor=tit_for_tat")
        overrides[org.strip()] = spec.strip()
    return overrides


@app.command()
@friendly_errors
def run(
    scenario_path: Annotated[str, typer.Argument(
        metavar="SCENARIO", help="A scenario file, or the name of a shipped scenario.")],
    seed: Annotated[int, typer.Option(help="Seed for every random choice.")] = 0,
    rounds: Annotated[int | None, typer.Option(
        min=1, help="Deadline in rounds (default: the scenario's).")] = None,
    agent: Annotated[list[str] | None, typer.Option(
        "--agent", metavar="ORG=STRATEGY",
        help="Choose an organisation's negotiator, e.g. vendor=tit_for_tat. Repeatable.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the transcript.")] = Path("transcripts"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q",
                                        help="Print only the outcome.")] = False,
    human: Annotated[str | None, typer.Option(
        metavar="ORG", help="Take this organisation's seat yourself, at the terminal.")] = None,
    record: Annotated[Path | None, typer.Option(
        help="LLM agents: store every request/reply pair in this file.")] = None,
    replay: Annotated[Path | None, typer.Option(
        help="LLM agents: answer from this recording, offline.")] = None,
    budget_calls: Annotated[int | None, typer.Option(
        min=1, help="LLM agents: stop the run after this many model calls.")] = None,
    budget_tokens: Annotated[int | None, typer.Option(
        min=1, help="LLM agents: stop the run after this many tokens.")] = None,
    budget_cost: Annotated[float | None, typer.Option(
        min=0, help="LLM agents: stop the run after this many US dollars (needs --prices).")
    ] = None,
    prices: Annotated[Path | None, typer.Option(
        help="YAML price table: MODEL: {input: USD per 1M tokens, output: USD per 1M}.")
    ] = None,
    driver: Annotated[str, typer.Option(
        help="graph: durable LangGraph run with SQLite checkpoints (resumable); plain: the "
             "fastest loop, nothing but the transcript.")] = "graph",
    signoff: Annotated[str, typer.Option(
        help="later: sign off with 'negotiate review' at any time; inline: the run pauses "
             "for sign-off (graph driver) and 'negotiate review' resumes it.")] = "later",
    pace: Annotated[float, typer.Option(
        min=0, help="Seconds to pause between turns, to watch a run unfold.")] = 0.0,
    protocol: Annotated[str | None, typer.Option(
        help="Override the scenario's protocol, e.g. mediated_single_text.")] = None,
) -> None:
    """Run a negotiation and write its hash-chained transcript."""
    scenario = load_scenario(scenario_path)
    if protocol is not None:
        get_protocol(protocol)  # fail now, with the list of choices, if it is unknown
        scenario = scenario.model_copy(update={"protocol": scenario.protocol.model_copy(
            update={"name": protocol})})
    overrides = parse_agent_overrides(agent or [])
    if human is not None:
        if human not in scenario.party_ids:
            raise UsageError(f"--human '{human}' is not an organisation of {scenario.id}; "
                             f"choose one of {scenario.party_ids}")
        overrides[human] = HUMAN
    if driver not in {"graph", "plain"}:
        raise UsageError(f"--driver must be graph or plain, not '{driver}'")
    if signoff not in {"later", "inline"}:
        raise UsageError(f"--signoff must be later or inline, not '{signoff}'")
    if signoff == "inline" and driver != "graph":
        raise UsageError("--signoff inline pauses a durable run: use it with --driver graph")
    if record is not None and replay is not None:
        raise UsageError("--record and --replay exclude each other: record a live run, then "
                         "replay it")
    if replay is not None and not replay.is_file():
        raise UsageError(f"--replay {replay}: no such recording")
    if budget_cost is not None and prices is None:
        raise UsageError("--budget-cost needs --prices FILE to know what a token costs")
    specs = agent_specs(scenario, overrides)
    path = new_transcript_path(out, scenario, seed)
    llm_run = None
    if any(is_llm(spec) for spec in specs.values()):
        from agents.budget import Budget
        from agents.llm import LLMRun

        if record is None and replay is None and driver == "graph":
            record = path.with_suffix(".calls.jsonl")  # so a resumed run does not pay twice
        llm_run = LLMRun(budget=Budget(max_calls=budget_calls, max_tokens=budget_tokens,
                                       max_cost=budget_cost, prices=load_prices(prices)),
                         record=record, replay=replay)
    show = live_view(scenario, seed, rounds or scenario.protocol.rounds, quiet,
                     visible={human} if human else None)

    async def negotiate() -> RunResult:
        try:
            if driver == "plain":
                return await run_scenario(scenario, seed=seed, rounds=rounds, agents=overrides,
                                          transcript=path, on_event=show, llm_run=llm_run)
            from negotiation.graph import start_run

            return await start_run(scenario, transcript=path, seed=seed, rounds=rounds,
                                   agents=overrides, signoff_inline=signoff == "inline",
                                   pace=pace, llm_run=llm_run,
                                   on_step=each_event(show), answer=answer_at_terminal)
        finally:
            if llm_run is not None:
                await llm_run.aclose()

    try:
        result = anyio.run(negotiate)
    except KeyboardInterrupt:
        resume_hint = f" Continue it with: negotiate resume {path}" if driver == "graph" else ""
        render.error_console().print(f"\n[bold yellow]Aborted.[/] {escape(str(path))} ends "
                                     "with an 'aborted' event and still verifies."
                                     f"{escape(resume_hint)}")
        raise typer.Exit(130) from None
    finish_view(scenario, result, signoff == "inline")


def live_view(scenario: Scenario, seed: int, rounds: int, quiet: bool,
              visible: set[str] | None = None) -> Callable[[dict[str, Any]], None]:
    """Print events as they happen; ``visible`` limits whose utilities are shown."""

    def show(event: dict[str, Any]) -> None:
        if event["type"] == "header" and not quiet:
            console.print(render.scenario_panel(scenario, event["agents"], seed, rounds))
        elif event["type"] in {"move", "blocked"} and not quiet:
            console.print(render.move_line(scenario, event, visible))
        elif event["type"] == "mediator_text" and not quiet:
            console.print(f"[dim]R{event['round'] + 1:>3}[/] [bold magenta]mediator[/]     "
                          f"text      {escape(render.short_terms(scenario, event['terms']))}")
        elif event["type"] == "error":
            console.print(f"[bold red]{escape(event['party'])}: {escape(event['error'])}[/]")

    return show


def answer_at_terminal(payload: Any, session: Any) -> Any:
    """Answer a paused durable run: a human seat's turn is asked here; a sign-off pause is
    left for 'negotiate review'."""
    if isinstance(payload, dict) and payload.get("kind") == "human_turn":
        from agents.human import HumanAgent

        action = HumanAgent(console).prompt(session.current_view())
        return action.model_dump(mode="json", exclude_none=True)
    return None


def each_event(show: Callable[[dict[str, Any]], None]) -> Callable[[Any], None]:
    """A graph-step callback that shows each event the step streamed."""

    def on_step(step: Any) -> None:
        for event in step.get("new_events", []):
            show(event)

    return on_step


def finish_view(scenario: Scenario, result: RunResult, inline_signoff: bool) -> None:
    console.print()
    outcome = next(e for e in reversed(result.transcript.events) if e["type"] == "outcome")
    console.print(render.outcome_view(scenario, outcome, result.agents))
    console.print(f"\nTranscript: [bold]{escape(str(result.path))}[/]  (check it with "
                  f"[cyan]negotiate verify {escape(str(result.path))}[/])")
    if inline_signoff and result.status == "agreement":
        console.print(f"[bold yellow]Paused for sign-off.[/] Decide with [cyan]negotiate "
                      f"review {escape(str(result.path))}[/]")
    elif result.status == "agreement":
        console.print(f"The agreement is [bold]pending sign-off[/]: review it with "
                      f"[cyan]negotiate review {escape(str(result.path))}[/]")


@app.command()
@friendly_errors
def resume(
    transcript: Annotated[str, typer.Argument(
        metavar="RUN", help="The interrupted run: its transcript file or its run id.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the outcome.")
                     ] = False,
    pace: Annotated[float, typer.Option(min=0, help="Seconds to pause between turns.")] = 0.0,
) -> None:
    """Continue an interrupted run (Ctrl-C, crash, killed process) where it stopped."""
    path = Path(transcript)
    if not path.exists() and (Path("transcripts") / f"{transcript}.jsonl").exists():
        path = Path("transcripts") / f"{transcript}.jsonl"
    if not path.exists():
        raise UsageError(f"{transcript}: no such run; give a transcript path or a run id from "
                         "'negotiate transcripts'")
    header = load_header(path)
    scenario = Scenario.model_validate(header["scenario"])
    show = live_view(scenario, header["seed"], header["protocol"]["rounds"], quiet)
    from negotiation.graph import resume_run

    result = anyio.run(lambda: resume_run(
        path, pace=pace, answer=answer_at_terminal,
        on_step=each_event(show),
        on_resumed=lambda n: console.print(f"[bold]Resumed[/] after {n} recorded events.")))
    finish_view(scenario, result, header.get("options", {}).get("signoff") == "inline")


def load_header(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            header = json.loads(handle.readline())
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"{path}: not a transcript ({error})") from None
    if not isinstance(header, dict) or header.get("type") != "header":
        raise UsageError(f"{path}: not a transcript (no header)")
    return negotiation_header([header], path)


@app.command(name="verify")
@friendly_errors
def verify_command(
    transcript: Annotated[Path, typer.Argument(
        help="A transcript (.jsonl) or a campaign folder to check.")],
) -> None:
    """Re-compute a transcript's hash chain; exit 1 and name the first bad line if tampered.
    Given a campaign folder, check every stage's transcript and the links between them."""
    if transcript.is_dir():
        from negotiation.campaign import verify_campaign

        problems = verify_campaign(transcript)
        for problem in problems:
            console.print(f"[bold red]TAMPERED[/] {escape(problem)}")
        if problems:
            raise typer.Exit(1)
        console.print(f"[bold green]OK[/] {transcript}: every stage verified and linked")
        return
    result = verify(transcript)
    if not result.ok:
        console.print(f"[bold red]TAMPERED[/] {transcript}: {escape(result.reason)}")
        raise typer.Exit(1)
    last = result.events[-1]
    note = "" if last["type"] in {"outcome", "signoff"} else \
        "  [yellow](no outcome yet: the run is in progress or was interrupted)[/]"
    console.print(f"[bold green]OK[/] {transcript}: {len(result.events)} events, "
                  f"head {result.head_hash[:16]}…{note}")


@app.command()
@friendly_errors
def analyze(
    scenario_path: Annotated[str, typer.Argument(
        metavar="SCENARIO", help="A scenario file, or the name of a shipped scenario.")],
    plot: Annotated[Path | None, typer.Option(help="Draw the utility space to this PNG.")
                    ] = None,
) -> None:
    """Analyse a scenario: zone of possible agreement, Pareto frontier, bargaining points."""
    scenario = load_scenario(scenario_path)
    analysis = SpaceAnalysis(scenario)
    console.print(render.analysis_view(analysis))
    if plot is not None:
        from negotiation.plots import plot_space

        plot_space(analysis, plot)
        console.print(f"Plot: [bold]{escape(str(plot))}[/]")


@app.command()
@friendly_errors
def campaign(
    campaign_path: Annotated[Path, typer.Argument(metavar="FILE",
                                                  help="Campaign file (YAML).")],
    seed: Annotated[int | None, typer.Option(help="Seed (default: the campaign's).")] = None,
    agent: Annotated[list[str] | None, typer.Option(
        "--agent", metavar="ORG=STRATEGY",
        help="An organisation's negotiator in every stage. Repeatable.")] = None,
    out: Annotated[Path, typer.Option(help="Folder in which the campaign's folder is made.")
                   ] = Path("transcripts"),
    plot: Annotated[bool, typer.Option(help="Draw value and trust per stage to summary.png."
                                       )] = True,
    replay: Annotated[Path | None, typer.Option(
        help="LLM agents: answer from an earlier campaign's llm-calls.jsonl, offline.")
    ] = None,
) -> None:
    """Run a campaign (pilot → evaluation → renegotiation → scale-up): one linked
    transcript per stage, a summary of terms and trust, and a plot.  LLM replies are
    recorded to llm-calls.jsonl beside the transcripts."""
    from negotiation.campaign import LLM_CALLS, load_campaign, read_manifest, run_campaign

    loaded = load_campaign(campaign_path)
    overrides = parse_agent_overrides(agent or [])
    if replay is not None and not replay.is_file():
        raise UsageError(f"--replay {replay}: no such recording")

    stages = len(loaded.campaign.stages)
    console.print(f"[bold]{escape(loaded.campaign.title)}[/]: {stages} stages")
    with console.status("starting") as status:
        current = {"stage": ""}

        def progress(stage: Any) -> None:
            console.print(f"  {stage.index + 1}. [bold]{escape(stage.id)}[/] "
                          f"({stage.kind}): {escape(stage.reason)}")

        def on_event(event: dict[str, Any]) -> None:
            if event["type"] == "header":
                link = event["options"]["campaign"]
                current["stage"] = f"stage {link['index'] + 1}/{stages} {link['stage']}"
            elif event["type"] in {"move", "blocked"}:
                status.update(f"{escape(current['stage'])}: round {event['round'] + 1}, "
                              f"{escape(event['party'])} {event['action']['kind']}")
            elif event["type"] == "error":
                console.print(f"[bold red]{escape(event['party'])}: "
                              f"{escape(event['error'])}[/]")

        async def run_all() -> Any:
            llm_run = None
            if replay is not None:
                from agents.llm import LLMRun

                llm_run = LLMRun(replay=replay)
            try:
                return await run_campaign(loaded, out, seed=seed, agents=overrides,
                                          on_stage=progress, llm_run=llm_run,
                                          on_event=on_event)
            finally:
                if llm_run is not None:
                    await llm_run.aclose()

        result = anyio.run(run_all)
    manifest = read_manifest(result.folder)
    console.print(render.campaign_view(manifest))
    if plot:
        from negotiation.plots import plot_campaign

        chart = plot_campaign(manifest, result.folder / "summary.png")
        console.print(f"Plot: [bold]{escape(str(chart))}[/]")
    console.print(f"Transcripts: [bold]{escape(str(result.folder))}[/] (check the links with "
                  "negotiate verify FOLDER; each agreement awaits negotiate review FILE)")
    if (result.folder / LLM_CALLS).exists():
        console.print(f"LLM replies: [bold]{escape(str(result.folder / LLM_CALLS))}[/] "
                      "(run again offline with --replay)")


@app.command(name="map")
@friendly_errors
def map_command(
    scenario_path: Annotated[str, typer.Argument(
        metavar="SCENARIO", help="A scenario with an 'ecosystem:' block.")],
    top: Annotated[int, typer.Option(min=1, help="How many coalitions to show.")] = 5,
    png: Annotated[Path | None, typer.Option(help="Draw the ecosystem graph to this PNG.")
                   ] = None,
    mermaid: Annotated[Path | None, typer.Option(help="Write the graph as Mermaid.")] = None,
) -> None:
    """Map an ecosystem: complementarity, alignment, best coalitions and their Shapley split."""
    from negotiation.ecosystem import EcosystemError, EcosystemMap

    scenario = load_scenario(scenario_path)
    if scenario.ecosystem is None:
        raise UsageError(f"{scenario_path} has no 'ecosystem:' block to map")
    try:
        eco = EcosystemMap(scenario.ecosystem)
    except EcosystemError as error:
        raise UsageError(str(error)) from None
    actors = list(eco.actors.values())
    pairs = Table(title="Pairs: complementarity (needs met) and alignment (shared values)",
                  title_justify="left")
    pairs.add_column("")
    for actor in actors:
        pairs.add_column(actor.id, justify="center")
    for a in actors:
        pairs.add_row(a.id, *("—" if a is b else
                              f"{eco.complementarity(a, b)} / {eco.alignment(a, b):.2f}"
                              for b in actors))
    console.print(pairs)
    ranked = Table(title=f"Best coalitions by net surplus (top {top}); dependency risk = "
                         "capabilities only one member holds", title_justify="left")
    for column in ("Members", "Value", "Surplus", "Overhead", "Net", "Shapley split",
                   "Dependency risk"):
        ranked.add_column(column, justify="right" if column in
                          {"Value", "Surplus", "Overhead", "Net"} else "left")
    for report_ in eco.coalitions[:top]:
        split = ", ".join(f"{m} {v:.1f}" for m, v in report_.shapley.items())
        ranked.add_row(" + ".join(report_.members), f"{report_.value:.1f}",
                       f"{report_.surplus:.1f}", f"{report_.overhead:.1f}",
                       Text(f"{report_.net:+.1f}", style="green" if report_.net > 0 else "red"),
                       split, Text("\n".join(report_.dependencies) or "none",
                                   style="yellow" if report_.dependencies else "dim"))
    console.print(ranked)
    if eco.coalitions and eco.coalitions[0].net <= 0:
        console.print("[bold red]No coalition creates more value than its coordination "
                      "costs: a partnership is not justified here.[/]")
    if png is not None:
        eco.plot(png)
        console.print(f"Graph: [bold]{escape(str(png))}[/]")
    if mermaid is not None:
        mermaid.write_text(eco.mermaid(), encoding="utf-8")
        console.print(f"Mermaid: [bold]{escape(str(mermaid))}[/]")


@app.command()
@friendly_errors
def report(
    transcript: Annotated[Path, typer.Argument(help="A transcript (.jsonl).")],
    plot: Annotated[Path | None, typer.Option(
        help="Draw each party's offers over time in utility space to this PNG.")] = None,
) -> None:
    """Summarise a run from its transcript alone; optionally plot the offers."""
    events = load_verified(transcript)
    scenario = Scenario.model_validate(negotiation_header(events, transcript)["scenario"])
    outcome = events[-1]
    if outcome["type"] != "outcome":
        raise UsageError(f"{transcript} has no outcome yet (the run is in progress or was "
                         "interrupted)")
    header = events[0]
    console.print(render.scenario_panel(scenario, header["agents"], header["seed"],
                                        header["protocol"]["rounds"]))
    moves = [e for e in events if e["type"] in {"move", "blocked"}]
    blocked = sum(e["type"] == "blocked" for e in moves)
    console.print(f"{len(moves)} moves, {blocked} blocked by the referee")
    console.print(render.outcome_view(scenario, outcome, header["agents"]))
    if plot is not None:
        from negotiation.plots import plot_trace

        proposals = [e for e in moves if e["type"] == "move" and "utilities" in e]
        plot_trace(SpaceAnalysis(scenario), proposals, outcome.get("utilities"), plot)
        console.print(f"Plot: [bold]{escape(str(plot))}[/]")


@app.command()
@friendly_errors
def review(
    transcript: Annotated[Path, typer.Argument(help="A transcript (.jsonl) to review.")],
    approve: Annotated[bool | None, typer.Option(
        "--approve/--reject", help="Decide without prompting (for scripts).")] = None,
    reviewer: Annotated[str | None, typer.Option(help="Your name, recorded in the "
                                                     "sign-off.")] = None,
    comment: Annotated[str, typer.Option(help="Why you approve or reject.")] = "",
) -> None:
    """Review a run and sign it off: approve or reject its agreement."""
    status, events = transcript_status(transcript)
    if status is Status.TAMPERED:
        raise SignOffError(f"{transcript} is TAMPERED ({verify(transcript).reason}); it cannot "
                           "be reviewed or signed")
    header = negotiation_header(events, transcript)
    scenario = Scenario.model_validate(header["scenario"])
    console.print(render.scenario_panel(scenario, header["agents"], header["seed"],
                                        header["protocol"]["rounds"]))
    console.print(render.profiles_view(scenario))
    console.print(render.timeline_view(scenario, events))
    outcome = next((e for e in events if e["type"] == "outcome"), None)
    if outcome is not None:
        console.print(render.outcome_view(scenario, outcome, header["agents"]))
        if "fairness" in outcome:
            console.print(render.fairness_view(outcome["fairness"]))
    console.print(f"\nStatus: [bold]{status.value}[/]")
    if status is not Status.PENDING:
        if approve is not None:
            sign_off(transcript, approve=approve, reviewer=reviewer or "", comment=comment)
        return
    if approve is None:
        if not sys.stdin.isatty():
            console.print("Not signed: pass --approve or --reject with --reviewer NAME "
                          "(and --comment TEXT) to decide.")
            return
        approve = Prompt.ask("Decision", choices=["approve", "reject"]) == "approve"
        reviewer = reviewer or Prompt.ask("Your name")
        comment = comment or Prompt.ask("Comment", default="")
    if (events[0].get("options", {}).get("signoff") == "inline"
            and (reviewer or "").strip()):
        from negotiation.graph import resume_signoff

        if anyio.run(lambda: resume_signoff(transcript, approve=bool(approve),
                                            reviewer=reviewer or "", comment=comment)):
            event = load_verified(transcript)[-1]
            console.print(f"[bold]{event['status'].upper()}[/] by "
                          f"{escape(event['reviewer'])}; the paused run is resumed and its "
                          f"sign-off recorded as event {event['seq']}.")
            return
    event = sign_off(transcript, approve=approve, reviewer=reviewer or "", comment=comment)
    console.print(f"[bold]{event['status'].upper()}[/] by {escape(event['reviewer'])}; "
                  f"sign-off recorded as event {event['seq']}.")


@app.command(name="transcripts")
@friendly_errors
def transcripts_command(
    folder: Annotated[Path, typer.Argument(help="Folder of transcripts.")] = Path("transcripts"),
) -> None:
    """List runs with their scenario, date, parties, outcome and sign-off status."""
    files = sorted(p for p in folder.glob("*.jsonl") if not p.name.endswith(".calls.jsonl"))
    if not files:
        console.print(f"No transcripts in {escape(str(folder))}.")
        return
    table = Table(title=f"Transcripts in {folder}", title_justify="left")
    for column in ("File", "Scenario", "Date", "Parties", "Outcome", "Status"):
        table.add_column(column, overflow="fold")
    styles = {Status.RATIFIED: "bold green", Status.REJECTED: "red",
              Status.PENDING: "yellow", Status.TAMPERED: "bold white on red"}
    for path in files:
        try:
            status, events = transcript_status(path)
        except TranscriptError as error:
            table.add_row(path.name, "", "", "", escape(str(error)), Text("TAMPERED",
                                                                          style="bold red"))
            continue
        header = events[0] if events else {}
        outcome = next((e for e in events if e["type"] == "outcome"), None)
        result = "—" if outcome is None else (
            f"agreement in round {outcome['agreement']['round'] + 1}"
            if outcome["status"] == "agreement" else outcome["reason"])
        table.add_row(path.name, header.get("scenario_id", "?"),
                      header.get("wall", {}).get("at", "?")[:16].replace("T", " "),
                      ", ".join(header.get("parties", [])), result,
                      Text(status.value, style=styles.get(status, "")))
    console.print(table)


@app.command()
@friendly_errors
def charter(
    transcript: Annotated[Path, typer.Argument(help="A transcript with an agreement.")],
    format_: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    out: Annotated[Path | None, typer.Option(help="File to write (default: next to the "
                                                  "transcript).")] = None,
) -> None:
    """Write the partnership charter of an agreement (Markdown or one self-contained HTML)."""
    if format_ not in {"md", "html"}:
        raise UsageError(f"--format must be md or html, not '{format_}'")
    from negotiation.charter import write_charter

    written = write_charter(transcript, "html" if format_ == "html" else "md", out)
    console.print(f"Charter: [bold]{escape(str(written))}[/]")


@app.command()
@friendly_errors
def tournament(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG",
                                                help="Tournament file (YAML).")],
    out: Annotated[Path | None, typer.Option(
        help="Result CSV (a .parquet beside it); default: results/<config>.csv")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes (default: CPUs).")
                       ] = None,
    expect: Annotated[Path | None, typer.Option(
        help="Golden CSV: exit 1 with a readable diff if deterministic results changed.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Leaderboard chart (PNG).")] = None,
    parquet: Annotated[bool, typer.Option(help="Also write Parquet.")] = True,
    backend: Annotated[str, typer.Option(
        help="process: local worker processes; ray: Ray tasks (pip install '.[ray]').")
    ] = "process",
    address: Annotated[str | None, typer.Option(
        help="Ray cluster address (default: start a local Ray instance).")] = None,
    concurrency: Annotated[int, typer.Option(
        min=1, help="Negotiations at once per worker (raise it for LLM agents).")] = 1,
) -> None:
    """Run scenarios × line-ups × seat assignments × seeds; print a leaderboard."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from negotiation import tournament as t

    try:
        config = t.load_config(config_path)
        t.ensure_scenarios(config)
        csv_path = out or Path("results") / f"{config_path.stem}.csv"
        all_jobs = t.jobs(config)
        done = t.done_jobs(csv_path)
        skipped = sum(job.key in done for job in all_jobs)
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("negotiating", total=len(all_jobs), completed=skipped)
            ran = t.run_tournament(config, csv_path, workers=workers, parquet=parquet,
                                   progress=lambda n, _: bar.update(task,
                                                                    completed=skipped + n),
                                   backend=backend, address=address,
                                   concurrency=concurrency)
        console.print(f"{ran} negotiations run, {skipped} already done; results in "
                      f"[bold]{escape(str(csv_path))}[/]")
        standings = t.leaderboard(t.read_rows(csv_path))
        table = Table(title="Leaderboard: mean gain over reservation value per seat",
                      title_justify="left")
        for column in ("Strategy", "Seats", "Agreements", "Mean gain", "95% CI"):
            table.add_column(column, justify="left" if column == "Strategy" else "right")
        for s in standings:
            table.add_row(s.strategy, str(s.negotiations), f"{s.agreement_rate:.0%}",
                          f"{s.mean_gain:+.3f}", f"[{s.low:+.3f}, {s.high:+.3f}]")
        console.print(table)
        if plot is not None:
            t.plot_leaderboard(standings, plot)
            console.print(f"Plot: [bold]{escape(str(plot))}[/]")
        if expect is not None:
            differences = t.compare_with_golden(csv_path, expect)
            if differences:
                console.print(f"[bold red]{len(differences)} difference(s) from "
                              f"{escape(str(expect))}:[/]")
                for line in differences[:50]:
                    console.print(f"  {escape(line)}")
                raise typer.Exit(1)
            console.print(f"[bold green]Matches {escape(str(expect))}[/]")
    except t.TournamentError as error:
        fail(str(error))


@scenarios_app.command()
def generate(
    parties: Annotated[int, typer.Option(min=2, help="Number of organisations.")] = 2,
    issues: Annotated[int, typer.Option(min=1, help="Number of issues.")] = 3,
    values: Annotated[int, typer.Option(min=2, help="Options per issue.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Generate a random valid scenario (YAML) for stress tests and research."""
    from negotiation.generate import random_scenario
    from negotiation.scenario import scenario_from_data

    data = random_scenario(parties, issues, values, seed)
    scenario_from_data(data, "generated")  # valid by construction; checked all the same
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {escape(str(out))}")


@scenarios_app.command(name="list")
def scenarios_list() -> None:
    """List the scenarios shipped with the sandbox."""
    table = Table(title="Shipped scenarios", title_justify="left")
    for column in ("Name", "Title", "Parties", "Issues", "Outcomes"):
        table.add_column(column, no_wrap=column == "Name",
                         justify="right" if column in {"Issues", "Outcomes"} else "left")
    for path in shipped_scenarios():
        try:
            scenario = load_scenario(path)
        except ScenarioError as error:
            table.add_row(path.stem, f"[red]invalid: {error.problems[0]}[/]", "", "", "")
            continue
        table.add_row(path.stem, scenario.title, ", ".join(scenario.party_ids),
                      str(len(scenario.issues)), f"{outcome_space_size(scenario):,}")
    console.print(table)


@scenarios_app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Scenario files to check.")],
) -> None:
    """Check scenario files; exit 2 if any is invalid, naming the file, field and fix."""
    failed = 0
    for path in files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as error:
            failed += 1
            render.error_console().print(f"[bold red]invalid[/] {escape(str(error))}",
                                         soft_wrap=True)
            continue
        console.print(f"[bold green]valid[/] {path}: {escape(scenario.title)} "
                      f"({outcome_space_size(scenario):,} possible agreements)")
    if failed:
        raise typer.Exit(USAGE_ERROR)


def scenario_json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


@scenarios_app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")
                   ] = None,
) -> None:
    """Print the JSON Schema of scenario files (generated from the models)."""
    text = json.dumps(scenario_json_schema(), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


agents_app = typer.Typer(help="Negotiation strategies: built in and installed.",
                         no_args_is_help=True)
protocols_app = typer.Typer(help="Negotiation protocols: built in and installed.",
                            no_args_is_help=True)
guardrails_app = typer.Typer(help="Guardrail checks: built in and installed.",
                             no_args_is_help=True)
app.add_typer(agents_app, name="agents")
app.add_typer(protocols_app, name="protocols")
app.add_typer(guardrails_app, name="guardrails")


def _listing(title: str, rows: list[tuple[str, str, str]]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("Name", style="bold", no_wrap=True)
    table.add_column("Source")
    table.add_column("Description")
    for name, source, description in rows:
        table.add_row(name, source, description)
    console.print(table)


@agents_app.command(name="list")
def agents_list() -> None:
    """List the strategies: built in, installed (entry points) and special seats."""
    from negotiation.plugins import AGENT_GROUP, installed

    rows = [(s.name, "built in", s.description) for s in STRATEGIES.values()]
    rows.append(("llm:MODEL", "built in", "A language model through any OpenAI-compatible "
                                          "endpoint ($OPENAI_BASE_URL, $OPENAI_API_KEY)."))
    rows.append(("human", "built in", "You, at this terminal (same as --human ORG)."))
    rows += [(e.name, e.value, e.description()) for e in installed(AGENT_GROUP).values()]
    _listing("Strategies (or any import path: --agent ORG=mypkg.module:Class)", rows)


@protocols_app.command(name="list")
def protocols_list() -> None:
    """List the protocols: built in and installed (entry points)."""
    from negotiation.plugins import PROTOCOL_GROUP, installed
    from protocols import PROTOCOLS

    rows = [(name, "built in", p.description) for name, p in PROTOCOLS.items()]
    rows += [(e.name, e.value, e.description()) for e in installed(PROTOCOL_GROUP).values()]
    _listing("Protocols (or any import path in the scenario's protocol.name)", rows)


@guardrails_app.command(name="list")
def guardrails_list() -> None:
    """List the guardrail checks: built in and installed (entry points)."""
    from negotiation.plugins import GUARDRAIL_GROUP, installed

    rows = [
        ("validity", "built in", "Every issue set, values in domain, splits summing to 100."),
        ("red_lines", "built in", "Each organisation's declarative constraints."),
        ("individual_rationality", "built in", "Each party's utility ≥ its reservation."),
        ("pareto", "built in", "Whether a feasible outcome dominates; distance to frontier."),
        ("fairness", "built in", "Nash ratio, Kalai–Smorodinsky distance, egalitarian gain, "
                                 "contribution or Shapley share gap."),
        ("accountability", "built in", "A known proposer and a rationale on every proposal."),
        ("injection", "built in", "Instruction-like text in messages from other parties."),
    ]
    rows += [(e.name, e.value, e.description()) for e in installed(GUARDRAIL_GROUP).values()]
    _listing("Guardrail checks (custom ones: guardrails.custom in the scenario)", rows)


def main() -> None:
    app()
