"""Interoperability commands: ``import genius`` and ``export genius``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from negotiation.cli.common import console, friendly_errors
from negotiation.safe_text import for_terminal

import_app = typer.Typer(help="Bring scenarios in from other negotiation tools.",
                         no_args_is_help=True)
export_app = typer.Typer(help="Write scenarios out for other negotiation tools.",
                         no_args_is_help=True)


@import_app.command(name="genius")
@friendly_errors
def import_genius_command(
    folder: Annotated[Path, typer.Argument(
        help="A GENIUS domain folder: one domain XML and two or more profile XML files.")],
    out: Annotated[Path | None, typer.Option(
        help="Write the scenario YAML here (never overwrites) instead of stdout.")] = None,
    real_steps: Annotated[int, typer.Option(
        min=1, max=10_000, help="Equal steps a real issue's range is cut into, unless the "
                                "domain file gives a discretization.")] = 20,
) -> None:
    """Import a GENIUS/ANAC domain folder as a scenario (GENIUS's weights, evaluations,
    reservation values and discount factors)."""
    from negotiation import files
    from negotiation.genius import import_genius
    from negotiation.strict_yaml import dump_yaml

    scenario, data = import_genius(folder, real_steps=real_steps)
    text = dump_yaml(data)
    if out is None:
        typer.echo(text, nl=False)
        return
    files.write_file(out, text)
    console.print(f"wrote {for_terminal(str(out))}: {len(scenario.issues)} issue(s), "
                  f"organisations {', '.join(scenario.party_ids)}")


@export_app.command(name="genius")
@friendly_errors
def export_genius_command(
    scenario_path: Annotated[str, typer.Argument(
        metavar="SCENARIO", help="A scenario file, or the name of a shipped scenario.")],
    out: Annotated[Path, typer.Option(help="Folder to write the domain and profile XML "
                                           "files into (existing files are never "
                                           "overwritten).")],
) -> None:
    """Export a scenario as a GENIUS domain folder; refuses what GENIUS cannot express
    (split issues, fixed terms, bent numeric value functions)."""
    from negotiation.genius import export_scenario, write_export
    from negotiation.scenario import load_scenario

    export = export_scenario(load_scenario(scenario_path), scenario_path)
    for path in write_export(export, out):
        console.print(f"wrote {for_terminal(str(path))}")
    for note in export.notes:
        console.print(f"[yellow]note:[/] {for_terminal(note)}")
