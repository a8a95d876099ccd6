"""Studying scenarios and strategies: ``analyze``, ``campaign``, ``map``, ``tournament``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from negotiation import files
from negotiation.cli.common import (
    UsageError,
    console,
    error_console,
    fail,
    load_prices,
    parse_agent_overrides,
)
from negotiation.cli.output import JsonFlag, emit
from negotiation.safe_text import for_terminal, plain


def analyze(
    scenario_path: Annotated[str, typer.Argument(
        metavar="SCENARIO", help="A scenario file, or the name of a shipped scenario.")],
    plot: Annotated[Path | None, typer.Option(help="Draw the utility space to this PNG.")
                    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Analyse a scenario: zone of possible agreement, Pareto frontier, bargaining points."""
    from negotiation import render
    from negotiation.analysis import SpaceAnalysis
    from negotiation.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    analysis = SpaceAnalysis(scenario)
    if as_json:
        from negotiation.cli.output import analysis_json

        emit({**analysis_json(analysis), "plot": None if plot is None else str(plot)})
    else:
        console.print(render.analysis_view(analysis))
    if plot is not None:
        from negotiation.plots import plot_space

        plot_space(analysis, plot)
        (error_console() if as_json else console).print(
            f"Plot: [bold]{for_terminal(str(plot))}[/]")



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
        help="LLM agents: answer from an earlier campaign's llm-calls.jsonl, offline; "
             "refused when a stage's scenario, seed or agents differ from the recording's.")
    ] = None,
    replay_anyway: Annotated[bool, typer.Option(
        "--replay-anyway", help="Replay even a recording made with other stages, seeds or "
                                "agents (requests it lacks fail the stage).")] = False,
) -> None:
    """Run a campaign (pilot → evaluation → renegotiation → scale-up): one linked
    transcript per stage, a summary of terms and trust, and a plot.  LLM replies are
    recorded to llm-calls.jsonl beside the transcripts."""
    import anyio

    from negotiation import render
    from negotiation.campaign import LLM_CALLS, load_campaign, read_manifest, run_campaign
    from negotiation.events import TURNS, EventType

    loaded = load_campaign(campaign_path)
    overrides = parse_agent_overrides(agent or [])
    if replay is not None and not replay.is_file():
        raise UsageError(f"--replay {replay}: no such recording")

    stages = len(loaded.campaign.stages)
    console.print(f"[bold]{for_terminal(loaded.campaign.title)}[/]: {stages} stages")
    with console.status("starting") as status:
        current = {"stage": ""}

        def progress(stage: Any) -> None:
            console.print(f"  {stage.index + 1}. [bold]{for_terminal(stage.id)}[/] "
                          f"({stage.kind}): {for_terminal(stage.reason, one_line=True)}")

        def on_event(event: dict[str, Any]) -> None:
            if event["type"] == EventType.HEADER:
                link = event["options"]["campaign"]
                current["stage"] = f"stage {link['index'] + 1}/{stages} {link['stage']}"
            elif event["type"] in TURNS:
                status.update(f"{for_terminal(current['stage'], one_line=True)}: round "
                              f"{event['round'] + 1}, {for_terminal(event['party'])} "
                              f"{event['action']['kind']}")
            elif event["type"] == EventType.ERROR:
                console.print(f"[bold red]{for_terminal(event['party'], one_line=True)}: "
                              f"{for_terminal(event['error'], one_line=True)}[/]")

        async def run_all() -> Any:
            llm_run = None
            if replay is not None:
                from negotiation.engine import LLMOptions, new_llm_run

                llm_run = new_llm_run(LLMOptions(replay=replay, replay_anyway=replay_anyway))
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
        console.print(f"Plot: [bold]{for_terminal(str(chart))}[/]")
    console.print(f"Transcripts: [bold]{for_terminal(str(result.folder))}[/] (check the links with "
                  "negotiate verify FOLDER; each agreement awaits negotiate review FILE)")
    if (result.folder / LLM_CALLS).exists():
        console.print(f"LLM replies: [bold]{for_terminal(str(result.folder / LLM_CALLS))}[/] "
                      "(run again offline with --replay)")



