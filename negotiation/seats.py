"""Who sits at the table: each organisation's strategy, the agents built from it, and the
one place where the shared LLM client (``LLMRun``) of a run is made."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agents import Agent, StrategyError, make_agent
from negotiation import files
from negotiation.errors import InputError
from negotiation.model import LLMSettings, Scenario
from negotiation.transcript import TranscriptError

if TYPE_CHECKING:
    from agents.budget import Budget
    from agents.llm_client import LLMRun

HUMAN = "human"
LLM = "llm"


def agent_specs(scenario: Scenario, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The strategy spec for each organisation: the command line's, else the scenario's."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(scenario.party_ids)
    if unknown:
        raise InputError(f"--agent names unknown organisation(s) {sorted(unknown)}; "
                         f"choose from {scenario.party_ids}")
    return {org.id: overrides.get(org.id, org.agent.strategy) for org in scenario.organizations}


def is_llm(spec: str) -> bool:
    return spec == LLM or spec.startswith(LLM + ":")


def llm_settings(spec: str, party: str, scenario: Scenario | None) -> LLMSettings:
    configured = scenario.organization(party).agent.llm if scenario is not None else None
    model = spec.partition(":")[2].strip()
    if configured is None and not model:
        raise StrategyError(f"'{party}' uses an LLM agent but names no model: write "
                            f"--agent {party}=llm:MODEL or give agent.llm.model in the "
                            "scenario")
    if configured is None:
        return LLMSettings(model=model)
    return configured.model_copy(update={"model": model}) if model else configured


@dataclass(frozen=True)
class LLMOptions:
    """How a run's LLM agents reach their model: a budget, and recording or replay."""

    budget: Budget | None = None
    #: Store every request/reply pair in this file.
    record: Path | None = None
    #: Answer from this recording, offline.
    replay: Path | None = None
    #: Record to ``record`` but answer the requests already recorded there (resumed runs).
    replay_first: bool = False
    #: Replay even a recording made for another scenario, seed or agent set.
    replay_anyway: bool = False


def new_llm_run(options: LLMOptions | None = None) -> LLMRun:
    """The shared client of a run's LLM agents (close it with ``aclose``); the recording is
    never written through a symlink."""
    from agents.llm_client import LLMRun  # the openai SDK loads only when an LLM sits

    options = options or LLMOptions()
    if options.record is not None:
        try:
            files.refuse_symlink(options.record)  # refused now, not mid-run
        except files.OutputError as error:
            raise TranscriptError(f"cannot record the replies: {error}") from None
    run = LLMRun(record=options.record, replay=options.replay,
                 replay_first=options.replay_first, replay_anyway=options.replay_anyway)
    if options.budget is not None:
        run.budget = options.budget
    return run


def build_agents(specs: Mapping[str, str], seed: int, scenario: Scenario | None = None,
                 llm_run: LLMRun | None = None,
                 human: Callable[[], Agent] | None = None) -> dict[str, Agent]:
    """An agent per party.  ``human`` seats a person (by default at this terminal); ``llm``
    uses the organisation's ``agent.llm`` settings and ``llm:MODEL`` names the model."""
    agents: dict[str, Agent] = {}
    for party, spec in specs.items():
        if spec == HUMAN:
            if human is None:
                from agents.human import HumanAgent  # the terminal seat: rich loads only here

                human = HumanAgent
            agents[party] = human()
        elif is_llm(spec):
            from agents.llm import LLMAgent

            llm_run = llm_run or new_llm_run()
            settings = llm_settings(spec, party, scenario)
            try:
                llm_run.api_key(settings)  # a missing key is refused before the run starts
            except StrategyError as error:
                raise StrategyError(f"'{party}': {error}") from None
            budget = llm_run.budget
            if budget.max_cost is not None and settings.model not in budget.prices:
                raise StrategyError(f"'{party}': a cost budget is set but the price table "
                                    f"has no price for model '{settings.model}'; add it "
                                    "to the --prices file")
            agents[party] = LLMAgent(settings, llm_run)
        else:
            agents[party] = make_agent(spec, party=party, seed=seed)
    return agents
