"""Hash-chained transcripts: verification catches every kind of tampering; runs repeat."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import anyio
import pytest

from agents import View, make_agent
from negotiation.engine import Negotiation, run_scenario
from negotiation.model import Accept, Action, Propose
from negotiation.scenario import load_scenario
from negotiation.transcript import (
    GENESIS,
    TranscriptError,
    TranscriptWriter,
    deterministic_lines,
    event_hash,
    load_verified,
    verify,
)


def write_run(tmp_path: Path, name: str = "rd-joint-venture", seed: int = 1) -> Path:
    result = anyio.run(lambda: run_scenario(load_scenario(name), seed=seed, out_dir=tmp_path))
    assert result.path is not None
    return result.path


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_a_fresh_transcript_verifies(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    result = verify(path)
    assert result.ok, result.reason
    assert result.events[0]["type"] == "header"
    assert result.events[0]["prev_hash"] == GENESIS
    assert result.events[-1]["type"] == "outcome"
    assert result.head_hash == result.events[-1]["hash"]


def test_each_hash_covers_the_event_and_its_predecessor(tmp_path: Path) -> None:
    events = load_verified(write_run(tmp_path))
    for before, event in itertools.pairwise(events):
        assert event["prev_hash"] == before["hash"]
        assert event["hash"] == event_hash(event)


@pytest.mark.parametrize("line", [1, 2, 5])
def test_an_edited_line_is_named(tmp_path: Path, line: int) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    event = json.loads(lines[line - 1])
    event["party"] = "someone-else"
    lines[line - 1] = json.dumps(event) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    result = verify(path)
    assert not result.ok
    assert result.bad_line == line
    assert "edited" in result.reason


def test_a_deleted_line_is_named(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    del lines[3]
    path.write_text("".join(lines), encoding="utf-8")
    assert verify(path).bad_line == 4


def test_an_inserted_line_is_named(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    lines.insert(2, lines[1])
    path.write_text("".join(lines), encoding="utf-8")
    assert verify(path).bad_line == 3


def test_reordered_lines_are_named(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_text("".join(lines), encoding="utf-8")
    assert verify(path).bad_line == 3


def test_a_rehashed_edit_is_still_caught_by_the_next_line(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    event = json.loads(lines[2])
    event["action"]["rationale"] = "forged"
    event["hash"] = event_hash(event)
    lines[2] = json.dumps(event) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    assert verify(path).bad_line == 4


def test_garbage_is_not_a_transcript(tmp_path: Path) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_text("not json\n", encoding="utf-8")
    result = verify(path)
    assert not result.ok and result.bad_line == 1 and "JSON" in result.reason


def test_transcripts_are_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text("precious\n", encoding="utf-8")
    with pytest.raises(TranscriptError, match="never overwritten"):
        TranscriptWriter(path)
    assert path.read_text(encoding="utf-8") == "precious\n"


def test_an_unwritable_folder_fails_before_the_negotiation_starts(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(TranscriptError, match="cannot create the transcript folder"):
        anyio.run(lambda: run_scenario(load_scenario("rd-joint-venture"),
                                       out_dir=blocker / "sub"))


def test_same_seed_gives_the_same_transcript_apart_from_wall_clock(tmp_path: Path) -> None:
    first = load_verified(write_run(tmp_path / "a", "park-redevelopment", seed=4))
    second = load_verified(write_run(tmp_path / "b", "park-redevelopment", seed=4))
    assert deterministic_lines(first) == deterministic_lines(second)


def test_source_date_epoch_makes_transcripts_byte_identical(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    first = write_run(tmp_path / "a", "species-reintroduction", seed=9)
    second = write_run(tmp_path / "b", "species-reintroduction", seed=9)
    assert first.read_bytes() == second.read_bytes()
    # Names agree but for the random part that keeps runs started in one second apart.
    assert first.name.rsplit("-", 1)[0] == second.name.rsplit("-", 1)[0]
    assert first.name != second.name


class Broken:
    """An agent that crashes on its second turn, or accepts when nothing is on the table."""

    def __init__(self, crash: bool) -> None:
        self.crash = crash
        self.turns = 0

    async def act(self, view: View) -> Action:
        self.turns += 1
        if not self.crash:
            return Accept(rationale="accepting thin air")
        if self.turns == 2:
            raise RuntimeError("model server unreachable")
        return Propose(offer=view.space.offer(0), rationale="opening")


@pytest.mark.parametrize("crash, expected", [(True, "failed: RuntimeError"),
                                             (False, "invalid move")])
def test_a_failing_agent_ends_the_run_with_a_valid_transcript_naming_it(
        tmp_path: Path, crash: bool, expected: str) -> None:
    scenario = load_scenario("rd-joint-venture")
    agents = {"voltaic": Broken(crash), "kestrel": make_agent("boulware", party="kestrel",
                                                              seed=0)}
    path = tmp_path / "run.jsonl"
    with TranscriptWriter(path) as writer:
        result = anyio.run(lambda: Negotiation(scenario).run(
            agents, seed=0, writer=writer, specs={"voltaic": "broken", "kestrel": "boulware"}))
    assert result.status == "no_agreement"
    assert result.reason.startswith("voltaic") and expected in result.reason
    events = load_verified(path)
    assert [e["type"] for e in events[-2:]] == ["error", "outcome"]
    assert events[-2]["party"] == "voltaic"


@pytest.mark.parametrize("micro", [0, 999, 1000, 123456, 999999])
def test_timestamps_read_like_isoformat_with_milliseconds(
        micro: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from datetime import UTC, datetime

    from negotiation import transcript

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    for second in (7, 8):  # a new second re-formats the date, the same one reuses it
        instant = datetime(2026, 11, 24, 21, 13, second, micro, tzinfo=UTC)
        nanoseconds = int(instant.replace(microsecond=0).timestamp()) * 10**9 + micro * 1000
        monkeypatch.setattr(time, "time_ns", lambda ns=nanoseconds: ns)
        assert transcript.clock()() == instant.isoformat(timespec="milliseconds")


def test_source_date_epoch_fixes_every_timestamp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    writer = TranscriptWriter()
    stamps = {writer.append("note", {"n": n})["wall"]["at"] for n in range(3)}
    assert stamps == {"2023-11-14T22:13:20.000+00:00"}
