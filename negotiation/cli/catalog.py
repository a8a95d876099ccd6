"""The catalogues: ``scenarios``, ``agents``, ``protocols`` and ``guardrails`` listings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from negotiation import files
from negotiation.cli.common import (
    USAGE_ERROR,
    console,
    error_console,
    friendly_errors,
)
from negotiation.cli.output import JsonFlag, emit
from negotiation.safe_text import for_terminal

scenarios_app = typer.Typer(help="List, validate and describe scenario files.",
                            no_args_is_help=True)
@scenarios_app.command()
@friendly_errors
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
    from negotiation.strict_yaml import dump_yaml

    data = random_scenario(parties, issues, values, seed)
    scenario_from_data(data, "generated")  # valid by construction; checked all the same
    text = dump_yaml(data)
    if out is None:
        typer.echo(text, nl=False)
    else:
        files.write_file(out, text, replace=True)
        console.print(f"wrote {for_terminal(str(out))}")


@scenarios_app.command(name="list")
@friendly_errors
def scenarios_list(as_json: JsonFlag = False) -> None:
    """List the scenarios shipped with the sandbox."""
    from rich.table import Table

    from negotiation.scenario import (
        ScenarioError,
        load_scenario,
        outcome_space_size,
        shipped_scenarios,
    )

    table = Table(title="Shipped scenarios", title_justify="left")
    for column in ("Name", "Title", "Parties", "Issues", "Outcomes"):
        table.add_column(column, no_wrap=column == "Name",
                         justify="right" if column in {"Issues", "Outcomes"} else "left")
    rows: list[dict[str, Any]] = []
    for path in shipped_scenarios():
        try:
            scenario = load_scenario(path)
        except ScenarioError as error:
            rows.append({"name": path.stem, "valid": False, "problem": error.problems[0]})
            table.add_row(path.stem, f"[red]invalid: {for_terminal(error.problems[0])}[/]", "", "",
                          "")
            continue
        rows.append({"name": path.stem, "valid": True, "title": scenario.title,
                     "parties": scenario.party_ids, "issues": len(scenario.issues),
                     "outcomes": outcome_space_size(scenario), "path": str(path)})
        table.add_row(path.stem, for_terminal(scenario.title), ", ".join(scenario.party_ids),
                      str(len(scenario.issues)), f"{outcome_space_size(scenario):,}")
    if as_json:
        emit({"scenarios": rows})
    else:
        console.print(table)


@scenarios_app.command()
@friendly_errors
def validate(
    files: Annotated[list[str], typer.Argument(
        help="Scenario files (or shipped names) to check.")],
) -> None:
    """Check scenario files; exit 2 if any is invalid, naming the file, field and fix."""
    from negotiation.scenario import ScenarioError, load_scenario, outcome_space_size

    failed = 0
    for path in files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as error:
            failed += 1
            error_console().print(f"[bold red]invalid[/] {for_terminal(str(error))}",
                                         soft_wrap=True)
            continue
        console.print(f"[bold green]valid[/] {for_terminal(path)}: "
                      f"{for_terminal(scenario.title, one_line=True)} "
                      f"({outcome_space_size(scenario):,} possible agreements)")
    if failed:
        raise typer.Exit(USAGE_ERROR)


def scenario_json_schema() -> dict[str, Any]:
    from negotiation.model import Scenario

    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


@scenarios_app.command()
@friendly_errors
def schema(
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")
                   ] = None,
) -> None:
    """Print the JSON Schema of scenario files (generated from the models)."""
    text = json.dumps(scenario_json_schema(), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        files.write_file(out, text, replace=True)
        console.print(f"wrote {for_terminal(out)}")


agents_app = typer.Typer(help="Negotiation strategies: built in and installed.",
                         no_args_is_help=True)
protocols_app = typer.Typer(help="Negotiation protocols: built in and installed.",
                            no_args_is_help=True)
guardrails_app = typer.Typer(help="Guardrail checks: built in and installed.",
                             no_args_is_help=True)


def _listing(title: str, rows: list[tuple[str, str, str]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("Name", style="bold", no_wrap=True)
    table.add_column("Source")
    table.add_column("Description")
    for name, source, description in rows:
        table.add_row(for_terminal(name), for_terminal(source), for_terminal(description))
    console.print(table)


@agents_app.command(name="list")
@friendly_errors
def agents_list() -> None:
    """List the strategies: built in, installed (entry points) and special seats."""
    from agents import STRATEGIES
    from agents.negmas_seat import catalogue_rows
    from negotiation.plugins import AGENT_GROUP, listed

    rows = [(s.name, "built in", s.description) for s in STRATEGIES.values()]
    rows.append(("llm:MODEL", "built in", "A language model through any OpenAI-compatible "
                                          "endpoint ($OPENAI_BASE_URL, $OPENAI_API_KEY)."))
    rows.append(("human", "built in", "You, at this terminal (same as --human ORG)."))
    rows += catalogue_rows()
    rows += [(e.name, e.value, e.description()) for e in listed(AGENT_GROUP)]
    _listing("Strategies (add your own with --plugin NAME=mypkg.module:Class)", rows)


@protocols_app.command(name="list")
@friendly_errors
def protocols_list() -> None:
    """List the protocols: built in and installed (entry points)."""
    from negotiation.plugins import PROTOCOL_GROUP, listed
    from protocols import PROTOCOLS

    rows = [(name, "built in", p.description) for name, p in PROTOCOLS.items()]
    rows += [(e.name, e.value, e.description()) for e in listed(PROTOCOL_GROUP)]
    _listing("Protocols (add your own with --plugin NAME=mypkg.module:Class)", rows)


@guardrails_app.command(name="list")
@friendly_errors
def guardrails_list() -> None:
    """List the guardrail checks: built in, installed (entry points) and --plugin."""
    from negotiation.checks import catalogue

    rows = [(entry.name, entry.source, entry.description) for entry in catalogue()]
    _listing("Guardrail checks (custom ones: guardrails.custom in the scenario)", rows)

