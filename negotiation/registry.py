"""What a scenario names — strategies, protocol, custom guardrail checks — checked against
the registry (built-ins, installed entry points, ``--plugin``) before anything runs.

Loading a registered extension imports code the user installed or named on the command
line; a name that is not registered, and in particular an import path written in the file,
is reported as a problem and never imported (see :mod:`negotiation.plugins`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from agents import StrategyError, make_agent
from negotiation.checks import get_check
from negotiation.engine import HUMAN, is_llm
from negotiation.model import Scenario
from negotiation.plugins import CheckOptionsError, PluginError
from negotiation.scenario import Problem
from protocols import UnknownProtocolError, get_protocol


def strategy_problem(spec: str) -> str | None:
    """Why ``spec`` cannot seat a rule-based agent, or ``None`` if it can.  LLM and human
    seats are checked when they sit down: they need settings and a terminal."""
    if spec == HUMAN or is_llm(spec):
        return None
    try:
        make_agent(spec, party="check", seed=0)
    except (StrategyError, PluginError) as error:
        return str(error)
    return None


def extension_problems(scenario: Scenario) -> Iterator[Problem]:
    """Every strategy, protocol and custom check the scenario names that ``run`` would
    refuse, with the field that names it."""
    for i, organization in enumerate(scenario.organizations):
        problem = strategy_problem(organization.agent.strategy)
        if problem is not None:
            yield Problem(f"organizations[{i}].agent.strategy", problem)
    try:
        protocol = get_protocol(scenario.protocol.name)
    except (UnknownProtocolError, PluginError) as error:
        yield Problem("protocol.name", str(error))
    else:
        for name, problem in protocol.config_problems(scenario.protocol,
                                                      scenario.party_ids).items():
            yield Problem(f"protocol.{name}", problem)
    for k, custom in enumerate(scenario.guardrails.custom):
        where = f"guardrails.custom[{k}]"
        try:
            get_check(custom.use, custom.options)
        except CheckOptionsError as error:
            yield Problem(f"{where}.options", str(error))
        except PluginError as error:
            yield Problem(f"{where}.use", str(error))


def header_problems(agents: Mapping[str, str], scenario: Scenario) -> Iterator[Problem]:
    """What a transcript header names that ``resume`` would refuse: the agents it seats
    and everything its embedded scenario names."""
    for party, spec in agents.items():
        refused = strategy_problem(spec)
        if refused is not None:
            yield Problem(f"header.agents.{party}", refused)
    for problem in extension_problems(scenario):
        yield Problem(f"header.scenario.{problem.path}", problem.message)
