"""Performance work that must not change what a run records, nor carry results across runs."""

from __future__ import annotations

import functools
import gc
import sys
import tracemalloc
from pathlib import Path

import anyio

from agents.rule_based import _RANKINGS, Bidder
from negotiation.analysis import SpaceAnalysis
from negotiation.events import CanonicalObject, canonical_json, chain
from negotiation.scenario import load_scenario
from negotiation.seats import build_agents
from negotiation.session import Negotiation
from negotiation.transcript import TranscriptWriter, verify

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_frontier import domain
from compare_negmas import OurSide
from floor import Floor
from peer import aspiration_agents, same_moves


def test_a_header_with_a_precomputed_scenario_hashes_like_a_plain_one() -> None:
    scenario = load_scenario("platform-app-vendor").model_dump(mode="json")
    record = {"seq": 0, "type": "header", "scenario": scenario, "seed": 3, "wall": {"at": "x"}}
    precomputed = {**record, "scenario": CanonicalObject(scenario)}
    plain_line = chain(dict(record), "0" * 64)
    assert chain(precomputed, "0" * 64) == plain_line
    assert plain_line.startswith(canonical_json({**record, "prev_hash": "0" * 64})[:-1])


def test_runs_sharing_one_analysis_write_transcripts_that_verify(tmp_path: Path) -> None:
    scenario = load_scenario("platform-app-vendor")
    analysis = SpaceAnalysis(scenario)
    specs = {party: "boulware" for party in scenario.party_ids}

    async def run(seed: int) -> Path:
        path = tmp_path / f"{seed}.jsonl"
        with TranscriptWriter(path) as writer:
            await Negotiation(scenario, analysis=analysis).run(
                build_agents(specs, seed), seed=seed, writer=writer, specs=specs)
        return path

    paths = [anyio.run(run, seed) for seed in (1, 2)]
    assert all(verify(path).ok for path in paths)


def test_bidders_share_the_ranking_of_their_utility_function_but_not_their_state() -> None:
    scenario = domain(100_000, 2)
    side = OurSide(scenario, 100, warm=True)
    side.run()
    assert side.analysis is not None
    function = side.analysis.functions[scenario.party_ids[0]]
    ranking = _RANKINGS[function]
    side.run()
    assert _RANKINGS[function] is ranking  # per scenario: computed once
    assert not ranking.ascending.flags.writeable  # and never written to
    assert not ranking.ascending_utility.flags.writeable


def test_a_warm_bidder_allocates_nothing_proportional_to_the_outcome_space() -> None:
    # It used to gather all 10^6 utilities (8 MB) per agent per negotiation.
    scenario = domain(1_000_000, 2)
    analysis = SpaceAnalysis(scenario)
    session = Negotiation(scenario, analysis=analysis).session(
        {}, seed=0, writer=TranscriptWriter(None), specs={})
    view = session.current_view()
    Bidder(view)  # the first one ranks the outcomes, once per scenario
    Bidder(view)  # the second lists their utilities for bisect, once per scenario
    tracemalloc.start()
    Bidder(view)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100_000


def test_rankings_go_when_their_scenario_analysis_goes() -> None:
    scenario = domain(1_000, 2)
    side = OurSide(scenario, 100, warm=True)
    side.run()
    assert side.analysis is not None
    before = len(_RANKINGS)
    side.analysis = None
    gc.collect()
    assert len(_RANKINGS) <= before - 2


def test_the_floor_loop_reaches_the_engines_agreement_in_the_same_round() -> None:
    for parties in (2, 3):
        scenario = domain(1_000, parties)
        ours = OurSide(scenario, 100, warm=True).run()
        assert ours[0] is not None
        assert Floor(scenario, 100).run() == ours
        assert OurSide(scenario, 100, warm=False).run(chain=False) == ours
        chained = Floor(scenario, 100, chained=True)
        assert chained.run() == ours
        with TranscriptWriter(None) as writer:
            anyio.run(functools.partial(
                Negotiation(scenario, rounds=100).run, aspiration_agents(scenario), seed=0,
                writer=writer, specs=dict.fromkeys(scenario.party_ids, "aspiration")))
            moves = sum(event["type"] == "move" for event in writer.events)
        assert chained.chain is not None
        assert chained.chain.seq == moves > 0  # one hashed record per move, as the engine


