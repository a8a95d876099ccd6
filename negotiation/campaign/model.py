"""Campaign files: the models of a campaign and its stages, loading and checking them, and
the scenario each negotiate stage builds; the results a run produces.

A campaign file names a base scenario and its stages.  A ``negotiate`` stage runs one
negotiation on the base scenario as the campaign has shaped it so far:

- ``fixed`` terms settle issues for this stage only (a pilot's small scope);
- ``keep`` settles issues at their value in the agreement in force (terms that must survive
  a scale-up);
- ``join`` adds partners, who also join every split issue (an existing split gives them 0);
- every party's reservation value is raised for distrust (see ``trust``).

An ``evaluate`` stage simulates how the agreement in force performed and updates trust
(see ``trust``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from agents import StrategyError, make_agent
from negotiation.engine import HUMAN, is_llm
from negotiation.model import (
    Identifier,
    Organization,
    ProtocolConfig,
    Scenario,
    Score,
    Strict,
    TermValue,
)
from negotiation.plugins import PluginError
from negotiation.scenario import (
    Problem,
    ScenarioError,
    load_scenario,
    resolve_scenario_path,
    scenario_from_data,
    validation_problems,
    yaml_mapping,
)
from negotiation.strict_yaml import StrictYamlError, read_data_file
from negotiation.transcript import canonical_json


class CampaignError(ScenarioError):
    """A campaign file cannot be used; the message names the file, each field and the fix."""

    what = "campaign"


class StageBase(Strict):
    id: Identifier
    title: str = ""


class NegotiateStage(StageBase):
    """Negotiate (again), on the base scenario as the campaign has shaped it so far."""

    kind: Literal["negotiate"]
    fixed: dict[str, TermValue] = Field(
        default_factory=dict, description="Terms settled for this stage only (a small scope).")
    keep: list[Identifier] = Field(
        default_factory=list, description="Issues kept at their value in the agreement in "
                                          "force.")
    join: list[Organization] = Field(
        default_factory=list, description="New partners, from this stage on.")
    status_quo: bool = Field(
        default=False, description="Without a new deal the agreement in force continues; "
                                   "its parties will not accept less.")
    memory: bool = Field(default=True, description="Agents see their record of earlier "
                                                   "stages.")
    protocol: ProtocolConfig | None = Field(
        default=None, description="This stage's protocol, if not the base scenario's.")
    rounds: int | None = Field(default=None, ge=1, le=100_000)
    agents: dict[str, str] = Field(default_factory=dict,
                                   description="Negotiator per organisation for this stage.")


class EvaluateStage(StageBase):
    """Simulate how the agreement in force performed, and update trust."""

    kind: Literal["evaluate"]
    reliability: dict[str, Score] = Field(
        default_factory=dict, description="How reliably each partner delivers (hidden truth).")
    default_reliability: Score = 0.8
    noise: float = Field(default=0.1, ge=0.0, le=1.0,
                         description="Standard deviation of delivery and of observation.")
    learning_rate: Score = Field(default=0.5, description="Weight of this evidence in trust.")


Stage = Annotated[NegotiateStage | EvaluateStage, Field(discriminator="kind")]


class Campaign(Strict):
    """A chain of negotiations and evaluations over one partnership."""

    id: Identifier
    title: str = Field(min_length=1)
    description: str = ""
    scenario: str = Field(min_length=1, description="Base scenario: a path relative to the "
                                                    "campaign file, or a shipped name.")
    seed: int = 0
    initial_trust: float = Field(default=0.8, gt=0.0, le=1.0,
                                 description="Every party's trust in a partner it has not "
                                             "worked with.")
    agents: dict[str, str] = Field(default_factory=dict,
                                   description="Negotiator per organisation, every stage.")
    stages: list[Stage] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedCampaign:
    campaign: Campaign
    base: Scenario
    source: str
    digest: str


def load_campaign(path: str | Path) -> LoadedCampaign:
    """Read and check a campaign file and its base scenario; ``CampaignError`` (naming the
    file, the field and the fix) or ``ScenarioError`` (for the base scenario) otherwise."""
    path = Path(path)
    source = str(path)
    try:
        text = read_data_file(path)
    except StrictYamlError as error:
        raise CampaignError(source, [Problem("", error.reason)]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CampaignError(source, [Problem("", f"cannot read the file: {error}")]) from None
    data = yaml_mapping(text, source, CampaignError, "id, title, scenario, stages")
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as error:
        raise CampaignError(source, list(validation_problems(error))) from None
    base = load_scenario(resolve_scenario_path(campaign.scenario, path.parent))
    problems = list(campaign_problems(campaign, base))
    if problems:
        raise CampaignError(source, problems)
    digest = hashlib.sha256(canonical_json(
        {"campaign": campaign.model_dump(mode="json"), "scenario": base.model_dump(mode="json")}
    ).encode()).hexdigest()
    return LoadedCampaign(campaign, base, source, digest)


def campaign_problems(campaign: Campaign, base: Scenario) -> Iterator[Problem]:
    """Rules relating the stages to each other and to the base scenario.  Every stage's
    scenario is built (with placeholder kept terms) and validated, so a broken partner
    is reported before anything runs."""
    seen: set[str] = set()
    parties = list(base.party_ids)
    issues = {issue.id for issue in base.issues}
    negotiated = False
    joined: list[tuple[str, Organization]] = []
    for i, stage in enumerate(campaign.stages):
        where = f"stages[{i}]"
        if stage.id in seen:
            yield Problem(f"{where}.id", f"duplicate stage id '{stage.id}'; give each stage "
                                         "its own id")
        seen.add(stage.id)
        if isinstance(stage, EvaluateStage):
            if not negotiated:
                yield Problem(f"{where}.kind", "an evaluation needs an agreement: put a "
                                               "negotiate stage before it")
            for party in stage.reliability:
                if party not in parties:
                    yield Problem(f"{where}.reliability.{party}",
                                  f"'{party}' is not a party at this point; use one of "
                                  f"{parties}")
            continue
        for k, issue_id in enumerate(stage.keep):
            if issue_id not in issues:
                yield Problem(f"{where}.keep[{k}]", f"'{issue_id}' is not an issue; use one "
                                                    f"of {sorted(issues)}")
            if issue_id in stage.fixed:
                yield Problem(f"{where}.keep[{k}]", f"'{issue_id}' is also in 'fixed'; keep "
                                                    "it or fix it, not both")
        if (stage.keep or stage.status_quo) and not negotiated:
            yield Problem(f"{where}.{'keep' if stage.keep else 'status_quo'}",
                          "there is no earlier agreement yet; remove it from the first "
                          "negotiate stage")
        for j, org in enumerate(stage.join):
            if org.id in parties:
                yield Problem(f"{where}.join[{j}].id", f"'{org.id}' is already a party; give "
                                                      "the new partner another id")
            parties.append(org.id)
            joined.append((f"{where}.join[{j}]", org))
        for party, spec in stage.agents.items():
            if party not in parties:
                yield Problem(f"{where}.agents.{party}", f"'{party}' is not a party at this "
                                                         f"point; use one of {parties}")
            yield from _strategy_problems(f"{where}.agents.{party}", spec)
        data = stage_data(base, [org for _, org in joined], stage, stage.fixed, {})
        try:
            scenario_from_data(data, campaign.id)
        except ScenarioError as error:
            for problem in error.problems:
                yield Problem(_stage_path(where, problem.path, len(base.organizations),
                                          [path for path, _ in joined]), problem.message)
        negotiated = True
    for party, spec in campaign.agents.items():
        if party not in parties:
            yield Problem(f"agents.{party}", f"'{party}' is never a party; use one of {parties}")
        yield from _strategy_problems(f"agents.{party}", spec)


def _strategy_problems(where: str, spec: str) -> Iterator[Problem]:
    """A rule-based strategy spec that cannot be built (LLM and human seats are checked
    when their stage starts: they need settings and a terminal)."""
    if spec == HUMAN or is_llm(spec):
        return
    try:
        make_agent(spec, party="check", seed=0)
    except (StrategyError, PluginError) as error:
        yield Problem(where, str(error))


def _stage_path(where: str, path: str, base_count: int, joined: list[str]) -> str:
    """A problem in a stage's built scenario, named where the user wrote it."""
    if path.startswith("organizations["):
        index = int(path[len("organizations["):path.index("]")])
        if index >= base_count:
            return joined[index - base_count] + path[path.index("]") + 1:]
    return f"{where} (the scenario built for this stage): {path or '(top level)'}"


