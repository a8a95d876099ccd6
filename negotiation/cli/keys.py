"""Signatory keys: ``keys new`` makes an Ed25519 key pair, ``keys list`` shows the local ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from negotiation.cli.common import console, friendly_errors
from negotiation.files import OutputError, refuse_symlink, write_file
from negotiation.safe_text import for_terminal

keys_app = typer.Typer(help="Signatory keys: who may sign off an agreement for an "
                            "organisation.", no_args_is_help=True)


@keys_app.command(name="new")
@friendly_errors
def keys_new(
    org: Annotated[str, typer.Option(help="The organisation's id in the scenario, e.g. vendor.")],
    name: Annotated[str, typer.Option(help="The person who will sign, e.g. 'Ada Lovelace'.")],
    out: Annotated[Path | None, typer.Option(
        help="Also write the public signatory record here (default: "
             "<org>-<fingerprint>.signatory.yaml in this folder).")] = None,
) -> None:
    """Create an Ed25519 key pair: the private key stays in your config folder (mode 0600);
    the public record is printed and written, to go into the scenario's signatories."""
    import yaml

    from negotiation.signing import new_key, short, signatory_yaml

    if out is not None:  # refuse a bad target before a key pair exists
        refuse_symlink(out)
        if out.exists():
            raise OutputError(f"{out} already exists; refusing to overwrite it")
    key = new_key(org, name)
    record = key.signatory
    target = out or Path(f"{record.org}-{short(record.fingerprint)}.signatory.yaml")
    write_file(target, signatory_yaml(record))
    console.print(f"Private key: [bold]{for_terminal(key.path)}[/] (mode 0600; keep it to "
                  "yourself, it signs in your name)")
    console.print(f"Public record: [bold]{for_terminal(target)}[/]")
    console.print(f"Fingerprint: [bold]{record.fingerprint}[/]")
    console.print("Declare it in the scenario:\n")
    block = {"signatories": {record.org: {"keys": [{"name": record.name,
                                                     "public_key": record.public_key}]}}}
    console.print(for_terminal(yaml.safe_dump(block, sort_keys=False, allow_unicode=True)),
                  soft_wrap=True)


@keys_app.command(name="list")
@friendly_errors
def keys_list() -> None:
    """List the signatory keys in your config folder."""
    from rich.table import Table

    from negotiation.signing import keys_folder, local_keys

    keys = local_keys()
    if not keys:
        console.print(f"No keys in {for_terminal(keys_folder())}; make one with "
                      "[cyan]negotiate keys new --org ORG --name NAME[/]")
        return
    table = Table(title=f"Signatory keys in {for_terminal(keys_folder())}",
                  title_justify="left")
    for column in ("Org", "Name", "Fingerprint", "Key file"):
        table.add_column(column, overflow="fold")
    for key in keys:
        table.add_row(for_terminal(key.signatory.org), for_terminal(key.signatory.name),
                      key.signatory.fingerprint, for_terminal(key.path.name))
    console.print(table)