def test_the_benchmark_refuses_runs_that_did_different_work() -> None:
    terms = {"i0": "v1"}
    assert same_moves((terms, 5), (dict(terms), 5)) is None
    assert "different agreements" in (same_moves((terms, 5), ({"i0": "v2"}, 5)) or "")
    assert "different lengths" in (same_moves((terms, 5), (terms, 6)) or "")
    assert "different agreements" in (same_moves((terms, 5), (None, 5)) or "")


def test_a_move_records_its_action_exactly_as_pydantic_dumps_it() -> None:
    from negotiation.model import Accept, Offer, Propose, WalkAway
    from negotiation.session import action_record

    actions = [
        Propose(offer=Offer(terms={"price": 3, "share": {"a": 40, "b": 60}, "term": "v1",
                                   "rate": 0.25}), rationale="why", message="note"),
        Propose.model_construct(offer=Offer(terms={"x": "y"}), rationale="built directly"),
        Accept(rationale="fine"), Accept(rationale="fine", message="thanks"),
        WalkAway(rationale="no deal"),
    ]
    for scenario_id in ("platform-app-vendor", "rd-joint-venture"):
        analysis = SpaceAnalysis(load_scenario(scenario_id))
        actions += [Propose(offer=analysis.space.offer(outcome), rationale="r")
                    for outcome in range(0, analysis.space.size, 97)]
    for action in actions:
        assert action_record(action) == action.model_dump(mode="json", exclude_none=True)
    record = action_record(actions[0])
    assert record["offer"]["terms"]["share"] is not actions[0].offer.terms["share"]  # a copy


