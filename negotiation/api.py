"""The stable public API for extensions: import from here, and only from here.

Write an agent, a protocol or a guardrail check in your own module, then use it by import
path (``--agent vendor=mypkg.strategies:Tough``, ``protocol: {name: mypkg.rules:Mine}``,
``guardrails: {custom: [{use: mypkg.checks:NoLockIn}]}``) or announce it through an entry
point in the groups ``negotiation.agents``, ``negotiation.protocols`` or
``negotiation.guardrails``.

- An **agent** has ``async def act(self, view: View) -> Action``.  Its constructor may take
  ``seed`` and ``party`` (both are offered when it is created).
- A **protocol** implements ``NegotiationProtocol``: ``start``, ``legal_actions``, ``apply``
  and ``pass_turn`` over a ``ProtocolState``, as pure functions, plus the hooks the engine,
  referee and prompts ask (subclass ``ProtocolBase`` for their defaults).
- A **guardrail check** has a ``name`` and ``check(scenario, terms, subject) ->
  list[Failure]``; the scenario's policy decides whether a failure warns or blocks.

For notebooks and scripts: ``run(scenario, agents=..., seed=...)`` plays one negotiation
and blocks until it ends (also inside Jupyter's event loop; ``arun`` is the async form),
returning a ``RunResult`` with the outcome, the fairness report, the transcript path and
``events_frame()`` / ``offers_frame()`` DataFrames; ``tournament(...)`` returns its rows as
a DataFrame.  ``run_scenario`` is the async engine entry, as before.
"""

from __future__ import annotations

from agents.base import Agent, History, Move, View, derive_seed
from agents.rule_based import Bidder, TimeDependentCurve
from negotiation.analysis import SpaceAnalysis, pareto_mask, shapley_values
from negotiation.engine import run_scenario
from negotiation.guardrails import Failure, Feedback, Finding, GuardrailCheck, Verdict
from negotiation.model import (
    Accept,
    Action,
    ActionKind,
    Issue,
    Offer,
    Organization,
    Preferences,
    Propose,
    PublicScenario,
    RedLine,
    Scenario,
    TermValue,
    WalkAway,
)
from negotiation.notebook import RunResult, arun, run, tournament
from negotiation.scenario import ScenarioError, load_scenario, parse_scenario
from negotiation.utility import OutcomeSpace, UtilityFunction, red_line_mask, violates
from protocols.base import IllegalActionError, NegotiationProtocol, ProtocolBase, ProtocolState

__all__ = [
    "Accept",
    "Action",
    "ActionKind",
    "Agent",
    "Bidder",
    "Failure",
    "Feedback",
    "Finding",
    "GuardrailCheck",
    "History",
    "IllegalActionError",
    "Issue",
    "Move",
    "NegotiationProtocol",
    "Offer",
    "Organization",
    "OutcomeSpace",
    "Preferences",
    "Propose",
    "ProtocolBase",
    "ProtocolState",
    "PublicScenario",
    "RedLine",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SpaceAnalysis",
    "TermValue",
    "TimeDependentCurve",
    "UtilityFunction",
    "Verdict",
    "View",
    "WalkAway",
    "arun",
    "derive_seed",
    "load_scenario",
    "pareto_mask",
    "parse_scenario",
    "red_line_mask",
    "run",
    "run_scenario",
    "shapley_values",
    "tournament",
    "violates",
]
