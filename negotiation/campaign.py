"""Campaigns: a partnership's arc as a chain of stages — pilot, evaluation, renegotiation,
scale-up — with one linked transcript per stage.

A campaign file names a base scenario and its stages.  A ``negotiate`` stage runs one
negotiation on the base scenario as the campaign has shaped it so far:

- ``fixed`` terms settle issues for this stage only (a pilot's small scope);
- ``keep`` settles issues at their value in the agreement in force (terms that must survive
  a scale-up);
- ``join`` adds partners, who also join every split issue (an existing split gives them 0);
- every party's reservation value is raised for distrust.  A party that trusts its partners
  at the table τ (mean, in [0, 1]) expects τ·u from a deal worth u, so it accepts only if

      τ·u ≥ max(r, τ_sq·u_sq)   ⇒   reservation = min(0.99, max(r, τ_sq·u_sq) / τ)

  with r the utility of its BATNA and, when the stage has ``status_quo: true``, u_sq its
  utility of the agreement in force and τ_sq its trust in the partners to it: without a new
  deal, the old one continues.

An ``evaluate`` stage simulates how the agreement in force performed: each partner delivers
``reliability + N(0, noise)`` (clipped to [0, 1]), each party observes that with its own
``N(0, noise)`` error and updates its trust by exponential smoothing,
``τ ← (1 − learning_rate)·τ + learning_rate·observed``; a party realises its utility of the
agreement times the mean delivery of its partners.  Every draw comes from the campaign seed.

Agents remember: a later stage's view carries each party's own record of the earlier ones
(outcomes, terms, its own trust) and the agreement in force, so rule-based agents anchor on
it and LLM agents read it in their prompt.  Each stage's transcript header links the
previous stage's outcome event by file, sequence number and hash; ``campaign.json`` lists
them all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationError

from agents import Memory, StageRecord, StrategyError, derive_seed, make_agent
from negotiation import files
from negotiation.engine import (
    HUMAN,
    EventHook,
    Negotiation,
    agent_specs,
    build_agents,
    is_llm,
    package_version,
)
from negotiation.errors import InputError
from negotiation.model import (
    Identifier,
    Organization,
    ProtocolConfig,
    Scenario,
    Score,
    SplitIssue,
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
from negotiation.transcript import (
    FORMAT,
    TranscriptError,
    TranscriptWriter,
    canonical_json,
    now,
    verify,
)
from negotiation.utility import InvalidOfferError, OutcomeSpace

if TYPE_CHECKING:
    from agents.llm import LLMRun

MANIFEST = "campaign.json"
#: LLM requests and replies of a campaign, for ``--replay``.
LLM_CALLS = "llm-calls.jsonl"
MANIFEST_FORMAT = "negotiation-campaign/1"
#: No distrust raises a reservation value above this: some deal must stay conceivable.
MAX_RESERVATION = 0.99


class CampaignError(ScenarioError):
    """A campaign file cannot be used; the message names the file, each field and the fix."""

    what = "campaign"


# --- the campaign file ----------------------------------------------------------------------


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


# --- running --------------------------------------------------------------------------------


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


StageHook = Callable[[StageResult], None]


class CampaignRunner:
    """Runs the stages in order, carrying the agreement in force, trust and memories."""

    def __init__(self, loaded: LoadedCampaign, folder: Path, *, seed: int | None = None,
                 agents: Mapping[str, str] | None = None, fsync: bool = True,
                 llm_run: LLMRun | None = None, on_event: EventHook | None = None) -> None:
        self.loaded = loaded
        self.llm_run = llm_run
        self.on_event = on_event
        self.campaign = loaded.campaign
        self.base = loaded.base
        self.folder = folder
        self.seed = self.campaign.seed if seed is None else seed
        self.overrides = {**self.campaign.agents, **(agents or {})}
        self.fsync = fsync
        self.joined: list[Organization] = []
        self.in_force: InForce | None = None
        parties = self.base.party_ids
        self.trust = {q: {p: self.campaign.initial_trust for p in parties if p != q}
                      for q in parties}
        self.records: dict[str, list[StageRecord]] = {party: [] for party in parties}
        self.results: list[StageResult] = []
        self.previous: dict[str, Any] | None = None

    @property
    def parties(self) -> list[str]:
        return [*self.base.party_ids, *(org.id for org in self.joined)]

    def organization(self, party: str) -> Organization:
        return next(org for org in (*self.base.organizations, *self.joined) if org.id == party)

    async def run(self, on_stage: StageHook | None = None) -> CampaignResult:
        """Run every stage into ``folder``, which must exist."""
        result = CampaignResult(self.campaign, self.folder, self.results)
        llm_run, own = self.llm_run, False
        if llm_run is None and any(is_llm(spec) for spec in self._all_specs()):
            from agents.llm import LLMRun

            # Every reply is kept beside the transcripts: the campaign replays offline.
            llm_run, own = LLMRun(record=self.folder / LLM_CALLS), True
        try:
            for index, stage in enumerate(self.campaign.stages):
                needs = isinstance(stage, EvaluateStage) or (
                    isinstance(stage, NegotiateStage) and stage.keep)
                if needs and self.in_force is None:
                    result.stopped = (f"stopped before '{stage.id}': the partnership has no "
                                      "agreement in force")
                    break
                path = self.folder / f"{index + 1:02d}-{stage.id}.jsonl"
                if isinstance(stage, EvaluateStage):
                    stage_result = self._evaluate(index, stage, path)
                else:
                    stage_result = await self._negotiate(index, stage, path, llm_run)
                self.results.append(stage_result)
                self._write_manifest(result)
                if on_stage is not None:
                    on_stage(stage_result)
        finally:
            if own and llm_run is not None:
                await llm_run.aclose()
        self._write_manifest(result)
        return result

    def _all_specs(self) -> Iterator[str]:
        yield from self.overrides.values()
        yield from (org.agent.strategy for org in self.base.organizations)
        for stage in self.campaign.stages:
            if isinstance(stage, NegotiateStage):
                yield from stage.agents.values()
                yield from (org.agent.strategy for org in stage.join)

    def _link(self, index: int, stage: NegotiateStage | EvaluateStage) -> dict[str, Any]:
        return {"id": self.campaign.id, "digest": self.loaded.digest, "stage": stage.id,
                "index": index, "kind": stage.kind, "seed": self.seed,
                "previous": None if self.previous is None else {
                    key: self.previous[key] for key in ("transcript", "seq")}}

    def _wall(self) -> dict[str, Any]:
        """The previous stage's event hash: it depends on wall-clock times, so it lives with
        them (still inside this event's hash)."""
        return {} if self.previous is None else {"previous_hash": self.previous["hash"]}

    def _finish_link(self, path: Path, writer: TranscriptWriter) -> None:
        end = _stage_end(writer.events)
        assert end is not None  # a finished stage has its outcome or evaluation
        self.previous = {"transcript": path.name, "seq": end["seq"], "hash": end["hash"]}

    def _mean_trust(self, party: str, partners: list[str]) -> float:
        others = [self.trust[party][p] for p in partners if p != party]
        return float(np.mean(others)) if others else 1.0

    def reservations(self, stage: NegotiateStage, parties: list[str]) -> dict[str, float]:
        """Each party's reservation value at this table (see the module docstring)."""
        result = {}
        for party in parties:
            fallback = self.organization(party).preferences.reservation_value
            in_force = self.in_force
            if stage.status_quo and in_force is not None and party in in_force.parties:
                fallback = max(fallback, self._mean_trust(party, in_force.parties)
                               * in_force.utilities[party])
            result[party] = round(min(MAX_RESERVATION,
                                      fallback / self._mean_trust(party, parties)), 4)
        return result

    async def _negotiate(self, index: int, stage: NegotiateStage, path: Path,
                         llm_run: LLMRun | None) -> StageResult:
        for org in stage.join:
            self.joined.append(org)
            for party in self.trust:
                self.trust[party][org.id] = self.campaign.initial_trust
            self.trust[org.id] = {p: self.campaign.initial_trust for p in self.parties
                                  if p != org.id}
            self.records[org.id] = []
        parties = self.parties
        fixed = dict(stage.fixed)
        if stage.keep:
            assert self.in_force is not None
            fixed |= {issue: self.in_force.terms[issue] for issue in stage.keep}
        reservations = self.reservations(stage, parties)
        data = stage_data(self.base, self.joined, stage,
                          _with_new_parties(self.base, fixed, parties), reservations)
        scenario = scenario_from_data(data, f"{self.loaded.source}, stage '{stage.id}'")
        negotiation = Negotiation(scenario)
        specs = agent_specs(scenario, {**{p: s for p, s in self.overrides.items()
                                          if p in parties}, **stage.agents})
        seed = derive_seed(self.seed, stage.id) % 2**31
        agents = build_agents(specs, seed, scenario, llm_run)
        memory = self._memories(stage, negotiation.space, scenario) if stage.memory else {}
        link = self._link(index, stage)
        options = {"campaign": {**link, "trust": _rounded(self.trust, parties),
                                "reservation_values": reservations}}
        with TranscriptWriter(path, fsync=self.fsync) as writer:
            session = negotiation.session(agents, seed=seed, writer=writer, specs=specs,
                                          options=options, memory=memory,
                                          on_event=self.on_event)
            session.open(wall=self._wall())
            while not session.done:
                await session.turn()
            run = session.finish()
            self._finish_link(path, writer)
        status, reason = run.status, run.reason
        if run.agreement is not None:
            self.in_force = InForce(stage.id, dict(run.agreement.terms),
                                    list(run.agreement.parties), dict(run.utilities))
        elif stage.status_quo and self.in_force is not None:
            reason = f"{reason}; the agreement of '{self.in_force.stage}' stays in force"
        else:
            self.in_force = None
        moves = tuple(session.moves)
        for party in parties:
            self.records[party].append(StageRecord(
                stage=stage.id, kind=stage.kind, status=status,
                agreement=None if run.agreement is None else dict(run.agreement.terms),
                moves=moves, trust=dict(self.trust[party])))
        return StageResult(
            index=index, id=stage.id, kind=stage.kind, title=stage.title,
            transcript=path.name, link=link, status=status, reason=reason, parties=parties,
            rounds=run.rounds, terms=None if self.in_force is None else self.in_force.terms,
            values={} if self.in_force is None else dict(self.in_force.utilities),
            trust=_rounded(self.trust, parties), reservations=reservations)

    def _memories(self, stage: NegotiateStage, space: OutcomeSpace, scenario: Scenario
                  ) -> dict[str, Memory]:
        status_quo = None
        if self.in_force is not None:
            terms = _with_new_parties(scenario, self.in_force.terms, scenario.party_ids)
            try:
                status_quo = space.offer(space.index_of(terms))
            except InvalidOfferError:  # this stage fixes terms the old deal set otherwise
                status_quo = None
        return {party: Memory(earlier=tuple(self.records[party]), status_quo=status_quo,
                              trust={p: self.trust[party][p] for p in scenario.party_ids
                                     if p != party})
                for party in scenario.party_ids
                if self.records[party] or status_quo is not None}

    def _evaluate(self, index: int, stage: EvaluateStage, path: Path) -> StageResult:
        in_force = self.in_force
        assert in_force is not None
        parties = in_force.parties
        rng = np.random.default_rng(derive_seed(self.seed, stage.id))
        delivered = {p: _clip(stage.reliability.get(p, stage.default_reliability)
                              + rng.normal(0.0, stage.noise)) for p in parties}
        before = _rounded(self.trust, parties)
        observed: dict[str, dict[str, float]] = {}
        for q in parties:
            observed[q] = {}
            for p in parties:
                if p == q:
                    continue
                seen = _clip(delivered[p] + rng.normal(0.0, stage.noise))
                observed[q][p] = seen
                self.trust[q][p] = round((1 - stage.learning_rate) * self.trust[q][p]
                                         + stage.learning_rate * seen, 6)
        realised = {q: round(in_force.utilities[q] * float(np.mean(
            [delivered[p] for p in parties if p != q])), 6) for q in parties}
        link = self._link(index, stage)
        with TranscriptWriter(path, fsync=self.fsync) as writer:
            writer.append("header", {
                "format": FORMAT, "kind": "evaluation", "scenario_id": self.base.id,
                "parties": parties, "seed": self.seed, "version": package_version(),
                "options": {"campaign": link}}, wall=self._wall())
            writer.append("evaluation", {
                "agreement_in_force": {"stage": in_force.stage, "terms": in_force.terms,
                                       "utilities": in_force.utilities},
                "model": stage.model_dump(mode="json", exclude={"id", "title", "kind"}),
                "delivered": delivered, "observed": observed, "trust_before": before,
                "trust_after": _rounded(self.trust, parties), "realised": realised})
            self._finish_link(path, writer)
        for party in parties:
            self.records[party].append(StageRecord(
                stage=stage.id, kind=stage.kind, status="evaluated",
                agreement=in_force.terms, trust=dict(self.trust[party]),
                realised=realised[party]))
        mean_delivery = float(np.mean(list(delivered.values())))
        return StageResult(
            index=index, id=stage.id, kind=stage.kind, title=stage.title,
            transcript=path.name, link=link, status="evaluated",
            reason=f"partners delivered {mean_delivery:.0%} on average", parties=parties,
            terms=in_force.terms, values=realised, trust=_rounded(self.trust, parties))

    def _write_manifest(self, result: CampaignResult) -> None:
        """``campaign.json``, replaced atomically after every stage."""
        body = {
            "format": MANIFEST_FORMAT, "campaign": self.campaign.id,
            "title": self.campaign.title, "digest": self.loaded.digest, "seed": self.seed,
            "source": Path(self.loaded.source).name, "stopped": result.stopped,
            "stages": [{"index": s.index, "id": s.id, "kind": s.kind, "title": s.title,
                        "transcript": s.transcript, "status": s.status, "reason": s.reason,
                        "parties": s.parties, "rounds": s.rounds, "terms": s.terms,
                        "values": s.values, "trust": s.trust,
                        "reservation_values": s.reservations}
                       for s in self.results],
        }
        try:
            files.write_file(self.folder / MANIFEST,
                             json.dumps(body, indent=2, sort_keys=True) + "\n", replace=True)
        except files.OutputError as error:
            raise TranscriptError(str(error)) from None


def _with_new_parties(scenario: Scenario, terms: Mapping[str, TermValue], parties: list[str]
                      ) -> dict[str, TermValue]:
    """Terms carried into a larger partnership: a newcomer's share of an old split is 0."""
    splits = {issue.id for issue in scenario.issues if isinstance(issue, SplitIssue)}
    return {issue: ({**{p: 0 for p in parties}, **value}
                    if issue in splits and isinstance(value, dict) else value)
            for issue, value in terms.items()}


def _clip(value: float) -> float:
    return round(min(max(float(value), 0.0), 1.0), 6)


def _rounded(trust: Mapping[str, Mapping[str, float]], parties: list[str]
             ) -> dict[str, dict[str, float]]:
    return {q: {p: round(trust[q][p], 6) for p in parties if p != q} for q in parties}


def new_campaign_folder(out_dir: Path, campaign: Campaign, seed: int) -> Path:
    """``<out>/<campaign>-seed<N>-<UTC time>/``, not existing yet."""
    stem = f"{campaign.id}-seed{seed}-{now():%Y%m%dT%H%M%SZ}"
    folder, n = out_dir / stem, 1
    while folder.exists():
        n += 1
        folder = out_dir / f"{stem}-{n}"
    return folder


async def run_campaign(loaded: LoadedCampaign, out_dir: Path, *, seed: int | None = None,
                       agents: Mapping[str, str] | None = None, fsync: bool = True,
                       on_stage: StageHook | None = None, llm_run: LLMRun | None = None,
                       on_event: EventHook | None = None) -> CampaignResult:
    """Run every stage into a new folder under ``out_dir``.  LLM agents use ``llm_run``
    (e.g. one that replays a recording), else one that records to ``llm-calls.jsonl`` in
    the folder.  ``on_event`` sees every event of the negotiation stages as it happens."""
    parties = {*loaded.base.party_ids, *(org.id for stage in loaded.campaign.stages
                                         if isinstance(stage, NegotiateStage)
                                         for org in stage.join)}
    unknown = set(agents or {}) - parties
    if unknown:
        raise InputError(f"--agent names unknown organisation(s) {sorted(unknown)}; choose "
                       f"from {sorted(parties)}")
    campaign_seed = loaded.campaign.seed if seed is None else seed
    folder = new_campaign_folder(out_dir, loaded.campaign, campaign_seed)
    try:
        folder.mkdir(parents=True)
    except OSError as error:
        raise TranscriptError(f"cannot create the campaign folder {folder}: "
                              f"{error.strerror or error}") from None
    runner = CampaignRunner(loaded, folder, seed=campaign_seed, agents=agents, fsync=fsync,
                            llm_run=llm_run, on_event=on_event)
    return await runner.run(on_stage)


# --- checking a campaign folder -------------------------------------------------------------


def verify_campaign(folder: Path) -> list[str]:
    """Problems with a campaign folder: a transcript whose chain fails, or a stage whose
    link does not match the previous stage's event.  Empty when everything holds."""
    try:
        manifest = read_manifest(folder)
    except TranscriptError as error:
        return [str(error)]
    problems: list[str] = []
    previous: dict[str, Any] | None = None
    for stage in manifest.get("stages", []):
        path = folder / stage["transcript"]
        try:
            checked = verify(path)
        except TranscriptError as error:
            problems.append(str(error))
            previous = None
            continue
        if not checked.ok:
            problems.append(f"{path.name}: TAMPERED ({checked.reason})")
        header = checked.events[0] if checked.events else {}
        link = header.get("options", {}).get("campaign", {})
        expected = None if previous is None else {
            "transcript": previous["transcript"], "seq": previous["seq"]}
        if link.get("previous") != expected or \
                header.get("wall", {}).get("previous_hash") != (previous or {}).get("hash"):
            problems.append(f"{path.name}: its link does not match the previous stage "
                            f"({'none' if expected is None else expected['transcript']})")
        if link.get("digest") != manifest.get("digest"):
            problems.append(f"{path.name}: written by another campaign (digest differs)")
        last = _stage_end(checked.events)
        previous = None if last is None else {"transcript": path.name, "seq": last["seq"],
                                              "hash": last["hash"]}
    return problems


def _stage_end(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The event a next stage links to: the outcome, or the evaluation (sign-offs may be
    appended after it)."""
    return next((e for e in events if e["type"] in {"outcome", "evaluation"}), None)


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TranscriptError(f"{folder / MANIFEST}: cannot read ({error})") from None
    return data