def stage_data(base: Scenario, joined: list[Organization], stage: NegotiateStage,
               fixed: Mapping[str, TermValue], reservations: Mapping[str, float]
               ) -> dict[str, Any]:
    """A stage's scenario as plain data to validate: the base scenario with partners joined
    (to every split issue), terms fixed, reservation values replaced and the stage's
    title, protocol and deadline."""
    data = base.model_dump(mode="json")
    data["organizations"] = [org.model_dump(mode="json")
                             for org in (*base.organizations, *joined)]
    for issue in data["issues"]:
        if issue["kind"] == "split":
            issue["parties"] = [*issue["parties"],
                                *(org.id for org in joined if org.id not in issue["parties"])]
    for org in data["organizations"]:
        if org["id"] in reservations:
            org["preferences"]["reservation_value"] = reservations[org["id"]]
    data["fixed"] = {**base.fixed, **fixed}
    if stage.title:
        data["title"] = f"{base.title}: {stage.title}"
    if stage.protocol is not None:
        data["protocol"] = stage.protocol.model_dump(mode="json")
    if stage.rounds is not None:
        data["protocol"] = {**data["protocol"], "rounds": stage.rounds}
    return data


@dataclass
class InForce:
    """The agreement the partnership currently lives by."""

    stage: str
    terms: dict[str, TermValue]
    parties: list[str]
    utilities: dict[str, float]


@dataclass
class StageResult:
    """One finished stage, as ``campaign.json`` and the summary show it."""

    index: int
    id: str
    kind: str
    title: str
    transcript: str
    link: dict[str, Any]
    status: str
    reason: str
    parties: list[str]
    rounds: int | None = None
    #: The agreement in force after this stage (``None``: the partnership has none).
    terms: dict[str, TermValue] | None = None
    #: Utility of the agreement in force per party (negotiate) or realised value (evaluate).
    values: dict[str, float] = field(default_factory=dict)
    #: Trust after the stage: truster → partner → trust.
    trust: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Reservation values used in a negotiate stage, after distrust and status quo.
    reservations: dict[str, float] = field(default_factory=dict)


@dataclass
class CampaignResult:
    campaign: Campaign
    folder: Path
    stages: list[StageResult]
    stopped: str | None = None

