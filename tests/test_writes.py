"""Writes that cannot be raced or redirected, and a full disk that is a clear error.

The attacks are real: symlinks planted where an output goes, sign-offs raced from separate
processes, writers killed with SIGKILL, and a real small filesystem (tmpfs) that runs out.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from negotiation.cli import app
from negotiation.engine import run_scenario
from negotiation.events import EventType
from negotiation.graph import checkpoint_path, start_run
from negotiation.lifecycle import Status, transcript_status
from negotiation.scenario import load_scenario
from negotiation.transcript import (
    TranscriptConflict,
    TranscriptError,
    TranscriptWriter,
    load_verified,
    verify,
)
from tests.test_cli import NEGOTIATE
from tests.test_graph import core

SCENARIO = "rd-joint-venture"  # no signatories: unsigned sign-off with --reviewer
OUTSIDE = b"precious data that belongs to someone else\n"
#: The smallest header a transcript may start with (the writer's mechanics need no more).
HEADER = {"format": "negotiation-transcript/1", "scenario_id": "writes", "seed": 0}


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args),
                              env={"NO_COLOR": "1", "COLUMNS": "200", **(env or {})})


def refused(result: Result, path: Path) -> None:
    """Exit 2, a message that names ``path``, and no traceback."""
    assert result.exit_code == 2, result.output
    assert str(path) in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def pending_transcript(folder: Path, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"run-{seed}.jsonl"
    anyio.run(lambda: run_scenario(load_scenario(SCENARIO), seed=seed, transcript=path))
    assert transcript_status(path)[0] is Status.PENDING
    return path


def planted_link(at: Path, outside: Path) -> Path:
    """A symlink at ``at`` to a file outside the output folder that must not change."""
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_bytes(OUTSIDE)
    at.symlink_to(outside)
    return outside


# --- a transcript appears only with its header --------------------------------------------


def test_a_new_transcript_appears_on_disk_only_with_its_header(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with TranscriptWriter(path) as writer:
        assert not path.exists()
        writer.append(EventType.HEADER, HEADER)
        assert verify(path).ok and len(load_verified(path)) == 1
        writer.append(EventType.RESUMED, {"after_seq": 0, "reason": "second"})
    assert [e["type"] for e in load_verified(path)] == ["header", "resumed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]


def test_a_writer_that_never_wrote_its_header_leaves_no_file(tmp_path: Path) -> None:
    with TranscriptWriter(tmp_path / "run.jsonl"):
        pass
    assert list(tmp_path.iterdir()) == []


WRITER_LOOP = """
import sys
from pathlib import Path
from negotiation.transcript import TranscriptWriter

folder = Path(sys.argv[1])
print("ready", flush=True)
for n in range(10**6):
    with TranscriptWriter(folder / f"run-{n}.jsonl", fsync=False) as writer:
        writer.append("header", {"format": "negotiation-transcript/1", "scenario_id": "w",
                                 "seed": n, "body": "x" * 3000})
        writer.append("resumed", {"after_seq": 0, "reason": str(n)})
