"""The guardrail check registry: the built-in checks and the custom ones (installed under
the entry point group ``negotiation.guardrails`` or given with ``--plugin``), in the order
the referee runs them.

A scenario sets the levels of the built-in checks in its ``guardrails:`` block and names
custom ones, by registered name, in ``guardrails.custom``; an import path written in a file
is refused (see :mod:`negotiation.plugins`).
"""

from __future__ import annotations

from dataclasses import dataclass

from negotiation.checks.base import (
    Case,
    Check,
    CustomCheck,
    Failure,
    Finding,
    GuardrailCheck,
    Level,
    Subject,
    level_of,
)
from negotiation.checks.builtin import (
    Accountability,
    Fairness,
    IndividualRationality,
    Injection,
    Pareto,
    RedLines,
    Validity,
)
from negotiation.model import GuardrailPolicy
from negotiation.plugins import (
    GUARDRAIL_GROUP,
    PluginError,
    is_import_path,
    listed,
    load_check,
    registered,
)

#: The built-in checks, in the order the referee runs them (accountability first: a
#: proposal's proposer and rationale are judged even when its terms are invalid).
BUILTIN_CHECKS: dict[str, Check] = {check.name: check for check in (
    Accountability(), Validity(), RedLines(), IndividualRationality(), Pareto(), Fairness(),
    Injection())}


def get_check(name: str, options: dict[str, object] | None = None) -> GuardrailCheck:
    """The custom check registered as ``name``, built with ``options``.  A built-in name is
    refused with where to set its level: built-in checks always run."""
    if name in BUILTIN_CHECKS:
        where = BUILTIN_CHECKS[name].policy
        fix = f"set its level under guardrails.{where}" if where else "it always runs"
        raise PluginError(f"'{name}' is a built-in check, not a custom one: {fix}")
    check: GuardrailCheck = load_check(name, dict(options or {}))
    return check


def checks_for(policy: GuardrailPolicy) -> list[Check]:
    """Every check a scenario's referee runs: the built-ins, then its custom checks."""
    return [*BUILTIN_CHECKS.values(),
            *(CustomCheck(spec, get_check(spec.use, spec.options)) for spec in policy.custom)]


def check_names() -> list[str]:
    """Every name a check is known by: built in, then registered extensions."""
    return [*BUILTIN_CHECKS, *sorted(n for n in registered(GUARDRAIL_GROUP)
                                     if not is_import_path(n))]


@dataclass(frozen=True)
class CheckEntry:
    """One line of ``negotiate guardrails list``."""

    name: str
    source: str
    description: str
    codes: tuple[str, ...] = ()


def catalogue() -> list[CheckEntry]:
    """The registry as ``guardrails list`` shows it: built in, then installed and
    ``--plugin`` checks (one that cannot load says why)."""
    entries = [CheckEntry(check.name, "built in", check.description, check.codes)
               for check in BUILTIN_CHECKS.values()]
    entries += [CheckEntry(e.name, e.value, e.description()) for e in listed(GUARDRAIL_GROUP)]
    return entries


__all__ = [
    "BUILTIN_CHECKS",
    "Case",
    "Check",
    "CheckEntry",
    "CustomCheck",
    "Failure",
    "Finding",
    "GuardrailCheck",
    "Level",
    "Subject",
    "catalogue",
    "check_names",
    "checks_for",
    "get_check",
    "level_of",
]
