"""Attacks on this session's changes (the idle pass, resume on the plain loop, the files
beside a transcript): a transcript or a file beside it edited by someone with write access
to the folder is refused with a message and an exit code, never a traceback."""

from __future__ import annotations

import json
from collections import OrderedDict
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from negotiation.canonical import REFERENCE, canonical_bytes, canonical_bytes_with
from negotiation.cli import app
from negotiation.engine import reopen_run
from negotiation.events import EventError, chain, parse_event
from negotiation.graph import start_run
from negotiation.session import Session
from negotiation.transcript import GENESIS, TranscriptError, verify
from tests.test_idle_pass import Away, Stopped, tiny

WIDE = {"NO_COLOR": "1", "COLUMNS": "200"}


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def rechain(events: list[dict[str, Any]], path: Path) -> None:
    """Write ``events`` as a transcript whose hash chain checks out: what anyone with
    write access to the folder can do (the chain detects edits, not forgers)."""
    head, lines = GENESIS, []
    for event in events:
        record = {key: value for key, value in event.items() if key not in ("hash", "prev_hash")}
        lines.append(chain(record, head))
        head = record["hash"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def refused_cleanly(args: list[str], code: int) -> str:
    done = CliRunner().invoke(app, args, env=WIDE)
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert "Traceback" not in done.output
    assert done.exit_code == code, done.output
    return done.output


@pytest.fixture
def paused_after_a_pass(tmp_path: Path) -> Path:
    """A studio-like run stopped after Beta's (a person's) first turn was passed."""
    path = tmp_path / "run.jsonl"
    answered: list[str] = []

    def answer(payload: Any, session: Session) -> Any:
        if not answered:
            answered.append("pass")
            return session.pass_idle(30.0)
        raise Stopped

    async def studio_like() -> None:
        await start_run(tiny(rounds=5), transcript=path,
                        agents={"a": "boulware", "b": "human"}, answer=answer,
                        person=Away())

    with pytest.raises(Stopped):
        anyio.run(studio_like)
    return path


# --- verify: numbers and texts JSON can spell but a transcript cannot hold ---------------

@pytest.mark.parametrize("value", ["1e400", "-1e999", '"\\ud800"', '{"\\udfff":1}'])
def test_verify_refuses_a_line_holding_a_value_no_transcript_can_hold(
        tmp_path: Path, value: str) -> None:
    source = Path(__file__).parent / "data" / "transcripts" / \
        "platform-app-vendor-seed1-reference-encoder.jsonl"
    lines = source.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][:-1] + f',"x":{value}}}'
    path = tmp_path / "edited.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = verify(path)
    assert not result.ok and result.bad_line == 2
    output = refused_cleanly(["verify", str(path)], 1)
    assert "line 2" in output


# --- the passed event ----------------------------------------------------------------------

@pytest.mark.parametrize("timeout", ["nan", "inf", "1e999", "30", -5, True])
def test_a_passed_event_timeout_must_be_a_finite_number_of_seconds(timeout: Any) -> None:
    record = {"seq": 2, "type": "passed", "round": 0, "party": "b", "timeout": timeout,
              "reason": "the seat stayed idle: no move within 30 s"}
    with pytest.raises(EventError, match="timeout"):
        parse_event(record, 3)
    assert parse_event({**record, "timeout": 30}, 3).timeout == 30.0  # type: ignore[union-attr]


@pytest.mark.parametrize("timeout", ["nan", "inf"])
def test_a_forged_pass_with_a_timeout_that_is_not_a_number_is_refused_on_resume(
        paused_after_a_pass: Path, timeout: str) -> None:
    events = records(paused_after_a_pass)
    [passed] = [e for e in events if e["type"] == "passed"]
    passed["timeout"] = timeout
    rechain(events, paused_after_a_pass)
    output = refused_cleanly(["verify", str(paused_after_a_pass)], 1)
    assert "timeout" in output

    async def resume() -> None:
        async with reopen_run(paused_after_a_pass, person=Away()) as run:
            await run.play()

    with pytest.raises(TranscriptError, match="timeout"):
        anyio.run(resume)
    refused_cleanly(["resume", str(paused_after_a_pass)], 2)


