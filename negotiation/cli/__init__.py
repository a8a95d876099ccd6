"""The ``negotiate`` command: run negotiations, verify transcripts, manage scenarios.

Each command group lives in its own module (``run``, ``audit``, ``study``, ``catalog``);
this module assembles them in the order ``--help`` lists them.  Every command runs inside
:func:`~negotiation.cli.common.friendly_errors`, the one place where errors become messages
and exit codes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from negotiation.cli import audit, catalog, interop, run, serve, study
from negotiation.cli.catalog import scenario_json_schema
from negotiation.cli.common import friendly_errors, register_plugins
from negotiation.cli.dev import dev_app
from negotiation.cli.keys import keys_app

app = typer.Typer(
    name="negotiate",
    help="Rehearse and study partnership negotiations between organisations.",
    epilog="Exit codes: 0 agreement or clean end · 1 verification failed · 2 bad input or "
           "refused operation · 3 a run ended because an agent failed (LLM errors, budgets, "
           "timeouts).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def package_version() -> str:
    """The installed distribution's version (what ``pip show`` would say)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("partnership-negotiation")
    except PackageNotFoundError:
        return "unknown (not installed: run pip install -e .)"


def show_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"negotiate {package_version()}")
        raise typer.Exit()


@app.callback()
@friendly_errors
def plugins(
    _version: Annotated[bool, typer.Option(
        "--version", callback=show_version, is_eager=True,
        help="Print the installed version and exit.")] = False,
    plugin: Annotated[list[str] | None, typer.Option(
        "--plugin", metavar="[NAME=]MODULE:ATTR",
        help="Register an agent, protocol or guardrail check by import path for this "
             "command (repeatable): files may then name it as NAME (default: ATTR) or by "
             "the path. Files alone never import code; use this only for code you trust.",
    )] = None,
) -> None:
    register_plugins(plugin or [])


app.add_typer(catalog.scenarios_app, name="scenarios")

COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("run", run.run),
    ("resume", run.resume),
    ("verify", audit.verify_command),
    ("analyze", study.analyze),
    ("campaign", study.campaign),
    ("map", study.map_command),
    ("report", audit.report),
    ("review", audit.review),
    ("transcripts", audit.transcripts_command),
    ("charter", audit.charter),
    ("tournament", study.tournament),
    ("serve", serve.serve),
]
for name, command in COMMANDS:
    app.command(name=name)(friendly_errors(command))

app.add_typer(interop.import_app, name="import")
app.add_typer(interop.export_app, name="export")
app.add_typer(catalog.agents_app, name="agents")
app.add_typer(catalog.protocols_app, name="protocols")
app.add_typer(catalog.guardrails_app, name="guardrails")
app.add_typer(keys_app, name="keys")
app.add_typer(dev_app, name="dev")


class _ReaderGone:
    """stdout that keeps a command going when its reader has gone (``negotiate run … |
    head``): the first write or flush that meets a closed pipe points the stream at the null
    device, and the rest of the output is dropped.  A run still finishes and records its
    outcome, and the exit code is the command's own; a stream error other than a closed
    pipe is raised as before."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                return int(self._stream.write(text))
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        import os

        self._gone = True
        null = os.open(os.devnull, os.O_WRONLY)
        try:  # what is still buffered (and the interpreter's last flush) goes nowhere
            os.dup2(null, self._stream.fileno())
        finally:
            os.close(null)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main() -> None:
    """The ``negotiate`` console script: run the command, then exit at once."""
    import sys

    if sys.stdout is not None and not isinstance(sys.stdout, _ReaderGone):
        sys.stdout = _ReaderGone(sys.stdout)
    try:
        app()
    except SystemExit as done:
        exit_now(done.code)
    exit_now(0)


def exit_now(code: object) -> NoReturn:
    """Exit with ``code`` without tearing the interpreter down.

    After a run the process holds ~1,400 modules (LangGraph, numpy, pydantic); freeing them
    one by one took 0.2–0.5 s after the work was done.  Nothing is lost by skipping it:
    the transcript and the checkpoint database are closed when the run ends, the exit
    handlers still run (logging, coverage, multiprocessing) and stdout and stderr are
    flushed.  With another thread still alive, or a stream that cannot be flushed, the
    ordinary exit runs instead."""
    import atexit
    import os
    import sys
    import threading

    if threading.active_count() > 1:
        raise SystemExit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        raise SystemExit(code) from None
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr, flush=True)  # what SystemExit("message") does
        code = 1
    atexit._run_exitfuncs()
    os._exit(code or 0)


__all__ = ["app", "main", "scenario_json_schema"]