def test_the_pruned_many_party_frontier_is_the_brute_force_frontier() -> None:
    import numpy as np

    from negotiation.analysis import pareto_mask

    rng = np.random.default_rng(7)
    for trial in range(60):
        parties = 3 + trial % 2
        count = int(rng.integers(1, 400))
        points = rng.random((count, parties))
        if trial % 3 == 1:
            points = np.round(points * 4) / 4  # many ties
        if trial % 3 == 2:
            points = np.repeat(points[: count // 2 + 1], 2, axis=0)[:count]  # copies
        at_least = (points[:, None, :] >= points[None, :, :]).all(axis=2)
        better = (points[:, None, :] > points[None, :, :]).any(axis=2)
        dominated = (at_least & better).any(axis=0)
        assert (pareto_mask(points) == ~dominated).all()


def test_similarity_of_candidates_only_equals_the_whole_space_table() -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    for scenario in (load_scenario("platform-app-vendor"), load_scenario("rd-joint-venture"),
                     domain(10_000, 3)):
        analysis = SpaceAnalysis(scenario)
        session = Negotiation(scenario, analysis=analysis).session(
            {}, seed=0, writer=TranscriptWriter(None), specs={})
        bidder = Bidder(session.current_view())
        size = analysis.space.size
        for _ in range(20):
            candidates = rng.choice(size, size=min(256, size), replace=False)
            references = [int(r) for r in rng.choice(size, size=3)]
            whole = bidder._similarity_to(references[0])[candidates]
            rows = analysis.space.value_indices(candidates)
            part = bidder._candidate_similarity(rows, references[0])
            for reference in references[1:]:
                whole = whole + bidder._similarity_to(reference)[candidates]
                part = part + bidder._candidate_similarity(rows, reference)
            assert np.array_equal(whole, part)


def test_referees_of_one_scenario_share_its_tables_and_sub_coalition_analyses() -> None:
    from negotiation.guardrails import Referee

    scenario = load_scenario("rd-joint-venture")
    analysis = SpaceAnalysis(scenario)
    first, second = Referee(scenario, analysis), Referee(scenario, analysis)
    assert first._rational_full is second._rational_full
    members = scenario.party_ids[:2]
    assert first.for_members(members).analysis is second.for_members(members).analysis
    assert first.for_members(members).analysis.parties == members


def test_a_single_run_does_not_table_every_outcomes_efficiency_but_gets_its_answers() -> None:
    from negotiation.analysis import EFFICIENCY_TABLE_AFTER

    scenario = domain(10_000, 2)
    one_by_one, tabled = SpaceAnalysis(scenario), SpaceAnalysis(scenario)
    answers = [one_by_one.efficiency(outcome) for outcome in range(EFFICIENCY_TABLE_AFTER)]
    assert "_efficiency_table" not in one_by_one.__dict__
    for _ in range(EFFICIENCY_TABLE_AFTER):
        tabled.efficiency(0)
    assert [tabled.efficiency(outcome) for outcome in range(EFFICIENCY_TABLE_AFTER)] == answers
    assert "_efficiency_table" in tabled.__dict__


def test_the_scenario_digest_from_the_header_text_is_the_digest() -> None:
    from negotiation.scenario import scenario_digest

    for scenario in (load_scenario("platform-app-vendor"), domain(100, 2)):
        assert SpaceAnalysis(scenario).digest == scenario_digest(scenario)
    accented = domain(100, 2).model_copy(update={"title": "Café – coopération"})
    assert not SpaceAnalysis(accented).scenario_json.canonical.isascii()
    assert SpaceAnalysis(accented).digest == scenario_digest(accented)


def test_our_engine_and_negmas_make_the_same_moves_on_the_benchmark_domains() -> None:
    from peer import NegmasSide

    for parties in (2, 3):
        scenario = domain(1_000, parties)
        for warm in (True, False):
            ours = OurSide(scenario, 100, warm=warm).run()
            assert same_moves(ours, NegmasSide(scenario, 100, warm=warm).run()) is None


def test_compare_negmas_prints_one_machine_readable_ratio_per_configuration() -> None:
    import re
    import subprocess

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_negmas.py"
    done = subprocess.run(
        [sys.executable, str(script), "--sizes", "1e2", "--repeats", "1", "--budget", "0.01"],
        capture_output=True, text=True, timeout=300, check=True)
    last = done.stdout.strip().splitlines()[-4:]
    assert [line.split(":")[0] for line in last] == [
        "ratio warm bilateral 1e2", "ratio warm 3-party 1e2", "ratio cold bilateral 1e2",
        "ratio cold 3-party 1e2"]
    assert all(re.fullmatch(r"ratio \w+ [\w-]+ 1e2: \d+\.\d", line) for line in last)
    assert "refused" not in done.stdout


def test_an_offer_described_from_the_space_reads_as_describe_change_says() -> None:
    from negotiation.terms import describe_change, describe_outcome_change

    for scenario_id in ("platform-app-vendor", "rd-joint-venture", "park-redevelopment"):
        scenario = load_scenario(scenario_id)
        space = SpaceAnalysis(scenario).space
        outcomes = range(0, space.size, max(1, space.size // 23))
        for _ in ("described", "remembered by the space"):
            for before in outcomes:
                for after in outcomes:
                    assert describe_outcome_change(space, before, after) == describe_change(
                        scenario.issues, space.terms(before), space.terms(after))
        assert describe_outcome_change(space, None, 0) == describe_change(
            scenario.issues, None, space.terms(0))


def test_recorded_utilities_are_rounded_per_party_and_each_event_gets_its_own_dict() -> None:
    scenario = load_scenario("rd-joint-venture")
    negotiation = Negotiation(scenario)
    functions = negotiation.analysis.functions
    for outcome in range(0, negotiation.space.size, 31):
        expected = {party: round(functions[party].of_outcome(outcome), 6)
                    for party in scenario.party_ids}
        first = negotiation.utilities_of(outcome)
        assert first == expected
        first[scenario.party_ids[0]] = -1.0  # a hook that edits one event's copy …
        assert negotiation.utilities_of(outcome) == expected  # … changes no other event


def test_editing_one_runs_fairness_report_changes_nothing_of_the_next_runs() -> None:
    scenario = load_scenario("platform-app-vendor")
    analysis = SpaceAnalysis(scenario)
    specs = {party: "boulware" for party in scenario.party_ids}

    async def reference_points() -> dict[str, dict[str, float]]:
        writer = TranscriptWriter(None)
        await Negotiation(scenario, analysis=analysis).run(
            build_agents(specs, 1), seed=1, writer=writer, specs=specs)
        points: dict[str, dict[str, float]] = writer.events[-1]["fairness"]["reference_points"]
        return points

    for point in anyio.run(reference_points).values():
        for party in point:
            point[party] = -1.0
    assert analysis.nash is not None
    assert anyio.run(reference_points)["Nash"] == analysis.nash.utilities
    assert all(value >= 0 for point in anyio.run(reference_points).values()
               for value in point.values())
