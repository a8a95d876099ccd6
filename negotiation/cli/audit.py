"""Auditing runs: ``verify``, ``report``, ``review`` (sign-off), ``transcripts``, ``charter``."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from negotiation.cli.common import (
    UsageError,
    console,
    error_console,
)
from negotiation.cli.output import JsonFlag, emit
from negotiation.safe_text import for_terminal, plain

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from negotiation.events import Header, Outcome, Transcript
    from negotiation.lifecycle import Status
    from negotiation.model import Scenario
    from negotiation.signing import Expected
    from negotiation.transcript import Verification


def verify_command(
    transcript: Annotated[Path, typer.Argument(
        help="A transcript (.jsonl), a folder of runs, or a campaign folder to check.")],
    signatories: Annotated[list[Path] | None, typer.Option(
        "--signatories", metavar="FILE",
        help="Signatories you trust, obtained outside the transcript: records from "
             "'negotiate keys new', or the scenario file you agreed to (its signatories: "
             "block, whose quorums must then match too). Every declared and signing key must "
             "be among them. Repeatable.")] = None,
    head: Annotated[str | None, typer.Option(
        metavar="HASH", help="A chain head recorded earlier (e.g. printed when you signed): "
                             "the transcript must still contain it (detects truncation and "
                             "rewrites).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-compute a transcript's hash chain and check every sign-off signature; exit 1 and
    say what failed.  Given a folder of runs, check each transcript in it; given a campaign
    folder, check every stage and the links between them.  A last line cut short by a crash
    is reported as interrupted ('negotiate resume' repairs it), not as tampering."""
    from negotiation import render
    from negotiation.lifecycle import sign_offs
    from negotiation.signing import read_expected

    if as_json:
        from negotiation.cli.audit_json import verify_object

        checked_json = verify_object(transcript, signatories, head)
        emit(checked_json)
        if not checked_json["ok"]:
            raise typer.Exit(1)
        return
    if transcript.is_dir() and not is_campaign(transcript):
        verify_folder(transcript)
        return
    if transcript.is_dir():
        from negotiation.campaign import verify_campaign

        problems = verify_campaign(transcript)
        for problem in problems:
            console.print(f"[bold red]TAMPERED[/] {for_terminal(problem)}")
        if problems:
            raise typer.Exit(1)
        console.print(f"[bold green]OK[/] {for_terminal(transcript)}: every stage verified and "
                      "linked")
        return
    expected = read_expected(signatories) if signatories else None
    if head is not None and not re.fullmatch(r"[0-9a-f]{64}", head):
        raise UsageError(f"--head {head!r} is not a chain head: give the full 64-character "
                         "hash as it was printed")
    result = checked(transcript)
    if not result.ok or result.transcript is None:
        console.print(f"{damage_label(transcript, result)} {for_terminal(transcript)}: "
                      f"{for_terminal(damage_reason(transcript, result))}")
        raise typer.Exit(1)
    events = result.transcript
    problems = audit_problems(events, expected, head)
    for problem in problems:
        console.print(f"[bold red]FAILED[/] {for_terminal(transcript)}: {for_terminal(problem)}",
                      soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    note = "" if events.finished else \
        "  [yellow](no outcome yet: the run is in progress or was interrupted)[/]"
    console.print(f"[bold green]OK[/] {for_terminal(transcript)}: {len(events)} events, "
                  f"head {result.head_hash}{note}")
    if events.signoffs or signatories:
        console.print(render.signoff_view(sign_offs(events, expected)))
    if head is not None:
        console.print(f"[bold green]OK[/] the recorded head {head[:16]}… is event "
                      f"{next(e.seq for e in events.events if e.hash == head)}")


#: ``negotiation.campaign.MANIFEST``, named here so that verifying a run does not load the
#: campaign package (tests/test_startup.py pins that the two agree).
CAMPAIGN_MANIFEST = "campaign.json"


def is_campaign(folder: Path) -> bool:
    """Whether ``folder`` holds a campaign (its manifest)."""
    return (folder / CAMPAIGN_MANIFEST).exists()


def checked(path: Path) -> Verification:
    """``verify``, refusing (exit 2) a file that is not a transcript at all rather than
    calling it tampered."""
    from negotiation.transcript import TranscriptError, verify

    result = verify(path)
    if not result.ok and not looks_like_transcript(path):
        raise TranscriptError(f"{path} is not a transcript: its first line is not a "
                              "negotiate header (transcripts are the .jsonl files that "
                              "'negotiate run' writes)")
    return result


def looks_like_transcript(path: Path) -> bool:
    """Whether the file's first line is a JSON object that calls itself a header: a file
    that does not is something else, not a tampered transcript."""
    from negotiation.events import EventType

    try:
        with path.open("rb") as handle:
            first = handle.readline()
        event = json.loads(first)
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(event, dict) and event.get("type") == EventType.HEADER


def interrupted(path: Path, result: Verification) -> bool:
    """A crash cut the last line short (no final newline) and every line before it holds:
    ``negotiate resume`` drops that line and continues, so nothing was tampered with."""
    if result.ok or result.bad_line is None or result.bad_line < 2:
        return False
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return not data.endswith(b"\n") and result.bad_line == data.count(b"\n") + 1


def damage_label(path: Path, result: Verification) -> str:
    return "[bold yellow]INTERRUPTED[/]" if interrupted(path, result) else "[bold red]TAMPERED[/]"


def damage_reason(path: Path, result: Verification) -> str:
    if interrupted(path, result):
        return (f"interrupted: the last line was cut short by a crash; negotiate resume "
                f"{path} repairs it")
    return result.reason


def verify_folder(folder: Path) -> None:
    """Verify every transcript in a folder of ordinary runs, one line each; exit 1 when any
    fails, 2 when there is none."""
    from negotiation.transcript import TranscriptError

    files = transcript_files(folder)
    if not files:
        raise UsageError(f"{folder} holds no transcripts (.jsonl) and is not a campaign "
                         f"folder (no {CAMPAIGN_MANIFEST})")
    failed = False
    for path in files:
        name = for_terminal(path.name)
        try:
            result = checked(path)
        except TranscriptError as error:
            console.print(f"[bold yellow]SKIPPED[/] {for_terminal(error)}", soft_wrap=True)
            continue
        problems = [damage_reason(path, result)] if not result.ok or result.transcript is None \
            else audit_problems(result.transcript, None, None)
        if problems:
            failed = True
            label = damage_label(path, result) if not result.ok else "[bold red]FAILED[/]"
            console.print(f"{label} {name}: {for_terminal(problems[0])}", soft_wrap=True)
        else:
            console.print(f"[bold green]OK[/] {name}: {len(result.transcript or ())} events")
    if failed:
        raise typer.Exit(1)


def transcript_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.jsonl") if not p.name.endswith(".calls.jsonl"))


def audit_problems(events: Transcript, expected: Expected | None,
                   head: str | None) -> list[str]:
    """What beyond the hash chain does not check out: signatures, trusted keys, the head."""
    from negotiation.lifecycle import sign_offs
    from negotiation.transcript import TranscriptError

    try:
        signed = sign_offs(events, expected)
    except TranscriptError as error:
        return [str(error)]
    problems = list(signed.problems)
    if expected is not None and not signed.attributable:
        problems.append("you gave signatory records, but this transcript's scenario declares "
                        "no signatories: its sign-offs (if any) are not attributable")
    if head is not None and all(event.hash != head for event in events.events):
        problems.append(f"the recorded head {head[:16]}… is not in the transcript: events "
                        "were removed or rewritten since it was recorded")
    return problems


def report(
    transcript: Annotated[Path, typer.Argument(help="A transcript (.jsonl).")],
    plot: Annotated[Path | None, typer.Option(
        help="Draw each party's offers over time in utility space to this PNG, and each "
             "party's utility of each offer by round beside it (NAME.over-time.png).")
    ] = None,
    conversation: Annotated[bool, typer.Option(
        "--conversation", help="Replay the run as a conversation: each party's moves, "
                               "messages and rationales, flagged and blocked text marked."
    )] = False,
    as_json: JsonFlag = False,
) -> None:
    """Summarise a run from its transcript alone (with tokens and cost when it had LLM
    agents); optionally replay its conversation or plot the offers."""
    from negotiation import render
    from negotiation.events import Blocked, Passed
    from negotiation.lifecycle import sign_offs

    if as_json:
        if conversation:
            raise UsageError("--conversation replays the run for reading; leave it out "
                             "with --json (the moves are in the transcript itself)")
        from negotiation.cli.audit_json import report_object, report_plot

        emit({**report_object(transcript), "plot": None if plot is None else str(plot)})
        if plot is not None:
            for drawn in report_plot(transcript, plot):
                error_console().print(f"Plot: [bold]{for_terminal(str(drawn))}[/]")
        return
    events, header, scenario, outcome = finished_run(transcript)
    console.print(render.scenario_panel(scenario, header.agents, header.seed, rounds_of(header)))
    if conversation:
        from negotiation.conversation import conversation as turns
        from negotiation.render_conversation import ConversationStyle, conversation_view

        console.print(conversation_view(turns(scenario, events.events),
                                        ConversationStyle(scenario.party_ids)))
    moves = events.turns
    blocked = sum(isinstance(e, Blocked) for e in moves)
    passed = len(events.of_type(Passed))
    idle = f", {passed} passed (the seat was idle)" if passed else ""
    console.print(f"{len(moves)} moves, {blocked} blocked by the referee{idle}")
    console.print(render.outcome_view(scenario, outcome, header.agents))
    print_usage(events, header.agents)
    if outcome.agreed:
        console.print(render.signoff_view(sign_offs(events)))
    if plot is not None:
        from negotiation.analysis import SpaceAnalysis
        from negotiation.plots import plot_run

        for drawn in plot_run(SpaceAnalysis(scenario), events.proposals, outcome.utilities,
                              plot, outcome.agreement.round if outcome.agreement else None):
            console.print(f"Plot: [bold]{for_terminal(str(drawn))}[/]")



def review(
    transcript: Annotated[Path, typer.Argument(help="A transcript (.jsonl) to review.")],
    approve: Annotated[bool | None, typer.Option(
        "--approve/--reject", help="Decide without prompting (for scripts).")] = None,
    as_org: Annotated[str | None, typer.Option(
        "--as", metavar="ORG", help="Sign for this organisation (scenarios with "
                                    "signatories).")] = None,
    key: Annotated[Path | None, typer.Option(
        metavar="PATH", help="Your private key (default: your one local key that the "
                             "scenario declares for ORG; see 'negotiate keys list').")] = None,
    reviewer: Annotated[str | None, typer.Option(
        help="Your name, for scenarios without signatories (recorded as unsigned).")] = None,
    comment: Annotated[str, typer.Option(help="Why you approve or reject.")] = "",
) -> None:
    """Review a run and sign it off: approve or reject its agreement.  With signatories in
    the scenario the decision is signed with your Ed25519 key for your organisation."""
    import anyio
    from rich.prompt import Prompt

    from negotiation import render
    from negotiation.lifecycle import SignOffError, Status, sign_off, sign_offs, verified_status
    from negotiation.transcript import embedded_scenario, negotiation_of, verify

    result = verify(transcript)
    status = verified_status(result)
    if status is Status.TAMPERED or result.transcript is None:
        raise SignOffError(f"{transcript} is TAMPERED ({tampered_reason(result)}); it "
                           "cannot be reviewed or signed")
    events = result.transcript
    header = negotiation_of(events, transcript)
    scenario = embedded_scenario(header)
    if approve is not None and status is not Status.PENDING:
        sign_off(transcript, approve=approve, comment=comment)  # refuses, saying why
    console.print(render.scenario_panel(scenario, header.agents, header.seed, rounds_of(header)))
    console.print(render.profiles_view(scenario))
    console.print(render.timeline_view(scenario, events))
    outcome = events.outcome
    if outcome is not None:
        console.print(render.outcome_view(scenario, outcome, header.agents))
        if outcome.fairness is not None:
            console.print(render.fairness_view(outcome.fairness))
        if outcome.agreed:
            console.print(render.signoff_view(sign_offs(events)))
    print_usage(events, header.agents)
    console.print(f"\nStatus: [bold]{status.value}[/]")
    if status is not Status.PENDING:
        return
    signed = bool(scenario.signatories)
    interactive = approve is None
    if interactive and not sys.stdin.isatty():
        how = "--as ORG [--key PATH]" if signed else "--reviewer NAME"
        console.print(f"Not signed: pass --approve or --reject with {how} (and --comment "
                      "TEXT) to decide.")
        return
    signer = signing_key(scenario, as_org, key) if signed else None
    if signer is None and not interactive and not (reviewer or "").strip():
        raise UsageError("a sign-off needs the reviewer's name: --reviewer NAME")
    if interactive:
        if signer is None:
            reviewer = reviewer or Prompt.ask("Your name")
            if not reviewer.strip():
                raise UsageError("a sign-off needs the reviewer's name; nothing was recorded")
        else:
            console.print(f"Signing for [bold]{for_terminal(signer[0])}[/] as "
                          f"{for_terminal(signer[2])}.")
        approve = Prompt.ask("Decision", choices=["approve", "reject"]) == "approve"
        comment = comment or Prompt.ask("Comment", default="")
    inline = header.inline_signoff
    if inline:
        from negotiation.graph import check_signoff_checkpoint, resume_signoff

        anyio.run(lambda: check_signoff_checkpoint(transcript))  # refused before signing
    event = sign_off(transcript, approve=bool(approve), comment=comment,
                     reviewer=reviewer or "", org=signer[0] if signer else None,
                     key=signer[1] if signer else None)
    resumed = False
    if inline:
        resumed = anyio.run(lambda: resume_signoff(transcript))
    who = (f"{for_terminal(event['signer'])} for {for_terminal(event['org'])} (key "
           f"{event['fingerprint'][:16]}…)" if signer else
           f"{for_terminal(event['reviewer'])} [yellow](unsigned, not attributable)[/]")
    console.print(f"[bold]{event['decision'].upper()}D[/] by {who}; recorded as event "
                  f"{event['seq']}{'; the paused run is resumed' if resumed else ''}.")
    console.print(f"Status: [bold]{event['status']}[/]")
    console.print(f"Chain head: [bold]{event['hash']}[/]\nKeep it: [cyan]negotiate verify "
                  f"{for_terminal(transcript)} --head {event['hash']}[/] later proves that "
                  "nothing was cut from or changed in the transcript up to your sign-off.",
                  soft_wrap=True)


def finished_run(path: Path) -> tuple[Transcript, Header, Scenario, Outcome]:
    """A finished run's transcript, header, embedded scenario and outcome (what ``report``
    reads, with or without ``--json``); a run without an outcome yet is refused with the
    command that continues it."""
    from negotiation.transcript import embedded_scenario, negotiation_of, read_transcript

    events = read_transcript(path)
    header = negotiation_of(events, path)
    scenario = embedded_scenario(header)
    outcome = events.outcome
    if outcome is None:
        raise UsageError(f"{path} has no outcome yet (the run is in progress or was "
                         f"interrupted); continue it with: negotiate resume {path}")
    return events, header, scenario, outcome


def print_usage(events: Transcript, agents: Mapping[str, str]) -> None:
    """Tokens in/out and cost per party and in total, when the run had LLM calls."""
    from negotiation.render_conversation import usage_of_run

    table = usage_of_run(events.events, agents)
    if table is not None:
        console.print(table)


def tampered_reason(result: Verification) -> str:
    """Why a transcript reads as TAMPERED: its first bad line, or its first bad sign-off."""
    from negotiation.lifecycle import sign_offs
    from negotiation.transcript import TranscriptError

    if not result.ok or result.transcript is None:
        return result.reason
    try:
        problems = sign_offs(result.transcript).problems
    except TranscriptError as error:
        return str(error)
    return problems[0] if problems else "a sign-off does not verify"


def rounds_of(header: Header) -> int:
    return header.protocol.rounds if header.protocol is not None else 0


def signing_key(scenario: Scenario, as_org: str | None, key_path: Path | None
                ) -> tuple[str, Ed25519PrivateKey, str]:
    """The organisation, private key and signatory name to sign with: ``--key``, or the one
    local key that the scenario declares (for ``--as`` if given)."""
    from negotiation.lifecycle import SignOffError
    from negotiation.signing import fingerprint, load_private_key, local_keys, public_key_of

    declared = {fingerprint(k.public_key): (org, k.name)
                for org, spec in scenario.signatories.items() for k in spec.keys}
    if key_path is not None:
        private = load_private_key(key_path)
        fp = fingerprint(public_key_of(private))
        if fp not in declared:
            raise SignOffError(f"the key {key_path} ({fp[:16]}…) is not a declared signatory "
                               "of any organisation in this scenario")
        org, name = declared[fp]
        if as_org is not None and as_org != org:
            raise SignOffError(f"the key {key_path} signs for {org}, not for {as_org}")
        return org, private, name
    mine = [k for k in local_keys() if k.signatory.fingerprint in declared
            and (as_org is None or declared[k.signatory.fingerprint][0] == as_org)]
    if len(mine) != 1:
        whom = f"for {as_org} " if as_org else ""
        found = ", ".join(str(k.path) for k in mine)
        raise SignOffError(
            f"{len(mine)} of your local keys are declared signatories {whom}in this scenario"
            f"{': ' + found if found else ''}; choose one with --as ORG --key PATH "
            "(keys: 'negotiate keys list'; make one with 'negotiate keys new')")
    org, name = declared[mine[0].signatory.fingerprint]
    return org, mine[0].private_key(), name


def transcripts_command(
    folder: Annotated[Path, typer.Argument(help="Folder of transcripts.")] = Path("transcripts"),
    as_json: JsonFlag = False,
) -> None:
    """List runs with their scenario, date, parties, outcome and sign-off status."""
    if as_json:
        from negotiation.cli.audit_json import transcripts_object

        emit(transcripts_object(folder))
        return
    from rich.table import Table
    from rich.text import Text

    from negotiation.events import Transcript
    from negotiation.lifecycle import Status, verified_status
    from negotiation.transcript import TranscriptError, verify

    files = transcript_files(folder)
    if not files:
        console.print(f"No transcripts in {for_terminal(str(folder))}.")
        return
    table = Table(title=f"Transcripts in {for_terminal(folder)}", title_justify="left")
    for column in ("File", "Scenario", "Date", "Parties", "Outcome", "Status", "Signed"):
        table.add_column(column, overflow="fold")
    styles = {Status.RATIFIED: "bold green", Status.REJECTED: "red",
              Status.PENDING: "yellow", Status.TAMPERED: "bold white on red"}
    for path in files:
        try:
            result = verify(path)
        except TranscriptError as error:
            table.add_row(for_terminal(path.name), "", "", "", for_terminal(error),
                          Text("not a transcript"), "")
            continue
        status = verified_status(result)
        if not result.ok and not looks_like_transcript(path):
            table.add_row(for_terminal(path.name), "", "", "", "", Text("not a transcript"), "")
            continue
        # A damaged file shows what its lines before the first bad one say.
        typed = result.transcript or Transcript.of(result.events)
        header, outcome = typed.header, typed.outcome
        at = str(header.wall.get("at", "?")) if header is not None else "?"
        ending = "—" if outcome is None else (
            f"agreement in round {outcome.agreement.round + 1}"
            if outcome.agreement is not None else outcome.reason)
        shown = Text(status.value, style=styles.get(status, ""))
        if interrupted(path, result):
            ending = f"cut short by a crash: negotiate resume {path.name} repairs it"
            shown = Text("interrupted", style="yellow")
        table.add_row(for_terminal(path.name),
                      for_terminal(header.scenario_id if header is not None else "?"),
                      for_terminal(at[:16].replace("T", " ")),
                      for_terminal(", ".join(header.parties if header is not None else [])),
                      for_terminal(ending),
                      shown, Text(signers(typed, status)))
    console.print(table)


def signers(events: Transcript, status: Status) -> str:
    """Who signed, per organisation, and who is missing, in one cell."""
    from negotiation.lifecycle import Status, sign_offs

    if status is Status.TAMPERED or not events.signoffs:
        return "" if status is not Status.PENDING else "no sign-off yet"
    signed = sign_offs(events)
    names = [f"{s.org or 'unsigned'}: {s.signer} {s.decision}d"
             + (f" ({s.fingerprint[:8]})" if s.fingerprint else "")
             for s in signed.signatures]
    if signed.decision is None:
        names += [f"{org}: {n} missing" for org, n in signed.missing().items()]
    return plain("; ".join(names))



def charter(
    transcript: Annotated[Path, typer.Argument(help="A transcript with an agreement.")],
    format_: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    out: Annotated[Path | None, typer.Option(help="File to write (default: next to the "
                                                  "transcript).")] = None,
) -> None:
    """Write the partnership charter of an agreement (Markdown or one self-contained HTML)."""
    if format_ not in {"md", "html"}:
        raise UsageError(f"--format must be md or html, not '{format_}'")
    from negotiation.charter import write_charter

    written = write_charter(transcript, "html" if format_ == "html" else "md", out)
    console.print(f"Charter: [bold]{for_terminal(str(written))}[/]")

