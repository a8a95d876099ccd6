"""The files beside a transcript (its checkpoints, its LLM recording) and the check, before
a run starts, that its folder can take one: shared by every driver, without LangGraph."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from negotiation import files
from negotiation.transcript import TranscriptError

#: Free space required before a run starts, so that it cannot fail half-way for lack of it.
MIN_FREE_BYTES = 20 * 1024 * 1024


def checkpoint_path(transcript: Path) -> Path:
    """The graph driver's SQLite checkpoints of ``transcript``'s run."""
    return transcript.with_suffix(".checkpoints.sqlite")


def calls_path(transcript: Path) -> Path:
    """The recording of ``transcript``'s LLM calls, so that a resumed run does not pay
    for them twice."""
    return transcript.with_suffix(".calls.jsonl")


def min_free_bytes() -> int:
    """The free space a run needs before it starts: ``NEGOTIATE_MIN_FREE_MIB`` (whole MiB)
    when set, else :data:`MIN_FREE_BYTES`.  A run that still runs out of space stops with
    a valid transcript that resumes once space is freed."""
    setting = os.environ.get("NEGOTIATE_MIN_FREE_MIB", "").strip()
    return int(setting) * 2**20 if setting.isdigit() else MIN_FREE_BYTES


def check_writable(folder: Path) -> None:
    """Fail before the negotiation starts if the transcript folder cannot take a run.
    The probe is a new file with a random name, created exclusively: nothing planted in
    the folder can redirect it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe, fd = files.temporary_beside(folder / ".write-probe")
        try:
            files.write_all(fd, b"x" * 4096)
        finally:
            os.close(fd)
            probe.unlink()
    except (OSError, files.OutputError) as error:
        if files.is_disk_full(error):
            raise TranscriptError(f"no space left in {folder}; free some space or choose "
                                  "another --out folder") from None
        reason = error.strerror if isinstance(error, OSError) else error
        raise TranscriptError(f"cannot write transcripts to {folder}: {reason or error}; "
                              "choose another --out folder") from None
    free, needed = shutil.disk_usage(folder).free, min_free_bytes()
    if free < needed:
        raise TranscriptError(f"only {free // 1024} KiB free in {folder}; a run needs at "
                              f"least {needed / 2**20:g} MiB (NEGOTIATE_MIN_FREE_MIB). Free "
                              "some space or choose another --out folder")