def map_command(
    scenario_path: Annotated[str, typer.Argument(
        metavar="SCENARIO", help="A scenario with an 'ecosystem:' block.")],
    top: Annotated[int, typer.Option(min=1, help="How many coalitions to show.")] = 5,
    png: Annotated[Path | None, typer.Option(help="Draw the ecosystem graph to this PNG.")
                   ] = None,
    mermaid: Annotated[Path | None, typer.Option(help="Write the graph as Mermaid.")] = None,
) -> None:
    """Map an ecosystem: complementarity, alignment, best coalitions and their Shapley split."""
    from rich.table import Table
    from rich.text import Text

    from negotiation.ecosystem import EcosystemError, EcosystemMap
    from negotiation.scenario import load_scenario

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
        pairs.add_column(for_terminal(actor.id), justify="center")
    for a in actors:
        pairs.add_row(for_terminal(a.id), *("—" if a is b else
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
        split = for_terminal(", ".join(f"{m} {v:.1f}" for m, v in report_.shapley.items()))
        ranked.add_row(for_terminal(" + ".join(report_.members)), f"{report_.value:.1f}",
                       f"{report_.surplus:.1f}", f"{report_.overhead:.1f}",
                       Text(f"{report_.net:+.1f}", style="green" if report_.net > 0 else "red"),
                       split, Text(plain("\n".join(report_.dependencies)) or "none",
                                   style="yellow" if report_.dependencies else "dim"))
    console.print(ranked)
    if eco.coalitions and eco.coalitions[0].net <= 0:
        console.print("[bold red]No coalition creates more value than its coordination "
                      "costs: a partnership is not justified here.[/]")
    if png is not None:
        eco.plot(png)
        console.print(f"Graph: [bold]{for_terminal(str(png))}[/]")
    if mermaid is not None:
        files.write_file(mermaid, eco.mermaid(), replace=True)
        console.print(f"Mermaid: [bold]{for_terminal(str(mermaid))}[/]")



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
    prices: Annotated[Path | None, typer.Option(
        help="LLM agents: YAML price table, MODEL: {input: USD per 1M tokens, output: USD "
             "per 1M}, for each seat's cost.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run scenarios × line-ups × seat assignments × seeds; print a leaderboard."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from negotiation import tournament as t

    shown = error_console() if as_json else console  # under --json: stdout holds the JSON
    if expect is not None and not expect.is_file():
        raise UsageError(f"--expect {expect}: no such golden file. Make one from a run you "
                         "trust: negotiate tournament CONFIG --out golden.csv, then compare "
                         "later runs with --expect golden.csv --out new.csv")
    try:
        config = t.load_config(config_path)
        t.ensure_scenarios(config)
        price_table = load_prices(prices)
        csv_path = out or Path("results") / f"{config_path.stem}.csv"
        all_jobs = t.jobs(config)
        done = t.done_jobs(csv_path)
        skipped = sum(job.key in done for job in all_jobs)
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn(),
                      console=shown, transient=True) as bar:
            task = bar.add_task("negotiating", total=len(all_jobs), completed=skipped)
            ran = t.run_tournament(config, csv_path, workers=workers, parquet=parquet,
                                   progress=lambda n, _: bar.update(task,
                                                                    completed=skipped + n),
                                   backend=backend, address=address,
                                   concurrency=concurrency, prices=price_table)
        shown.print(f"{ran} negotiations run, {skipped} already done; results in "
                    f"[bold]{for_terminal(str(csv_path))}[/]")
        standings = t.leaderboard(t.read_rows(csv_path))
        table = Table(title="Leaderboard: mean gain over reservation value per seat",
                      title_justify="left")
        used = any(s.tokens for s in standings)  # LLM seats: what they used, in all
        for column in ("Strategy", "Seats", "Agreements", "Mean gain", "95% CI",
                       *(("Tokens", "Cost") if used else ())):
            table.add_column(column, justify="left" if column == "Strategy" else "right")
        for s in standings:
            table.add_row(for_terminal(s.strategy), str(s.negotiations), f"{s.agreement_rate:.0%}",
                          f"{s.mean_gain:+.3f}", f"[{s.low:+.3f}, {s.high:+.3f}]",
                          *((f"{s.tokens:,}", f"${s.cost_usd:.4f}") if used else ()))
        if not as_json:
            shown.print(table)
        if plot is not None:
            t.plot_leaderboard(standings, plot)
            shown.print(f"Plot: [bold]{for_terminal(str(plot))}[/]")
        differences = [] if expect is None else t.compare_with_golden(csv_path, expect)
        if as_json:
            emit({"config": str(config_path), "results": str(csv_path), "ran": ran,
                  "skipped": skipped, "leaderboard": [
                      {"strategy": s.strategy, "seats": s.negotiations,
                       "agreement_rate": s.agreement_rate, "mean_gain": s.mean_gain,
                       "ci95": [s.low, s.high], "tokens": s.tokens,
                       "cost_usd": s.cost_usd} for s in standings],
                  "plot": None if plot is None else str(plot),
                  "golden": None if expect is None else {
                      "file": str(expect), "matches": not differences,
                      "differences": differences}})
        if expect is not None:
            if differences:
                shown.print(f"[bold red]{len(differences)} difference(s) from "
                            f"{for_terminal(str(expect))}:[/]")
                for line in differences[:50]:
                    shown.print(f"  {for_terminal(line)}")
                raise typer.Exit(1)
            shown.print(f"[bold green]Matches {for_terminal(str(expect))}[/]")
    except t.TournamentError as error:
        fail(str(error), as_json=as_json)