def test_a_forged_pass_for_a_rule_based_seat_makes_the_resume_diverge_not_pass(
        paused_after_a_pass: Path) -> None:
    events = records(paused_after_a_pass)
    [passed] = [e for e in events if e["type"] == "passed"]
    opening = next(e for e in events if e["type"] == "move" and e["party"] == "a")
    forged = {**passed, "party": "a"}
    events[events.index(opening)] = {**forged, "seq": opening["seq"]}
    events = [e for e in events if e is not passed]
    for number, event in enumerate(events):
        event["seq"] = number
    rechain(events, paused_after_a_pass)
    assert verify(paused_after_a_pass).ok

    async def resume() -> None:
        async with reopen_run(paused_after_a_pass, person=Away()) as run:
            await run.play()

    with pytest.raises(TranscriptError, match="diverged"):
        anyio.run(resume)


# --- resume: a header that negotiate never wrote -------------------------------------------

def forge_header(path: Path, edit: str) -> None:
    """Re-chain ``path`` with a header negotiate never wrote: an embedded scenario that is
    not one, or no protocol."""
    events = records(path)
    if edit == "scenario":
        events[0]["scenario"] = {"id": "forged"}
    else:
        del events[0]["protocol"]
    rechain(events, path)


@pytest.mark.parametrize("edit", ["scenario", "protocol"])
def test_resume_refuses_a_header_negotiate_never_wrote_without_a_traceback(
        paused_after_a_pass: Path, edit: str) -> None:
    forge_header(paused_after_a_pass, edit)
    output = refused_cleanly(["resume", str(paused_after_a_pass)], 2)
    assert "line 1" in output and "not written by negotiate" in output

    async def resume() -> None:
        async with reopen_run(paused_after_a_pass, person=Away()) as run:
            await run.play()

    with pytest.raises(TranscriptError, match="line 1"):
        anyio.run(resume)


# --- the LLM recording beside an auto run --------------------------------------------------

