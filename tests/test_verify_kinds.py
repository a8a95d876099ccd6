"""``verify`` and ``transcripts`` tell a tampered transcript from a folder of runs, a file
that is not a transcript, and a last line cut short by a crash."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from negotiation.cli import app

runner = CliRunner()


def negotiate(*args: str) -> tuple[int, str]:
    done = runner.invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    return done.exit_code, done.output


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    code, output = negotiate("run", "rd-joint-venture", "-q", "--out", str(folder))
    assert code == 0, output
    (path,) = folder.glob("*.jsonl")
    return path


def copy_of(run: Path, folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    return Path(shutil.copy(run, folder / name))


def crash_cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-20])  # the last line loses its end and its newline


def test_verify_a_folder_of_runs_checks_each_transcript_and_names_the_bad_one(
        one_run: Path, tmp_path: Path) -> None:
    copy_of(one_run, tmp_path, "a.jsonl")
    bad = copy_of(one_run, tmp_path, "b.jsonl")
    bad.write_text(bad.read_text().replace('"seed":', '"seed":9', 1))
    code, output = negotiate("verify", str(tmp_path))
    assert code == 1
    assert "OK a.jsonl" in output
    assert "TAMPERED b.jsonl: line 1" in output
    assert "campaign" not in output


def test_verify_a_folder_of_clean_runs_passes(one_run: Path, tmp_path: Path) -> None:
    copy_of(one_run, tmp_path, "a.jsonl")
    copy_of(one_run, tmp_path, "b.jsonl")
    code, output = negotiate("verify", str(tmp_path))
    assert code == 0, output
    assert "OK a.jsonl" in output and "OK b.jsonl" in output


def test_verify_a_file_that_is_not_a_transcript_refuses_it_without_saying_tampered(
        tmp_path: Path) -> None:
    other = tmp_path / "notes.jsonl"
    other.write_text('{"name": "a list of things"}\n')
    code, output = negotiate("verify", str(other))
    assert code == 2
    assert "not a transcript" in output and "TAMPERED" not in output


def test_verify_a_yaml_file_refuses_it_as_not_a_transcript(tmp_path: Path) -> None:
    other = tmp_path / "scenario.yaml"
    other.write_text("id: x\nparties: []\n")
    code, output = negotiate("verify", str(other))
    assert code == 2 and "not a transcript" in output and "TAMPERED" not in output


def test_verify_a_crash_cut_last_line_says_interrupted_and_how_to_repair(
        one_run: Path, tmp_path: Path) -> None:
    path = copy_of(one_run, tmp_path, "cut.jsonl")
    crash_cut(path)
    code, output = negotiate("verify", str(path))
    assert code == 1
    assert "TAMPERED" not in output
    assert "interrupted: the last line was cut short by a crash; negotiate resume" in \
        " ".join(output.split())


def test_a_cut_line_that_is_not_the_last_is_still_tampered(one_run: Path,
                                                          tmp_path: Path) -> None:
    path = copy_of(one_run, tmp_path, "cut.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3][:-20]  # a short line in the middle, then more lines
    path.write_text("".join(lines))
    code, output = negotiate("verify", str(path))
    assert code == 1 and "TAMPERED" in output and "interrupted" not in output


def test_transcripts_lists_interrupted_and_not_a_transcript_apart_from_tampered(
        one_run: Path, tmp_path: Path) -> None:
    crash_cut(copy_of(one_run, tmp_path, "cut.jsonl"))
    (tmp_path / "other.jsonl").write_text('{"rows": 3}\n')
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00")
    copy_of(one_run, tmp_path, "fine.jsonl")
    code, output = negotiate("transcripts", str(tmp_path))
    assert code == 0, output
    rows = {line.split()[1]: line for line in output.splitlines()
            if line.startswith("│") and ".jsonl" in line}
    assert "interrupted" in rows["cut.jsonl"] and "TAMPERED" not in rows["cut.jsonl"]
    assert "not a transcript" in rows["other.jsonl"]
    assert "not a transcript" in rows["binary.jsonl"]
    assert "TAMPERED" not in output
