"""The extension registry: the agents, protocols and guardrail checks a file may name.

The registry of a group (``negotiation.agents``, ``negotiation.protocols``,
``negotiation.guardrails``) holds the extensions installed as entry points plus those the
user registered on the command line for this invocation (``--plugin [NAME=]module:attr``).
Data files — scenarios, tournaments, campaigns, transcripts — may name an extension only
from it: an import path written in a file is refused (:func:`import_path_refused`),
because opening a file someone sent you must never import or run code.  The only way an
import path is ever imported is :func:`register_plugin`, i.e. the user's own command line;
the current folder is not put on ``sys.path`` for it.

Every failure — a missing module, a module that raises on import, a missing attribute, an
object that does not satisfy the interface — becomes a ``PluginError`` that names the
extension and what is wrong, before any negotiation starts.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from negotiation.errors import InputError

AGENT_GROUP = "negotiation.agents"
PROTOCOL_GROUP = "negotiation.protocols"
GUARDRAIL_GROUP = "negotiation.guardrails"
COMMAND_LINE = "--plugin"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class PluginError(InputError):
    """An extension that cannot be loaded, does not fit its interface, or is named by an
    import path in a file."""


class CheckOptionsError(PluginError):
    """A registered guardrail check that refuses the options a scenario gives it."""


def is_import_path(spec: str) -> bool:
    module, sep, attribute = spec.strip().partition(":")
    return bool(sep) and bool(attribute) and "=" not in attribute and \
        all(part.isidentifier() for part in module.split(".")) and attribute.isidentifier()


def import_path_refused(value: str, what: str) -> PluginError:
    """The error for an import path found where only registered names are allowed."""
    return PluginError(
        f"{what} '{value}' is an import path, and files may only name built-in or "
        "registered extensions (opening a file never runs code): install it as an entry "
        f"point, or pass --plugin {value.strip()} on the command line if you trust it")


def _import(path: str, what: str) -> Any:
    """The object at ``module.path:attribute``; ``PluginError`` naming what is wrong."""
    if not is_import_path(path):
        raise PluginError(f"{what} '{path}': an import path looks like "
                          "'package.module:Name'")
    module_name, _, attribute = path.strip().partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise PluginError(f"{what} '{path}': no module named '{error.name}'; install it, or "
                          "add the folder that holds it to PYTHONPATH") from None
    except Exception as error:  # the user's module failed while importing
        raise PluginError(f"{what} '{path}': importing '{module_name}' raised "
                          f"{type(error).__name__}: {error}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise PluginError(f"{what} '{path}': module '{module_name}' has no attribute "
                          f"'{attribute}'") from None


@dataclass(frozen=True)
class Extension:
    """A registered extension: from an installed package's entry point (``group`` is the
    entry point group) or from ``--plugin`` on the command line (``group`` is
    ``COMMAND_LINE``)."""

    name: str
    value: str
    group: str

    def load(self) -> Any:
        where = "--plugin" if self.group == COMMAND_LINE else f"entry point ({self.group})"
        return _import(self.value, f"{where} '{self.name}'")

    def description(self) -> str:
        try:
            target = self.load()
        except PluginError as error:
            return f"(cannot load: {error})"
        doc = inspect.getdoc(target) or ""
        return doc.splitlines()[0] if doc else self.value


@functools.cache
def installed(group: str) -> dict[str, Extension]:
    """Extensions installed under an entry point group (read once per process)."""
    return {ep.name: Extension(ep.name, ep.value, group) for ep in entry_points(group=group)}


_command_line: dict[str, Extension] = {}


def registered(group: str) -> dict[str, Extension]:
    """Everything a file may name in ``group`` besides the built-ins: installed entry
    points, then the plugins given on the command line."""
    return {**installed(group), **_command_line}


def listed(group: str) -> list[Extension]:
    """The registered extensions of ``group`` for a listing: each once, by its name."""
    return list({e.name: e for e in registered(group).values()}.values())


def command_line_plugins() -> list[str]:
    """The ``--plugin`` specs registered in this process, to pass on to worker processes."""
    return list(dict.fromkeys(f"{e.name}={e.value}" for e in _command_line.values()))


def register_plugin(spec: str, taken: Iterable[str] = ()) -> list[str]:
    """Register ``[NAME=]module:attr`` for this invocation and return the names it answers
    to: ``NAME`` (default: ``attr``) and the import path itself, so that a file naming the
    path works once the user has vouched for it.  The object is imported now, so a broken
    plugin fails before anything runs.  ``taken`` are built-in names it may not shadow."""
    name, sep, path = spec.strip().rpartition("=")
    path = path.strip()
    if not is_import_path(path):
        raise PluginError(f"--plugin '{spec}': give module:attr or NAME=module:attr, e.g. "
                          "--plugin mypkg.strategies:Tough")
    name = name.strip() if sep else path.partition(":")[2]
    if not _NAME.fullmatch(name):
        raise PluginError(f"--plugin '{spec}': '{name}' cannot be a name; use letters, "
                          "digits, '_', '-' and '.'")
    if name in set(taken):
        raise PluginError(f"--plugin '{spec}': '{name}' is a built-in name; choose another "
                          f"with --plugin OTHER={path}")
    earlier = _command_line.get(name)
    if earlier is not None and earlier.value != path:
        raise PluginError(f"--plugin '{spec}': '{name}' is already {earlier.value}; give one "
                          f"of them another name (--plugin OTHER={path})")
    extension = Extension(name, path, COMMAND_LINE)
    extension.load()
    _command_line[name] = _command_line[path] = extension
    return [name, path]


def clear_command_line_plugins() -> None:
    """Forget every ``--plugin`` (each command-line invocation starts without any)."""
    _command_line.clear()


def _lookup(group: str, name: str, what: str) -> Extension:
    extension = registered(group).get(name.strip())
    if extension is not None:
        return extension
    if is_import_path(name):
        raise import_path_refused(name, what)
    choices = ", ".join(sorted(registered(group))) or "none installed"
    raise PluginError(f"no {what} named '{name}' is registered ({choices})")


def _build(factory: Any, what: str, name: str, **offered: Any) -> Any:
    """Call a class or factory with whichever of ``offered`` it accepts."""
    if not callable(factory):
        return factory
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    kwargs = {k: v for k, v in offered.items() if accepts_any or k in parameters}
    try:
        return factory(**kwargs)
    except Exception as error:
        raise PluginError(f"{what} '{name}': creating it raised {type(error).__name__}: "
                          f"{error}") from None


def _require(obj: Any, what: str, name: str, methods: list[str],
             is_async: Callable[[str], bool] = lambda method: False) -> Any:
    for method_name in methods:
        method = getattr(obj, method_name, None)
        if not callable(method):
            raise PluginError(f"{what} '{name}' does not fit the interface: it has no "
                              f"'{method_name}' method")
        if is_async(method_name) and not inspect.iscoroutinefunction(method):
            raise PluginError(f"{what} '{name}' does not fit the interface: '{method_name}' "
                              f"must be 'async def {method_name}(self, view)'")
    return obj


def load_agent(name: str, *, seed: int, party: str) -> Any:
    """A registered agent; it gets ``seed``/``party`` if it asks."""
    factory = _lookup(AGENT_GROUP, name, "agent").load()
    agent = _build(factory, "agent", name, seed=seed, party=party)
    return _require(agent, "agent", name, ["act"], lambda method: method == "act")


def load_protocol(name: str) -> Any:
    """A registered protocol."""
    factory = _lookup(PROTOCOL_GROUP, name, "protocol").load()
    protocol = _build(factory, "protocol", name)
    # The hooks too: a protocol written against negotiation.api.ProtocolBase has them all.
    return _require(protocol, "protocol", name, ["start", "legal_actions", "apply", "pass_turn",
                                                 "config_problems", "departed", "published",
                                                 "describe_proposer"])


def load_check(name: str, options: dict[str, Any] | None = None) -> Any:
    """A registered guardrail check, built with the scenario's ``options``; an option it
    does not take, or one its constructor rejects, is a ``CheckOptionsError``."""
    factory = _lookup(GUARDRAIL_GROUP, name, "guardrail check").load()
    options = options or {}
    if options and callable(factory):
        try:
            parameters = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            unknown = sorted(set(options) - set(parameters))
            if unknown:
                raise CheckOptionsError(
                    f"guardrail check '{name}' takes no option {', '.join(unknown)}; it "
                    f"takes: {', '.join(parameters) or 'no options'}")
    try:
        check = _build(factory, "guardrail check", name, **options)
    except PluginError as error:
        raise CheckOptionsError(str(error)) from None
    return _require(check, "guardrail check", name, ["check"])
