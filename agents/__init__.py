"""Negotiators: one per organisation, all behind ``async def act(view) -> Action``.

Strategies are named by a spec string: ``NAME`` or ``NAME:key=value,key=value``, e.g.
``boulware``, ``time_dependent:beta=0.5``, ``random:p_accept=0.3``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from agents.base import Agent, History, Memory, Move, StageRecord, View, derive_seed
from agents.rule_based import Hardliner, RandomAgent, TimeDependent, TitForTat
from negotiation.errors import InputError
from negotiation.plugins import (
    AGENT_GROUP,
    import_path_refused,
    is_import_path,
    load_agent,
    registered,
)


class StrategyError(InputError, ValueError):
    """A strategy spec that names no strategy or passes bad parameters."""


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    build: Callable[..., Agent]
    seeded: bool = False


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in [
        Strategy("boulware", "Time-dependent, concedes late (Faratin et al. 1998, β=0.2).",
                 lambda beta=0.2: TimeDependent(beta)),
        Strategy("linear", "Time-dependent, concedes at a constant rate (β=1).",
                 lambda beta=1.0: TimeDependent(beta)),
        Strategy("conceder", "Time-dependent, concedes early (β=2).",
                 lambda beta=2.0: TimeDependent(beta)),
        Strategy("time_dependent", "Time-dependent with your own β: time_dependent:beta=0.5.",
                 lambda beta=1.0: TimeDependent(beta)),
        Strategy("tit_for_tat", "Relative tit-for-tat: reciprocates concessions in proportion.",
                 TitForTat),
        Strategy("hardliner", "Demands its best outcome every turn; never concedes.", Hardliner),
        Strategy("random", "Seeded random acceptable offers (p_accept=0.5).", RandomAgent,
                 seeded=True),
    ]
}


def strategy_names() -> list[str]:
    """Every name a strategy spec may use: built in, then registered extensions."""
    return sorted(STRATEGIES) + sorted(n for n in registered(AGENT_GROUP)
                                       if not is_import_path(n))


def parse_spec(spec: str) -> tuple[str, dict[str, float]]:
    name, _, params_text = spec.strip().partition(":")
    params: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in params_text.split(","))):
        key, sep, raw = item.partition("=")
        if not sep:
            raise StrategyError(f"'{spec}': parameter '{item}' must look like key=value")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise StrategyError(f"'{spec}': parameter '{key.strip()}' must be a finite "
                                f"number, got '{raw.strip()}'")
        params[key.strip()] = value
    return name, params


def make_agent(spec: str, *, party: str, seed: int) -> Agent:
    """Build the agent named by ``spec`` for ``party``; per-party seeds keep runs repeatable.

    ``spec`` is a built-in strategy (``boulware``, ``time_dependent:beta=0.5``) or the name
    of a registered extension: installed under the entry point group
    ``negotiation.agents``, or given on the command line with ``--plugin``.  An import path
    is refused unless ``--plugin`` registered it: a spec may come from a file.
    ``negmas:NAME`` seats one of NegMAS's own negotiators (:mod:`agents.negmas_seat`)."""
    stripped = spec.strip()
    if stripped.startswith("negmas:"):
        from agents.negmas_seat import negmas_agent  # NegMAS loads only for its seats

        return negmas_agent(stripped, party=party, seed=seed)
    if stripped.partition(":")[0] not in STRATEGIES:
        if stripped in registered(AGENT_GROUP):
            return cast(Agent, load_agent(stripped, seed=derive_seed(seed, party),
                                          party=party))
        if is_import_path(stripped):
            raise StrategyError(str(import_path_refused(stripped, "strategy")))
    name, params = parse_spec(spec)
    strategy = STRATEGIES.get(name)
    if strategy is None:
        raise StrategyError(f"unknown strategy '{name}'; choose one of "
                            f"{', '.join(strategy_names())}")
    if strategy.seeded:
        params = {"seed": derive_seed(seed, party), **params}
    try:
        return strategy.build(**params)
    except TypeError as error:
        raise StrategyError(f"'{spec}': {error}") from None
    except ValueError as error:
        raise StrategyError(f"'{spec}': {error}") from None


__all__ = [
    "STRATEGIES",
    "Agent",
    "History",
    "Memory",
    "Move",
    "StageRecord",
    "Strategy",
    "StrategyError",
    "View",
    "derive_seed",
    "make_agent",
    "strategy_names",
]