@pytest.fixture
def interrupted_llm_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An auto run with an LLM seat, cut after the LLM's first move (as a crash leaves it),
    its replies recorded beside it."""
    from negotiation.analysis import SpaceAnalysis
    from negotiation.devtools.llm_server import ScriptedServer, reply_json
    from negotiation.scenario import load_scenario

    nash = SpaceAnalysis(load_scenario("platform-app-vendor")).nash
    assert nash is not None

    def script(request: dict[str, Any], number: int) -> Any:
        return reply_json({"kind": "propose", "terms": nash.terms, "rationale": "Firm."})

    with ScriptedServer(script) as server:
        done = CliRunner().invoke(
            app, ["run", "platform-app-vendor", "--agent", "vendor=llm:scripted", "--out",
                  str(tmp_path), "-q"],
            env={**WIDE, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test"})
    assert done.exit_code == 0, done.output
    [path] = [p for p in tmp_path.glob("*.jsonl") if not p.name.endswith(".calls.jsonl")]
    events = records(path)
    cut = next(n for n, e in enumerate(events) if e["type"] == "move"
               and e["party"] == "vendor")
    rechain(events[:cut + 1], path)
    # Nothing answers: a resume that reached the network would fail with another message.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return path


@pytest.mark.parametrize("damage", ["not a reply", "bytes", "folder"])
def test_resume_refuses_a_damaged_recording_beside_the_run_without_a_traceback(
        interrupted_llm_run: Path, damage: str) -> None:
    from negotiation.run_files import calls_path

    recording = calls_path(interrupted_llm_run)
    assert recording.exists()
    if damage == "not a reply":
        with recording.open("a", encoding="utf-8") as handle:
            handle.write("this is not a recorded reply\n")
    elif damage == "bytes":
        recording.write_bytes(recording.read_bytes() + b"\xff\xfe\n")
    else:
        recording.unlink()
        recording.mkdir()
    output = refused_cleanly(["resume", str(interrupted_llm_run), "-q"], 2)
    assert recording.name in output.replace("\n", "")


# --- the studio: a rehearsal's files edited in its folder ----------------------------------

def planted_rehearsal(run: Path, folder: Path, **sidecar: Any) -> Path:
    """``run`` as a studio rehearsal in ``folder``: its transcript and its sidecar."""
    folder.mkdir()
    transcript = folder / run.name
    transcript.write_bytes(run.read_bytes())
    side = {"seats": {"b": "0" * 64}, "observer": "0" * 64, **sidecar}
    transcript.with_suffix(".studio.json").write_text(json.dumps(side), encoding="utf-8")
    return transcript


@pytest.mark.parametrize("timeout", ["nan", "inf", 1e400, 0, -5])
def test_a_studio_file_whose_idle_timeout_is_not_a_time_is_named_not_continued(
        paused_after_a_pass: Path, tmp_path: Path, timeout: Any) -> None:
    from negotiation.studio import Studio

    folder = tmp_path / "studio"
    planted_rehearsal(paused_after_a_pass, folder, idle_timeout=timeout, on_idle="pass")
    studio = Studio(folder)
    [problem] = studio.reopen()
    assert "idle_timeout" in problem and not studio.rehearsals


@pytest.mark.parametrize("edit", ["scenario", "protocol"])
def test_a_studio_rehearsal_with_a_forged_header_is_named_not_a_crash_at_start(
        paused_after_a_pass: Path, tmp_path: Path, edit: str) -> None:
    from negotiation.studio import Studio

    forge_header(paused_after_a_pass, edit)
    planted_rehearsal(paused_after_a_pass, tmp_path / "studio")
    studio = Studio(tmp_path / "studio")
    [problem] = studio.reopen()
    assert "line 1" in problem and not studio.rehearsals


def test_serve_refuses_an_idle_timeout_that_is_not_a_time(tmp_path: Path) -> None:
    for value in ("nan", "inf"):
        output = refused_cleanly(["serve", "--idle-timeout", value, "--transcripts",
                                  str(tmp_path / "t")], 2)
        assert "idle-timeout" in output


# --- Ctrl-C ---------------------------------------------------------------------------------

def test_ctrl_c_before_the_transcript_exists_does_not_point_at_a_run_to_resume(
        tmp_path: Path) -> None:
    from tests.test_extensions import run_cli

    (tmp_path / "stopper.py").write_text(
        "class Stop:\n"
        "    '''Ctrl-C pressed while the run's agents are being set up.'''\n"
        "    def __init__(self, **options):\n"
        "        raise KeyboardInterrupt\n"
        "    async def act(self, view): ...\n")
    out = tmp_path / "out"
    done = run_cli("--plugin", "stop=stopper:Stop", "run", "platform-app-vendor", "--agent",
                   "vendor=stop", "--out", str(out), cwd=tmp_path, pythonpath=tmp_path)
    assert done.returncode == 130, done.stderr
    assert not list(out.glob("*.jsonl"))
    said = " ".join(done.stderr.split())
    assert "nothing was written" in said
    assert "negotiate resume" not in said and "aborted' event" not in said


# --- canonical JSON: orjson's bytes are json's for every value an event can hold ------------

class Label(str):
    """A str subclass (numpy's str_, a StrEnum's member)."""


class Count(int):
    """An int subclass (an IntEnum's member, numpy never: it is no int)."""


class Kind(StrEnum):
    A = "a"
    ASTRAL = "\U0001f600"


class Level(IntEnum):
    LOW = 1
    HUGE = 2**70


_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=6)  # surrogates too
_LEAF = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70)
         | st.floats() | st.floats(-1e-3, 1e-3) | st.floats(1e15, 1e23) | _TEXT
         | _TEXT.map(Label) | st.integers().map(Count) | st.sampled_from(list(Kind))
         | st.sampled_from(list(Level)))
_KEY = (_TEXT | _TEXT.map(Label) | st.sampled_from(list(Kind)) | st.integers() | st.booleans()
        | st.none() | st.floats(allow_nan=False))
_VALUES = st.recursive(
    _LEAF, lambda children: st.lists(children, max_size=4)
    | st.lists(children, max_size=3).map(tuple)
    | st.dictionaries(_KEY, children, max_size=4)
    | st.dictionaries(_TEXT, children, max_size=4).map(OrderedDict), max_leaves=25)


def either(encode: Any, value: Any) -> bytes | type[Exception]:
    try:
        return cast(bytes, encode(value))
    except (TypeError, ValueError) as error:
        return type(error)


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(_TEXT, _VALUES, max_size=5) | st.lists(_VALUES, max_size=4))
def test_canonical_bytes_are_the_reference_encoders_for_hostile_values(value: Any) -> None:
    reference = either(lambda v: REFERENCE.encode(v).encode(), value)
    assert either(canonical_bytes, value) == reference


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(_KEY, _VALUES, max_size=4), st.dictionaries(_TEXT, _LEAF, max_size=3))
@example(record={"\ud800": {"": None, 0: None}}, scenario={})  # refused by the sort first
@example(record={1: float("nan")}, scenario={})  # a key that does not sort with "scenario"
def test_a_header_splicing_its_scenario_text_is_the_reference_text(
        record: dict[str, Any], scenario: dict[str, Any]) -> None:
    record.pop("scenario", None)
    text = either(lambda v: REFERENCE.encode(v).encode(), scenario)
    if not isinstance(text, bytes):
        return
    spliced = either(lambda r: canonical_bytes_with(r, "scenario", text), record)
    whole = either(lambda r: REFERENCE.encode({**r, "scenario": scenario}).encode(), record)
    assert spliced == whole


