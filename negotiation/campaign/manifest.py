"""Campaign folders on disk: ``campaign.json`` (written after every stage) and checking a
folder's transcripts and the links between its stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from negotiation import files
from negotiation.campaign.model import CampaignResult, LoadedCampaign
from negotiation.events import STAGE_ENDS
from negotiation.transcript import TranscriptError, verify

MANIFEST = "campaign.json"
MANIFEST_FORMAT = "negotiation-campaign/1"


def write_manifest(loaded: LoadedCampaign, seed: int, result: CampaignResult) -> None:
    """``campaign.json`` in the result's folder, replaced atomically."""
    campaign = loaded.campaign
    body = {
        "format": MANIFEST_FORMAT, "campaign": campaign.id,
        "title": campaign.title, "digest": loaded.digest, "seed": seed,
        "source": Path(loaded.source).name, "stopped": result.stopped,
        "stages": [{"index": s.index, "id": s.id, "kind": s.kind, "title": s.title,
                    "transcript": s.transcript, "status": s.status, "reason": s.reason,
                    "parties": s.parties, "rounds": s.rounds, "terms": s.terms,
                    "values": s.values, "trust": s.trust,
                    "reservation_values": s.reservations}
                   for s in result.stages],
    }
    try:
        files.write_file(result.folder / MANIFEST,
                         json.dumps(body, indent=2, sort_keys=True) + "\n", replace=True)
    except files.OutputError as error:
        raise TranscriptError(str(error)) from None


def verify_campaign(folder: Path) -> list[str]:
    """Problems with a campaign folder: a transcript whose chain fails, or a stage whose
    link does not match the previous stage's event.  Empty when everything holds."""
    try:
        manifest = read_manifest(folder)
    except TranscriptError as error:
        return [str(error)]
    problems: list[str] = []
    previous: dict[str, Any] | None = None
    for stage in manifest.get("stages", []):
        path = folder / stage["transcript"]
        try:
            checked = verify(path)
        except TranscriptError as error:
            problems.append(str(error))
            previous = None
            continue
        if not checked.ok or checked.transcript is None or checked.transcript.header is None:
            problems.append(f"{path.name}: TAMPERED ({checked.reason})")
            previous = None
            continue
        header = checked.transcript.header
        link = header.options.get("campaign", {})
        expected = None if previous is None else {
            "transcript": previous["transcript"], "seq": previous["seq"]}
        if link.get("previous") != expected or \
                header.wall.get("previous_hash") != (previous or {}).get("hash"):
            problems.append(f"{path.name}: its link does not match the previous stage "
                            f"({'none' if expected is None else expected['transcript']})")
        if link.get("digest") != manifest.get("digest"):
            problems.append(f"{path.name}: written by another campaign (digest differs)")
        last = checked.transcript.stage_end
        previous = None if last is None else {"transcript": path.name, "seq": last.seq,
                                              "hash": last.hash}
    return problems


def stage_end(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The event a next stage links to: the outcome, or the evaluation (sign-offs may be
    appended after it)."""
    return next((e for e in events if e["type"] in STAGE_ENDS), None)


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TranscriptError(f"{folder / MANIFEST}: cannot read ({error})") from None
    return data

