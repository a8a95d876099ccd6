"""What every command shares: the console, error handling and option parsing."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

from negotiation import files
from negotiation.errors import InputError, NegotiationError, exit_code
from negotiation.safe_text import for_terminal

# Start-up time is part of the interface (``negotiate --help`` answers at once): this module
# and the command modules import only typer, rich's console and the light helpers at the
# top; the models, numpy, analysis, LangGraph and the charter load inside the commands that
# use them (tests/test_startup.py pins it).

console = Console(highlight=False, emoji=False)  # ":name:" in data stays text

USAGE_ERROR = 2
P = ParamSpec("P")
R = TypeVar("R")


class OnIdle(StrEnum):
    """What happens to the turn of a seat left idle past ``--idle-timeout`` (``run
    --human`` and ``serve``)."""

    strategy = "strategy"
    pass_ = "pass"


class UsageError(InputError):
    """Bad input on the command line, reported without a traceback."""


def error_console() -> Console:
    """A console on stderr for errors and, under ``--json``, for everything but the JSON."""
    return Console(stderr=True, highlight=False, emoji=False)


def fail(message: str, code: int = USAGE_ERROR, *, as_json: bool = False) -> NoReturn:
    """Say what went wrong on stderr and exit with ``code``; under ``--json`` stdout also
    gets the error as a JSON object."""
    error_console().print(f"[bold red]error:[/] {for_terminal(message)}", soft_wrap=True)
    if as_json:
        from negotiation.cli.output import emit, error_object

        emit(error_object(message, code))
    raise typer.Exit(code)


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a user can fix into a message and exit code 2, never a traceback
    (under ``--json``, a command's ``as_json`` parameter, also a JSON error object)."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = bool(kwargs.get("as_json"))
        try:
            return command(*args, **kwargs)
        except NegotiationError as error:
            fail(str(error), exit_code(error), as_json=as_json)
        except MemoryError:
            fail("out of memory: the scenario is too large for this machine; use coarser "
                 "steps or fewer options", exit_code(MemoryError()), as_json=as_json)
        except Exception as error:
            # The writers report a full disk themselves; this catches any other write.
            if not is_disk_full(error):
                raise
            fail(f"no space left on the device ({error}); free some space and run the "
                 "command again (a transcript stays valid: continue it with negotiate resume)",
                 as_json=as_json)

    return wrapper


def is_disk_full(error: Exception) -> bool:
    """An OSError or SQLite error saying the device is full (sqlite3 is not imported just
    to name its error class: a command that never opened a database cannot raise it)."""
    sqlite3 = sys.modules.get("sqlite3")
    kinds = (OSError,) if sqlite3 is None else (OSError, sqlite3.OperationalError)
    return isinstance(error, kinds) and (files.is_disk_full(error)
                                         or "disk is full" in str(error))


def load_prices(path: Path | None) -> dict[str, tuple[float, float]]:
    """Read ``MODEL: {input: USD/1M tokens, output: USD/1M tokens}`` from a YAML file."""
    if path is None:
        return {}
    import yaml

    from negotiation.strict_yaml import load_yaml, read_data_file

    form = "a price table maps each model to {input: N, output: N} in US dollars per million " \
           "tokens"
    try:
        data = load_yaml(read_data_file(path), str(path))  # StrictYamlError says what to fix
        prices = {str(model): (float(row["input"]), float(row["output"]))
                  for model, row in (data or {}).items()}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValueError,
            AttributeError) as error:
        raise UsageError(f"{path}: {form} ({error})") from None
    for model, pair in prices.items():
        if not all(math.isfinite(price) and price >= 0 for price in pair):
            raise UsageError(f"{path}: {model}: prices must be finite and not negative; {form}")
    return prices


def register_plugins(specs: list[str]) -> None:
    """Register this invocation's ``--plugin [NAME=]module:attr`` extensions (the user's
    own decision on the command line; files may then name them)."""
    from negotiation.plugins import clear_command_line_plugins

    clear_command_line_plugins()
    for spec in specs:
        _register(spec)


def _register(spec: str) -> None:
    from agents import STRATEGIES
    from negotiation.checks import BUILTIN_CHECKS
    from negotiation.engine import HUMAN, LLM
    from negotiation.plugins import register_plugin
    from protocols import PROTOCOLS

    register_plugin(spec, taken=[*STRATEGIES, *PROTOCOLS, *BUILTIN_CHECKS, HUMAN, LLM])


def parse_agent_overrides(values: list[str]) -> dict[str, str]:
    """``--agent ORG=STRATEGY`` options; an import path given here is the user's own
    decision, so it is registered like ``--plugin``."""
    from agents import STRATEGIES
    from agents.negmas_seat import is_negmas
    from negotiation.engine import LLM
    from negotiation.plugins import is_import_path

    overrides: dict[str, str] = {}
    for value in values:
        org, sep, spec = value.partition("=")
        if not sep or not org or not spec:
            raise UsageError(f"--agent '{value}' must look like ORG=STRATEGY, "
                             "e.g. --agent vendor=tit_for_tat")
        if is_import_path(spec) and spec.partition(":")[0].strip() not in {LLM, *STRATEGIES} \
                and not is_negmas(spec):
            _register(spec.strip())
        overrides[org.strip()] = spec.strip()
    return overrides