"""


def test_writers_killed_at_many_points_never_leave_an_empty_or_broken_transcript(
        tmp_path: Path) -> None:
    kills = 0
    for delay in [0.0, 0.001, 0.002, 0.003, 0.005, 0.008, 0.013, 0.021, 0.034, 0.055] * 2:
        folder = tmp_path / f"kill-{kills}"
        folder.mkdir()
        process = subprocess.Popen([sys.executable, "-c", WRITER_LOOP, str(folder)],
                                   stdout=subprocess.PIPE)
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        for transcript in folder.glob("*.jsonl"):
            assert transcript.stat().st_size > 0, f"{transcript} is empty"
            assert verify(transcript).ok, transcript
    assert kills == 20


def test_a_killed_run_never_leaves_an_empty_transcript(tmp_path: Path) -> None:
    for delay in (0.8, 1.1, 1.4, 1.7):
        out = tmp_path / f"after-{delay}"
        process = subprocess.Popen([str(NEGOTIATE), "run", "park-redevelopment", "-q",
                                    "--pace", "0.01", "--out", str(out)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        for transcript in out.glob("*.jsonl"):
            assert transcript.stat().st_size > 0 and verify(transcript).ok, transcript


# --- appends hold a lock and re-check the tail ----------------------------------------------


def test_a_sign_off_after_another_one_landed_is_refused_and_writes_nothing(
        tmp_path: Path) -> None:
    path = pending_transcript(tmp_path)
    first, second = TranscriptWriter.append_to(path), TranscriptWriter.append_to(path)
    with first, second:
        first.append("signoff", {"decision": "approve"})
        before = path.read_bytes()
        with pytest.raises(TranscriptConflict,
                           match="another sign-off was recorded meanwhile; review again"):
            second.append("signoff", {"decision": "reject"})
    assert path.read_bytes() == before and verify(path).ok


def test_an_append_based_on_an_old_head_is_refused(tmp_path: Path) -> None:
    path = pending_transcript(tmp_path)
    stale = load_verified(path)[-2]["hash"]
    with pytest.raises(TranscriptConflict):
        TranscriptWriter.append_to(path, head=stale)


def test_a_running_writer_refuses_to_append_after_a_foreign_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with TranscriptWriter(path) as writer:
        writer.append(EventType.HEADER, HEADER)
        with TranscriptWriter.append_to(path) as intruder:
            intruder.append(EventType.RESUMED, {"after_seq": 0, "reason": "someone else"})
        with pytest.raises(TranscriptConflict, match="changed on disk"):
            writer.append(EventType.RESUMED, {"after_seq": 0, "reason": "n=1"})
    assert [e["type"] for e in load_verified(path)] == ["header", "resumed"]


def _review_at_once(path: str, reviewer: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    result = cli("review", path, "--approve", "--reviewer", reviewer)
    results.put((reviewer, result.exit_code, " ".join(result.output.split())))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_twenty_concurrent_sign_offs_have_exactly_one_winner(tmp_path: Path,
                                                             seed: int) -> None:
    path = pending_transcript(tmp_path, seed)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(20), context.Queue()
    reviewers = [context.Process(target=_review_at_once,
                                 args=(str(path), f"reviewer-{n}", barrier, results))
                 for n in range(20)]
    for process in reviewers:
        process.start()
    outcomes = [results.get(timeout=120) for _ in reviewers]
    for process in reviewers:
        process.join(timeout=60)
    winners = [o for o in outcomes if o[1] == 0]
    losers = [o for o in outcomes if o[1] != 0]
    assert len(winners) == 1, outcomes
    assert "APPROVED" in winners[0][2]
    for _, code, output in losers:
        assert code == 2, output
        assert "another sign-off was recorded meanwhile; review again" in output \
            or "already ratified" in output, output
        assert "Traceback" not in output
    events = load_verified(path)
    signoffs = [e for e in events if e["type"] == "signoff"]
    assert len(signoffs) == 1 and signoffs[0]["reviewer"] == winners[0][0]


# --- symlinks planted where an output goes ---------------------------------------------------


def test_a_symlink_at_a_new_transcript_path_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "runs" / "run.jsonl"
    link.parent.mkdir()
    outside = planted_link(link, tmp_path / "elsewhere" / "victim.txt")
    with pytest.raises(TranscriptError, match="symbolic link") as caught:
        anyio.run(lambda: run_scenario(load_scenario(SCENARIO), transcript=link))
    assert str(link) in str(caught.value)
    dangling = tmp_path / "runs" / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "elsewhere" / "created-by-nobody.jsonl")
    with pytest.raises(TranscriptError, match="symbolic link"):
        anyio.run(lambda: run_scenario(load_scenario(SCENARIO), transcript=dangling))
    assert outside.read_bytes() == OUTSIDE
    assert not (tmp_path / "elsewhere" / "created-by-nobody.jsonl").exists()


def test_a_sign_off_through_a_symlinked_transcript_is_refused(tmp_path: Path) -> None:
    real = pending_transcript(tmp_path / "elsewhere")
    before = real.read_bytes()
    link = tmp_path / "shared" / "run.jsonl"
    link.parent.mkdir()
    link.symlink_to(real)
    refused(cli("review", str(link), "--approve", "--reviewer", "Mallory"), link)
    assert real.read_bytes() == before


def test_a_symlink_at_the_write_probe_is_never_written_through(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    outside = planted_link(out / ".write-probe", tmp_path / "victim.txt")
    result = cli("run", SCENARIO, "-q", "--out", str(out))
    # The probe has a fresh random name, created exclusively: the planted name is ignored.
    assert result.exit_code == 0, result.output
    assert outside.read_bytes() == OUTSIDE
    assert not [p for p in out.iterdir() if p.name.startswith(".write-probe.")]


@pytest.mark.parametrize("suffix,fmt", [(".charter.md", "md"), (".charter.png", "md"),
                                        (".charter.html", "html")])
def test_a_symlink_where_the_charter_goes_is_refused(tmp_path: Path, suffix: str,
                                                     fmt: str) -> None:
    path = pending_transcript(tmp_path)
    link = path.with_suffix(suffix)
    outside = planted_link(link, tmp_path / "elsewhere" / "victim")
    refused(cli("charter", str(path), "--format", fmt), link)
    assert outside.read_bytes() == OUTSIDE


def test_a_charter_is_regenerated_over_its_own_earlier_file(tmp_path: Path) -> None:
    path = pending_transcript(tmp_path)
    assert cli("charter", str(path)).exit_code == 0
    cli("review", str(path), "--approve", "--reviewer", "Ada")
    assert cli("charter", str(path)).exit_code == 0
    assert "ratified" in path.with_suffix(".charter.md").read_text(encoding="utf-8").lower()


def unfinished_transcript(folder: Path) -> Path:
    """A run cut after a few events, as a crash leaves it (the chain is a valid prefix)."""
    path = pending_transcript(folder)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:8]))
    assert verify(path).ok
    return path


def test_a_symlink_at_the_checkpoint_database_is_refused(tmp_path: Path) -> None:
    path = unfinished_transcript(tmp_path)
    link = checkpoint_path(path)
    outside = planted_link(link, tmp_path / "elsewhere" / "victim.db")
    refused(cli("resume", str(path), "-q"), link)
    assert outside.read_bytes() == OUTSIDE

    fresh = tmp_path / "fresh.jsonl"
    planted_link(checkpoint_path(fresh), tmp_path / "elsewhere" / "victim2.db")
    with pytest.raises(Exception, match="symbolic link"):
        anyio.run(lambda: start_run(load_scenario(SCENARIO), transcript=fresh))
    assert not fresh.exists(), "refused before the transcript was created"
    assert (tmp_path / "elsewhere" / "victim2.db").read_bytes() == OUTSIDE


def tournament_file(folder: Path) -> Path:
    config = folder / "t.yaml"
    config.write_text(yaml.safe_dump({"scenarios": [SCENARIO], "seeds": 10,
                                      "strategies": ["boulware", "tit_for_tat"]}))
    return config


def test_tournament_out_never_writes_through_a_symlink(tmp_path: Path) -> None:
    link = tmp_path / "results.csv"
    outside = planted_link(link, tmp_path / "elsewhere" / "victim.csv")
    refused(cli("tournament", str(tournament_file(tmp_path)), "--out", str(link)), link)
    assert outside.read_bytes() == OUTSIDE


def test_tournament_out_never_touches_a_file_that_is_not_its_results(tmp_path: Path) -> None:
    foreign = tmp_path / "notes.csv"
    foreign.write_bytes(b"name,value\nno newline at the end")
    refused(cli("tournament", str(tournament_file(tmp_path)), "--out", str(foreign)),
            foreign)
    assert foreign.read_bytes() == b"name,value\nno newline at the end"


@pytest.mark.parametrize("command", [
    ["scenarios", "generate", "--out", "{link}"],
    ["scenarios", "schema", "--out", "{link}"],
    ["map", "park-redevelopment", "--png", "{link}"],
    ["map", "park-redevelopment", "--mermaid", "{link}"],
    ["analyze", SCENARIO, "--plot", "{link}"],
])
def test_other_outputs_never_write_through_a_symlink(tmp_path: Path,
                                                     command: list[str]) -> None:
    link = tmp_path / "out.file"
    outside = planted_link(link, tmp_path / "elsewhere" / "victim")
    refused(cli(*[part.format(link=link) for part in command]), link)
    assert outside.read_bytes() == OUTSIDE


# --- a full disk (a real, small tmpfs) ----------------------------------------------------------


@contextmanager
def small_disk(mount_point: Path, size: str = "4m") -> Iterator[Path]:
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
                   check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(disk: Path) -> Path:
    """Fill the disk completely with a ballast file (tmpfs: page by page)."""
    ballast = disk / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for chunk in (1 << 20, 1 << 12):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return ballast


def free_up(ballast: Path, amount: int) -> None:
    os.truncate(ballast, max(ballast.stat().st_size - amount, 0))


def out_of_space(result: Result) -> bool:
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 0:
        return False
    assert result.exit_code == 2, result.output
    assert "no space left" in text, result.output
    return True


FREE_SPACE = [0, 4, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024, 2048, 3072]  # KiB


def run_until_space_suffices(disk: Path, out: Path, stopped: Path, *driver: str
                             ) -> list[str]:
    """Start runs on a nearly full disk, with more free space each time, until one
    finishes; each stopped run's transcript must verify and is kept in ``stopped``.
    Returns the messages of the runs that stopped."""
    messages = []
    for kib in FREE_SPACE:
        ballast = fill(disk)
        free_up(ballast, kib * 1024)
        result = cli("run", SCENARIO, "-q", "--out", str(out), *driver,
                     env={"NEGOTIATE_MIN_FREE_MIB": "0"})
        finished = not out_of_space(result)
        for path in out.glob("*.jsonl"):
            assert path.stat().st_size > 0 and verify(path).ok, path.read_bytes()[-300:]
            if not finished:
                shutil.move(path, stopped / f"{kib}k-{path.name}")
        if finished:
            return messages
        messages.append(" ".join(result.output.split()))
        for leftover in out.iterdir():  # checkpoints of the stopped run
            leftover.unlink()
        ballast.unlink()
    raise AssertionError("the run never finished")


@pytest.mark.parametrize("driver", [["--driver", "plain"], ["--driver", "graph"], []],
                         ids=["plain", "graph", "auto"])
def test_a_run_that_runs_out_of_space_stops_cleanly_and_resumes(tmp_path: Path,
                                                                 driver: list[str]) -> None:
    uninterrupted = anyio.run(lambda: run_scenario(load_scenario(SCENARIO), seed=0))
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    with small_disk(tmp_path / "disk") as disk:
        out = disk / "runs"
        out.mkdir()
        messages = run_until_space_suffices(disk, out, stopped, *driver)
        (finished,) = out.glob("*.jsonl")
        assert core(load_verified(finished)) == core(uninterrupted.transcript.events)
        assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    lengths = {len(load_verified(path)) for path in stopped.glob("*.jsonl")}
    assert len(lengths) >= 3, f"the disk should run out at several points: {messages}"
    for path in stopped.glob("*.jsonl"):
        resumed = cli("resume", str(path), "-q")
        assert resumed.exit_code == 0, resumed.output
        assert core(load_verified(path)) == core(uninterrupted.transcript.events)


@pytest.mark.parametrize("durable", [False, True], ids=["plain loop", "graph"])
def test_resume_that_runs_out_of_space_stops_cleanly_and_resumes_again(
        tmp_path: Path, durable: bool) -> None:
    uninterrupted = anyio.run(lambda: run_scenario(load_scenario(SCENARIO), seed=0))
    with small_disk(tmp_path / "disk") as disk:
        path = unfinished_transcript(disk)
        if durable:  # a graph run's (empty) checkpoints: resume continues through the graph
            checkpoint_path(path).touch()
        ballast = fill(disk)
        failures = 0
        for _ in range(60):
            if not out_of_space(cli("resume", str(path), "-q")):
                break
            failures += 1
            assert verify(path).ok
            if load_verified(path)[-1]["type"] == "outcome":
                break  # the outcome was written; only the checkpoint after it failed
            free_up(ballast, 65536 if durable else 8192)  # the plain loop writes less
        assert failures >= 2
        assert core(load_verified(path)) == core(uninterrupted.transcript.events)


def test_a_charter_on_a_full_disk_is_a_clear_error_and_leaves_no_partial_file(
        tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        path = pending_transcript(disk)
        fill(disk)
        for fmt in ("md", "html"):
            result = cli("charter", str(path), "--format", fmt)
            assert out_of_space(result)
        assert sorted(p.name for p in disk.iterdir()) == ["ballast", path.name]


def test_a_campaign_on_a_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    from tests.test_campaign import RIVERSIDE

    with small_disk(tmp_path / "disk") as disk:
        ballast = fill(disk)
        free_up(ballast, 64 * 1024)
        result = cli("campaign", str(RIVERSIDE), "--out", str(disk / "campaigns"), "--no-plot")
        assert out_of_space(result)
        for transcript in (disk / "campaigns").rglob("*.jsonl"):
            assert verify(transcript).ok


def test_a_tournament_on_a_full_disk_keeps_whole_rows_and_continues(tmp_path: Path) -> None:
    config = tournament_file(tmp_path)
    with small_disk(tmp_path / "disk") as disk:
        out = disk / "results.csv"
        ballast = fill(disk)
        free_up(ballast, 4096)
        first = cli("tournament", str(config), "--out", str(out), "--no-parquet")
        assert out_of_space(first)
        ballast.unlink()
        again = cli("tournament", str(config), "--out", str(out), "--no-parquet")
        assert again.exit_code == 0, again.output
        rows = out.read_text(encoding="utf-8").splitlines()
        assert len(rows) == 1 + len(set(rows[1:])) and len(rows) > 1
