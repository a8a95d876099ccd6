"""Loading user extensions: agents, protocols and guardrail checks, by import path
(``mypkg.strategies:Tough``) or through installed entry points (``negotiation.agents``,
``negotiation.protocols``, ``negotiation.guardrails``).

Every failure — a missing module, a module that raises on import, a missing attribute, an
object that does not satisfy the interface — becomes a ``PluginError`` that names the
import path and what is wrong, before any negotiation starts.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from negotiation.errors import InputError

AGENT_GROUP = "negotiation.agents"
PROTOCOL_GROUP = "negotiation.protocols"
GUARDRAIL_GROUP = "negotiation.guardrails"


class PluginError(InputError):
    """An extension that cannot be loaded or does not fit its interface."""


def is_import_path(spec: str) -> bool:
    module, sep, attribute = spec.partition(":")
    return bool(sep) and bool(attribute) and "=" not in attribute and \
        all(part.isidentifier() for part in module.split(".")) and attribute.isidentifier()


def load_object(path: str, what: str) -> Any:
    """The object at ``module.path:attribute``; ``PluginError`` naming what is wrong."""
    if not is_import_path(path):
        raise PluginError(f"{what} '{path}': an import path looks like "
                          "'package.module:Name'")
    module_name, _, attribute = path.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # like `python -m`: modules in the current folder load
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise PluginError(f"{what} '{path}': no module named '{error.name}'; install it or "
                          "run from the folder that holds it") from None
    except Exception as error:  # the user's module failed while importing
        raise PluginError(f"{what} '{path}': importing '{module_name}' raised "
                          f"{type(error).__name__}: {error}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise PluginError(f"{what} '{path}': module '{module_name}' has no attribute "
                          f"'{attribute}'") from None


@dataclass(frozen=True)
class Installed:
    """An extension announced by an installed package's entry point."""

    name: str
    value: str
    group: str

    def load(self) -> Any:
        return load_object(self.value, f"entry point '{self.name}' ({self.group})")

    def description(self) -> str:
        try:
            target = self.load()
        except PluginError as error:
            return f"(cannot load: {error})"
        doc = inspect.getdoc(target) or ""
        return doc.splitlines()[0] if doc else self.value


@functools.cache
def installed(group: str) -> dict[str, Installed]:
    """Extensions installed under an entry point group (read once per process)."""
    return {ep.name: Installed(ep.name, ep.value, group) for ep in entry_points(group=group)}


def _build(factory: Any, what: str, path: str, **offered: Any) -> Any:
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
        raise PluginError(f"{what} '{path}': creating it raised {type(error).__name__}: "
                          f"{error}") from None


def _require(obj: Any, what: str, path: str, methods: list[str],
             is_async: Callable[[str], bool] = lambda name: False) -> Any:
    for name in methods:
        method = getattr(obj, name, None)
        if not callable(method):
            raise PluginError(f"{what} '{path}' does not fit the interface: it has no "
                              f"'{name}' method")
        if is_async(name) and not inspect.iscoroutinefunction(method):
            raise PluginError(f"{what} '{path}' does not fit the interface: '{name}' must be "
                              f"'async def {name}(self, view)'")
    return obj


def load_agent(path: str, *, seed: int, party: str) -> Any:
    """An agent from an import path or entry point; it gets ``seed``/``party`` if it asks."""
    entry = installed(AGENT_GROUP).get(path)
    factory = entry.load() if entry else load_object(path, "agent")
    agent = _build(factory, "agent", path, seed=seed, party=party)
    return _require(agent, "agent", path, ["act"], lambda name: name == "act")


def load_protocol(path: str) -> Any:
    entry = installed(PROTOCOL_GROUP).get(path)
    factory = entry.load() if entry else load_object(path, "protocol")
    protocol = _build(factory, "protocol", path)
    return _require(protocol, "protocol", path, ["start", "legal_actions", "apply", "pass_turn"])


def load_check(path: str, options: dict[str, Any] | None = None) -> Any:
    entry = installed(GUARDRAIL_GROUP).get(path)
    factory = entry.load() if entry else load_object(path, "guardrail check")
    check = _build(factory, "guardrail check", path, **(options or {}))
    return _require(check, "guardrail check", path, ["check"])
