"""The documented exit codes: 0 clean end, 1 verification failed, 2 bad input or refused,
3 a run ended because an agent failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import negotiate, only_transcript


@pytest.mark.parametrize("driver", ["plain", "graph"])
def test_a_run_ended_by_a_failing_agent_exits_3_with_a_valid_transcript(
        tmp_path: Path, driver: str) -> None:
    recording = tmp_path / "empty.calls.jsonl"
    recording.write_text("")
    done = negotiate("run", "platform-app-vendor", "--agent", "vendor=llm:gpt-x", "--replay",
                     str(recording), "--driver", driver, "-q", "--out", str(tmp_path / "runs"))
    assert done.returncode == 3, done.stderr
    assert "an agent failed" in done.stderr and "not in the recording" in done.stderr
    assert "Traceback" not in done.stderr
    assert negotiate("verify", str(only_transcript(tmp_path / "runs"))).returncode == 0


def test_a_clean_run_exits_0_bad_input_2_and_a_failed_verification_1(tmp_path: Path) -> None:
    assert negotiate("run", "rd-joint-venture", "-q", "--out", str(tmp_path)).returncode == 0
    assert negotiate("run", "no-such-scenario", "-q").returncode == 2
    path = only_transcript(tmp_path)
    path.write_text(path.read_text().replace('"seed":0', '"seed":1', 1))
    assert negotiate("verify", str(path)).returncode == 1


def test_help_documents_the_exit_codes() -> None:
    shown = negotiate("--help").stdout
    for line in ("0", "1", "2", "3"):
        assert f"{line} " in shown
    assert "agent failed" in shown and "verification failed" in shown
