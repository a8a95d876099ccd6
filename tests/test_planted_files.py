"""Files planted under a transcript's name by someone with write access to the folder: a
FIFO (reading one waits forever for a writer) or a folder.  Listing, verifying and the
studio's past runs name them and go on; nothing hangs, nothing ends in a traceback."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from negotiation.studio import Studio, create_app
from negotiation.transcript import TranscriptError, verify
from tests.studio_support import CLI

BASE = "http://testserver"


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    folder = tmp_path / "transcripts"
    folder.mkdir()
    os.mkfifo(folder / "fifo.jsonl")
    (folder / "folder.jsonl").mkdir()
    return folder


def test_verify_refuses_a_fifo_or_a_folder_at_once(planted: Path) -> None:
    for name in ("fifo.jsonl", "folder.jsonl"):
        with pytest.raises(TranscriptError, match="not a regular file"):
            verify(planted / name)


def test_the_transcripts_listing_names_planted_files_instead_of_hanging(planted: Path) -> None:
    listing = subprocess.run([*CLI, "transcripts", str(planted), "--json"], timeout=60,
                             capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    rows = {row["file"]: row for row in json.loads(listing.stdout)["transcripts"]}
    assert rows.keys() == {"fifo.jsonl", "folder.jsonl"}
    assert all("not a regular file" in row["outcome"] for row in rows.values())
    verified = subprocess.run([*CLI, "verify", str(planted / "fifo.jsonl")], timeout=60,
                              capture_output=True, text=True)
    assert verified.returncode == 2 and "not a regular file" in verified.stderr
    assert "Traceback" not in verified.stderr


def test_the_studio_lists_planted_files_as_not_transcripts(planted: Path) -> None:
    with TestClient(create_app(Studio(planted)), base_url=BASE) as client:
        page = client.get("/transcripts")
        assert page.status_code == 200
        assert page.text.count("not a transcript") == 2
        for name in ("fifo", "folder"):
            assert client.get(f"/transcripts/{name}").status_code == 404
