"""Auditing runs: ``verify``, ``report``, ``review`` (sign-off), ``transcripts``, ``charter``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.prompt import Prompt
from rich.table import Table
from rich.text import Text

from negotiation import render
from negotiation.analysis import SpaceAnalysis
from negotiation.cli.common import (
    UsageError,
    console,
)
from negotiation.lifecycle import SignOffError, Status, sign_off, transcript_status
from negotiation.model import Scenario
from negotiation.safe_text import for_terminal
from negotiation.transcript import (
    TranscriptError,
    load_verified,
    negotiation_header,
    verify,
)


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
            console.print(f"[bold red]TAMPERED[/] {for_terminal(problem)}")
        if problems:
            raise typer.Exit(1)
        console.print(f"[bold green]OK[/] {for_terminal(transcript)}: every stage verified and "
                      "linked")
        return
    result = verify(transcript)
    if not result.ok:
        console.print(f"[bold red]TAMPERED[/] {for_terminal(transcript)}: "
                      f"{for_terminal(result.reason)}")
        raise typer.Exit(1)
    last = result.events[-1]
    note = "" if last["type"] in {"outcome", "signoff"} else \
        "  [yellow](no outcome yet: the run is in progress or was interrupted)[/]"
    console.print(f"[bold green]OK[/] {for_terminal(transcript)}: {len(result.events)} events, "
                  f"head {result.head_hash[:16]}…{note}")



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
        console.print(f"Plot: [bold]{for_terminal(str(plot))}[/]")



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
                          f"{for_terminal(event['reviewer'])}; the paused run is resumed and its "
                          f"sign-off recorded as event {event['seq']}.")
            return
    event = sign_off(transcript, approve=approve, reviewer=reviewer or "", comment=comment)
    console.print(f"[bold]{event['status'].upper()}[/] by {for_terminal(event['reviewer'])}; "
                  f"sign-off recorded as event {event['seq']}.")



def transcripts_command(
    folder: Annotated[Path, typer.Argument(help="Folder of transcripts.")] = Path("transcripts"),
) -> None:
    """List runs with their scenario, date, parties, outcome and sign-off status."""
    files = sorted(p for p in folder.glob("*.jsonl") if not p.name.endswith(".calls.jsonl"))
    if not files:
        console.print(f"No transcripts in {for_terminal(str(folder))}.")
        return
    table = Table(title=f"Transcripts in {for_terminal(folder)}", title_justify="left")
    for column in ("File", "Scenario", "Date", "Parties", "Outcome", "Status"):
        table.add_column(column, overflow="fold")
    styles = {Status.RATIFIED: "bold green", Status.REJECTED: "red",
              Status.PENDING: "yellow", Status.TAMPERED: "bold white on red"}
    for path in files:
        try:
            status, events = transcript_status(path)
        except TranscriptError as error:
            table.add_row(for_terminal(path.name), "", "", "", for_terminal(error),
                          Text("TAMPERED", style="bold red"))
            continue
        header = events[0] if events else {}
        outcome = next((e for e in events if e["type"] == "outcome"), None)
        result = "—" if outcome is None else (
            f"agreement in round {outcome['agreement']['round'] + 1}"
            if outcome["status"] == "agreement" else outcome["reason"])
        table.add_row(for_terminal(path.name), for_terminal(header.get("scenario_id", "?")),
                      for_terminal(header.get("wall", {}).get("at", "?")[:16].replace("T", " ")),
                      for_terminal(", ".join(header.get("parties", []))), for_terminal(result),
                      Text(status.value, style=styles.get(status, "")))
    console.print(table)



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
    console.print(f"Charter: [bold]{for_terminal(str(written))}[/]")

