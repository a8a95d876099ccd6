"""The hash chain's shortcuts give the reference's bytes and hashes: a header's hash resumed
from the state after its scenario, and the lines the writer makes only when they are
written or read."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation.canonical import REFERENCE
from negotiation.events import CanonicalObject, chain, event_hash, line_bytes, link
from negotiation.scenario import load_scenario
from negotiation.seats import build_agents
from negotiation.session import Negotiation
from negotiation.transcript import TranscriptWriter, verify

SCENARIO = load_scenario("platform-app-vendor").model_dump(mode="json")


def reference_line(record: dict[str, Any]) -> tuple[str, str]:
    """The reference encoder's line and hash of a record (without ``hash``)."""
    text = REFERENCE.encode(record)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f'{text[:-1]},"hash":"{digest}"}}', digest


def header(embedded: Any, **fields: Any) -> dict[str, Any]:
    return {"seq": 0, "type": "header", "seed": 1, "scenario": embedded,
            "wall": {"at": "2026-11-25T12:00:00.000+00:00"}, **fields}


names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)
small = st.none() | st.booleans() | st.integers(-10, 10) | names \
    | st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.dictionaries(names, small, max_size=3), names), min_size=1,
                max_size=4))
def test_headers_of_one_scenario_hash_as_the_reference_whatever_comes_before_it(
        runs: list[tuple[dict[str, Any], str]]) -> None:
    # One shared scenario, headers whose text before the scenario differs or repeats: each
    # hash and line is the reference's, whether or not it resumed a remembered state.
    shared = CanonicalObject(SCENARIO)
    for options, agent in [run for run in runs for _ in range(2)]:
        record = header(shared.fresh(), options=options, agents={"a": agent})
        line, digest = reference_line({**header(SCENARIO, options=options,
                                                agents={"a": agent}), "prev_hash": "0" * 64})
        assert line_bytes(*link(record, "0" * 64)).decode() == line
        assert record["hash"] == digest
    assert shared._last_prefix.last[1] is not None  # the second of each pair resumed it


def test_a_scenario_key_with_the_scenario_text_before_the_scenario_hashes_as_the_reference(
        ) -> None:
    # "agents" sorts before "scenario": its value holds the key and the very same text.
    shared = CanonicalObject(SCENARIO)
    for agents in ({"scenario": SCENARIO}, {"scenario": {**SCENARIO, "id": "other"}},
                   {"x": '"scenario":' + json.dumps(SCENARIO)}):
        for prev in ("0" * 64, "0" * 64, "f" * 64):
            record = header(shared.fresh(), agents=agents)
            line, digest = reference_line({**header(SCENARIO, agents=agents),
                                           "prev_hash": prev})
            assert chain(record, prev) == line
            assert event_hash(record) == digest == record["hash"]


def test_a_fresh_copy_is_the_scenario_read_back_and_its_own() -> None:
    shared = CanonicalObject({**SCENARIO, "points": [2**70, -(2**64), 0.1, None]})
    first, second = shared.fresh(), shared.fresh()
    assert first == second == json.loads(shared.canonical)
    assert isinstance(first["points"][0], int)
    first["issues"][0]["name"] = "edited"
    first["points"].append(1)
    assert second == json.loads(shared.canonical) and shared.fresh() == second


def test_a_run_written_to_a_file_and_one_kept_in_memory_have_the_same_lines(
        tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    scenario = load_scenario("platform-app-vendor")
    specs = {party: "boulware" for party in scenario.party_ids}

    async def run(path: Path | None) -> TranscriptWriter:
        with TranscriptWriter(path, fsync=False) as writer:
            await Negotiation(scenario).run(build_agents(specs, 3), seed=3, writer=writer,
                                            specs=specs)
        return writer

    memory = anyio.run(run, None)
    anyio.run(run, tmp_path / "run.jsonl")
    on_disk = (tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()
    assert memory.lines == on_disk
    assert memory.head_hash == verify(tmp_path / "run.jsonl").head_hash


def test_a_run_s_events_can_still_be_deep_copied_and_pickled_after_chaining() -> None:
    scenario = load_scenario("platform-app-vendor")
    specs = {party: "boulware" for party in scenario.party_ids}

    async def run() -> TranscriptWriter:
        with TranscriptWriter(None) as writer:
            await Negotiation(scenario).run(build_agents(specs, 1), seed=1, writer=writer,
                                            specs=specs)
        return writer

    writer = anyio.run(run)
    assert len(writer.head_hash) == 64  # chained: the scenario's hash state is remembered
    for copied in (copy.deepcopy(writer.events), pickle.loads(pickle.dumps(writer.events))):
        assert copied == writer.events
        header = copied[0]
        assert event_hash(header) == header["hash"]
        unchained = {key: value for key, value in header.items() if key != "hash"}
        assert chain(unchained, header["prev_hash"]) == writer.lines[0]