# --- a crash between the driver's pass and its record --------------------------------------

class Crash(BaseException):
    """The studio's process dies (SIGKILL, power) at this point."""


def test_a_pass_the_graph_saved_before_a_crash_is_replayed_as_a_pass_not_an_agent_failure(
        tmp_path: Path) -> None:
    from negotiation.graph import resume_run

    path = tmp_path / "run.jsonl"

    def pass_it(payload: Any, session: Session) -> Any:
        return session.pass_idle(30.0)

    def crash_at_the_pass(event: dict[str, Any]) -> None:
        if event["type"] == "passed":
            raise Crash

    async def studio_like() -> None:
        await start_run(tiny(rounds=5), transcript=path,
                        agents={"a": "boulware", "b": "human"}, answer=pass_it,
                        person=Away(), on_event=crash_at_the_pass)

    with pytest.raises(Crash):
        anyio.run(studio_like)
    events = records(path)
    assert events[-1]["type"] == "passed"
    # The process died after the graph saved the decision but before the line was written.
    rechain(events[:-1], path)
    asked: list[Any] = []

    def stop_at_the_next_turn(payload: Any, session: Session) -> Any:
        asked.append(payload)
        raise Stopped

    async def resume() -> None:
        await resume_run(path, person=Away(), answer=stop_at_the_next_turn)

    with pytest.raises(Stopped):
        anyio.run(resume)
    after = records(path)
    assert "error" not in [e["type"] for e in after]
    assert [(e["type"], e["party"]) for e in after if e["type"] == "passed"] == [("passed", "b")]
    [passed] = [e for e in after if e["type"] == "passed"]
    assert passed["timeout"] == 30.0 and passed["reason"] == events[-1]["reason"]
    assert asked and asked[0]["party"] == "b"  # the person's next turn, asked as usual


# --- files planted beside a run ------------------------------------------------------------

def test_resume_refuses_a_fifo_planted_as_the_checkpoint_database_instead_of_hanging(
        tmp_path: Path) -> None:
    import os
    import subprocess

    from negotiation.run_files import checkpoint_path
    from tests.test_cli import NEGOTIATE

    done = CliRunner().invoke(app, ["run", "platform-app-vendor", "--out", str(tmp_path),
                                    "-q"], env=WIDE)
    assert done.exit_code == 0, done.output
    [path] = tmp_path.glob("*.jsonl")
    events = records(path)
    rechain(events[:5], path)  # stopped after a few turns
    os.mkfifo(checkpoint_path(path))  # SQLite opening it would wait for a writer forever
    before = path.read_bytes()
    resumed = subprocess.run([str(NEGOTIATE), "resume", str(path), "-q"], capture_output=True,
                             text=True, timeout=30, env={**os.environ, **WIDE})
    assert resumed.returncode == 2, resumed.stderr
    assert "not a regular file" in " ".join(resumed.stderr.split())
    assert "Traceback" not in resumed.stderr
    assert path.read_bytes() == before  # refused before the run re-opened: no 'resumed' event


def test_resume_refuses_a_fifo_planted_as_the_llm_recording_instead_of_hanging(
        interrupted_llm_run: Path) -> None:
    import os
    import subprocess

    from negotiation.run_files import calls_path
    from tests.test_cli import NEGOTIATE

    recording = calls_path(interrupted_llm_run)
    recording.unlink()
    os.mkfifo(recording)  # reading it would wait for a writer forever
    resumed = subprocess.run([str(NEGOTIATE), "resume", str(interrupted_llm_run), "-q"],
                             capture_output=True, text=True, timeout=30,
                             env={**os.environ, **WIDE})
    assert resumed.returncode == 2, resumed.stderr
    said = " ".join(resumed.stderr.split())
    assert "not a regular file" in said and "Traceback" not in said
