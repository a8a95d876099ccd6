"""Runs started in one folder in the same second get different transcript names."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from negotiation.engine import new_transcript_path
from negotiation.scenario import load_scenario
from negotiation.transcript import verify
from tests.test_cli import NEGOTIATE, REPO


def test_names_chosen_in_the_same_second_differ(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Two runs pick their names before either has written its file (the race): a counter
    # over existing files gave both the same name, and the second failed "already exists".
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764000000")  # one fixed second for both
    scenario = load_scenario("platform-app-vendor")
    names = {new_transcript_path(tmp_path, scenario, 0).name for _ in range(50)}
    assert len(names) == 50
    assert all(name.startswith("platform-app-vendor-seed0-20251124T160000Z-")
               for name in names)


def test_two_runs_started_together_in_one_folder_both_succeed(tmp_path: Path) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1764000000", "NO_COLOR": "1"}
    command = [str(NEGOTIATE), "run", "platform-app-vendor", "--driver", "plain", "--quiet",
               "--out", str(tmp_path)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env) for _ in range(2)]
    results = [(*run.communicate(timeout=120), run.returncode) for run in runs]
    for _, stderr, code in results:
        assert code == 0, stderr
        assert "already exists" not in stderr
    transcripts = sorted(tmp_path.glob("*.jsonl"))
    assert len(transcripts) == 2
    assert all(verify(path).ok for path in transcripts)


def test_campaigns_started_in_one_folder_in_the_same_second_get_their_own_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from negotiation.campaign.model import load_campaign
    from negotiation.campaign.runner import new_campaign_folder

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764000000")
    campaign = load_campaign(REPO / "campaigns" / "riverside-park.yaml").campaign
    # Each call claims its folder (an exclusive mkdir): the second, in the same second,
    # gets '-2' instead of the first one's name.
    first, second = (new_campaign_folder(tmp_path, campaign, 0) for _ in range(2))
    assert first.is_dir() and second.is_dir() and first != second
    assert second.name == f"{first.name}-2"
