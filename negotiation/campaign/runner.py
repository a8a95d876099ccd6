"""The campaign runner: runs the stages in order, carrying the agreement in force, trust
and memories from one stage to the next, one linked transcript per stage.

Agents remember: a later stage's view carries each party's own record of the earlier ones
(outcomes, terms, its own trust) and the agreement in force, so rule-based agents anchor on
it and LLM agents read it in their prompt.  Each stage's transcript header links the
previous stage's outcome event by file, sequence number and hash; ``campaign.json`` lists
them all.  Every draw comes from the campaign seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents import Memory, StageRecord, derive_seed
from negotiation.campaign.manifest import stage_end, write_manifest
from negotiation.campaign.model import (
    Campaign,
    CampaignResult,
    EvaluateStage,
    InForce,
    LoadedCampaign,
    NegotiateStage,
    StageResult,
    stage_data,
)
from negotiation.campaign.trust import evaluate, reservation_values, rounded
from negotiation.engine import (
    EventHook,
    LLMOptions,
    analysis_of,
    is_llm,
    new_llm_run,
    open_run,
    package_version,
)
from negotiation.errors import InputError
from negotiation.events import EventType
from negotiation.model import Organization, Scenario, SplitIssue, TermValue
from negotiation.scenario import scenario_from_data
from negotiation.transcript import FORMAT, TranscriptError, TranscriptWriter, now
from negotiation.utility import InvalidOfferError, OutcomeSpace

if TYPE_CHECKING:
    from agents.llm_client import LLMRun

#: LLM requests and replies of a campaign, for ``--replay``.
LLM_CALLS = "llm-calls.jsonl"

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
            # Every reply is kept beside the transcripts: the campaign replays offline.
            llm_run, own = new_llm_run(LLMOptions(record=self.folder / LLM_CALLS)), True
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
                write_manifest(self.loaded, self.seed, result)
                if on_stage is not None:
                    on_stage(stage_result)
        finally:
            if own and llm_run is not None:
                await llm_run.aclose()
        write_manifest(self.loaded, self.seed, result)
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
        end = stage_end(writer.events)
        assert end is not None  # a finished stage has its outcome or evaluation
        self.previous = {"transcript": path.name, "seq": end["seq"], "hash": end["hash"]}

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
        reservations = reservation_values(
            self.trust, parties,
            {p: self.organization(p).preferences.reservation_value for p in parties},
            self.in_force if stage.status_quo else None)
        data = stage_data(self.base, self.joined, stage,
                          _with_new_parties(self.base, fixed, parties), reservations)
        scenario = scenario_from_data(data, f"{self.loaded.source}, stage '{stage.id}'")
        overrides = {**{p: s for p, s in self.overrides.items() if p in parties},
                     **stage.agents}
        seed = derive_seed(self.seed, stage.id) % 2**31
        memory = self._memories(stage, analysis_of(scenario).space, scenario) \
            if stage.memory else {}
        link = self._link(index, stage)
        options = {"campaign": {**link, "trust": rounded(self.trust, parties),
                                "reservation_values": reservations}}
        async with open_run(scenario, agents=overrides, seed=seed, transcript=path,
                            fsync=self.fsync, llm_run=llm_run, on_event=self.on_event,
                            options=options, memory=memory, wall=self._wall()) as opened:
            session = opened.session
            run = await opened.play()
            self._finish_link(path, opened.writer)
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
            trust=rounded(self.trust, parties), reservations=reservations)

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
        before = rounded(self.trust, parties)
        evaluation = evaluate(stage, in_force, self.trust, rng)
        self.trust = evaluation.trust
        delivered, realised = evaluation.delivered, evaluation.realised
        link = self._link(index, stage)
        with TranscriptWriter(path, fsync=self.fsync) as writer:
            writer.append(EventType.HEADER, {
                "format": FORMAT, "kind": "evaluation", "scenario_id": self.base.id,
                "parties": parties, "seed": self.seed, "version": package_version(),
                "options": {"campaign": link}}, wall=self._wall())
            writer.append(EventType.EVALUATION, {
                "agreement_in_force": {"stage": in_force.stage, "terms": in_force.terms,
                                       "utilities": in_force.utilities},
                "model": stage.model_dump(mode="json", exclude={"id", "title", "kind"}),
                "delivered": delivered, "observed": evaluation.observed,
                "trust_before": before,
                "trust_after": rounded(self.trust, parties), "realised": realised})
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
            terms=in_force.terms, values=realised, trust=rounded(self.trust, parties))


def _with_new_parties(scenario: Scenario, terms: Mapping[str, TermValue], parties: list[str]
                      ) -> dict[str, TermValue]:
    """Terms carried into a larger partnership: a newcomer's share of an old split is 0."""
    splits = {issue.id for issue in scenario.issues if isinstance(issue, SplitIssue)}
    return {issue: ({**{p: 0 for p in parties}, **value}
                    if issue in splits and isinstance(value, dict) else value)
            for issue, value in terms.items()}


def new_campaign_folder(out_dir: Path, campaign: Campaign, seed: int) -> Path:
    """Create and return ``<out>/<campaign>-seed<N>-<UTC time>/`` (``-2``, ``-3`` … when
    taken).  ``mkdir`` is exclusive, so campaigns started in one folder in the same second
    each get their own folder: checking for a free name first would hand them the same."""
    stem = f"{campaign.id}-seed{seed}-{now():%Y%m%dT%H%M%SZ}"
    folder, n = out_dir / stem, 1
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                n += 1
                folder = out_dir / f"{stem}-{n}"
    except OSError as error:
        raise TranscriptError(f"cannot create the campaign folder {folder}: "
                              f"{error.strerror or error}") from None


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
    runner = CampaignRunner(loaded, folder, seed=campaign_seed, agents=agents, fsync=fsync,
                            llm_run=llm_run, on_event=on_event)
    return await runner.run(on_stage)
