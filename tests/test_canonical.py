"""Canonical JSON: the fast encoder (orjson) writes exactly the bytes of the reference
encoder (``json``) for every value, or leaves the value to it; transcripts written before
the fast path verify and come out the same."""

from __future__ import annotations

import math
import random
import struct
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation import canonical
from negotiation.canonical import REFERENCE, canonical_bytes, canonical_json
from negotiation.engine import run_scenario
from negotiation.events import CanonicalObject, chain, event_hash
from negotiation.scenario import load_scenario
from negotiation.transcript import verify

ROOT = Path(__file__).resolve().parent.parent
OLD_TRANSCRIPT = ROOT / "tests" / "data" / "transcripts" / \
    "platform-app-vendor-seed1-reference-encoder.jsonl"


def same_as_reference(value: Any) -> None:
    try:
        expected: str | type[Exception] = REFERENCE.encode(value)
    except (TypeError, ValueError) as error:
        expected = type(error)
    if isinstance(expected, str):
        assert canonical_json(value) == expected
        assert canonical_bytes(value) == expected.encode()
    else:
        with pytest.raises(expected):
            canonical_json(value)


def test_every_decimal_exponent_of_a_double_is_written_as_json_writes_it() -> None:
    rng = random.Random(7)
    floats = [0.0, -0.0, 5e-324, 1.7976931348623157e308]
    for exponent in range(-324, 309):
        for _ in range(20):
            digits = rng.randint(0, 17)
            value = float(f"{rng.uniform(1, 10):.{digits}f}e{exponent}")
            if math.isfinite(value):
                floats += [value, -value]
    for edge in (1e-4, 1e-5, 1e15, 1e16, 1e17, 1e21):
        below = above = edge
        for _ in range(20):
            below, above = math.nextafter(below, 0), math.nextafter(above, math.inf)
            floats += [below, above]
    for value in floats:
        assert canonical_json({"x": value}) == REFERENCE.encode({"x": value}), value
        assert canonical_json([value]) == REFERENCE.encode([value]), value


def test_random_doubles_are_written_as_json_writes_them() -> None:
    rng = random.Random(11)
    for _ in range(50_000):
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        same_as_reference({"u": value, "list": [value, 1]})


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_where_orjson_writes_other_text_the_reference_writes_it() -> None:
    # These are why the check exists: orjson's own text differs here.
    assert orjson.dumps([5e-05]) != REFERENCE.encode([5e-05]).encode()
    assert orjson.dumps([1e-07]) != REFERENCE.encode([1e-07]).encode()
    assert orjson.dumps([math.nan]) == b"[null]"
    for value in ({"small": 5e-05}, {"tiny": -1e-07}, [8.4317e-05], {"none": None},
                  {"big": 2**70}, {1: "int key"}, {"numpy": np.float64(0.25)},
                  nested(300), {"text": "re-offer 1e-5 at 0.00001, null"}):
        same_as_reference(value)
    circular: dict[str, Any] = {}
    circular["self"] = circular
    for refused in (circular, {"nan": math.nan}, {"inf": -math.inf}, [math.inf],
                    {"none": None, "nan": [math.nan]}, [None, math.inf],
                    {"date": __import__("datetime").date(2026, 1, 1)}, {"set": {1}}):
        same_as_reference(refused)


def test_the_installed_orjson_passes_the_probes_and_one_that_differs_would_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert canonical._FAST
    monkeypatch.setattr(canonical, "_PROBES", [*canonical._PROBES, [5e-05]])
    assert not canonical._fast_path_sound()


def test_a_none_takes_the_fast_path_and_a_tuple_beside_it_the_reference() -> None:
    assert canonical._orjson_text({"zopa": None, "x": [1.5]}) == b'{"x":[1.5],"zopa":null}'
    assert canonical._orjson_text({"zopa": None, "x": (1.5,)}) is None
    same_as_reference({"zopa": None, "x": (1.5,)})


def test_a_move_takes_the_fast_path() -> None:
    move = {"seq": 3, "type": "move", "round": 1, "party": "p0", "utilities": {"p0": 0.5},
            "action": {"kind": "propose", "rationale": "aspiration 1 − t^4: « é »"},
            "wall": {"at": "2026-11-25T09:03:39.782+00:00"}}
    assert canonical._orjson_text(move) == REFERENCE.encode(move).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=True, allow_infinity=True),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_generated_objects_are_written_as_json_writes_them(value: dict[str, Any]) -> None:
    same_as_reference(value)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_is_escaped_as_json_escapes_it(text: str) -> None:
    same_as_reference({text: [text]})


def test_a_transcript_written_by_the_reference_encoder_still_verifies() -> None:
    assert verify(OLD_TRANSCRIPT).ok


def test_the_same_seed_writes_the_same_bytes_with_either_encoder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")

    def run(name: str, seed: int, path: Path) -> bytes:
        scenario = load_scenario(name)
        anyio.run(lambda: run_scenario(scenario, seed=seed, transcript=path, fsync=False))
        return path.read_bytes()

    for seed, name in enumerate(("platform-app-vendor", "park-redevelopment",
                                 "species-reintroduction")):
        fast = run(name, seed, tmp_path / f"{name}-fast.jsonl")
        with monkeypatch.context() as patched:
            patched.setattr(canonical, "_orjson_text", lambda value: None)
            reference = run(name, seed, tmp_path / f"{name}-reference.jsonl")
        assert fast == reference


def test_a_chained_line_is_the_reference_text_with_its_hash_last() -> None:
    record = {"seq": 1, "type": "move", "utilities": {"a": 1e-05, "b": 0.25}}
    line = chain(dict(record), "0" * 64)
    assert line.startswith(REFERENCE.encode({**record, "prev_hash": "0" * 64})[:-1])


@pytest.mark.parametrize("options", [{"signoff": "inline"}, {"threshold": 5e-05},
                                     {"none": None}])
def test_a_header_embedding_its_scenario_text_is_the_reference_text(
        options: dict[str, Any]) -> None:
    scenario = load_scenario("platform-app-vendor").model_dump(mode="json")
    header = {"seq": 0, "type": "header", "seed": 2, "options": options,
              "scenario": scenario}
    embedded = {**header, "scenario": CanonicalObject(scenario)}
    plain = dict(header)
    assert chain(embedded, "0" * 64) == chain(plain, "0" * 64)
    assert embedded["hash"] == event_hash(plain)


def test_a_fresh_copy_of_the_scenario_keeps_integers_beyond_64_bits() -> None:
    text = CanonicalObject({"points": [2**70, -(2**64)], "weight": 0.25})
    copy = text.fresh()
    assert copy == text and all(isinstance(n, int) for n in copy["points"])
    assert copy is not text and copy.canonical == text.canonical
