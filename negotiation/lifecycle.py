"""Where an agreement stands, derived from its transcript alone, and human sign-off.

    proposed → checked → accepted by all → pending sign-off → ratified | rejected

A run without agreement ends ``no agreement`` (with its reason); an interrupted one
``aborted``; a transcript whose hash chain or whose signatures fail is ``TAMPERED`` whatever
it says.

When the scenario declares ``signatories:``, a sign-off is an Ed25519 signature by one of an
organisation's declared keys over the chain head it follows (:mod:`negotiation.signing`):
the agreement is ratified once every party to it has its quorum of approving signatures,
and rejected by any one declared signatory's rejection.  Without ``signatories:`` the first
sign-off decides, and is recorded and shown as unsigned: it is not attributable to anyone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from negotiation.errors import RefusedError
from negotiation.events import (
    Aborted,
    Evaluation,
    EventType,
    Move,
    Outcome,
    Signoff,
    Transcript,
)
from negotiation.model import OrgSignatories, Scenario
from negotiation.signing import (
    Expected,
    Signatory,
    fingerprint,
    public_key_of,
    short,
    sign,
    signature_valid,
)
from negotiation.transcript import (
    TranscriptError,
    TranscriptWriter,
    Verification,
    embedded_scenario,
    verify,
)

#: A transcript's events: typed, or the hash-checked records they are read from.
Events = Transcript | Sequence[Mapping[str, Any]]


class Status(StrEnum):
    IN_PROGRESS = "in progress"
    ABORTED = "aborted"
    NO_AGREEMENT = "no agreement"
    PENDING = "pending sign-off"
    RATIFIED = "ratified"
    REJECTED = "rejected"
    EVALUATED = "evaluated"
    TAMPERED = "TAMPERED"


class SignOffError(RefusedError):
    """A transcript that cannot be signed; nothing was written."""


@dataclass(frozen=True)
class Stage:
    """One step of the lifecycle as the transcript records it."""

    name: str
    seq: int
    detail: str


@dataclass(frozen=True)
class Signature:
    """One recorded decision: who, for which organisation, and whether it is attributable."""

    seq: int
    decision: str
    org: str | None
    signer: str
    fingerprint: str | None
    comment: str
    at: str

    @property
    def attributable(self) -> bool:
        return self.fingerprint is not None

    def describe(self) -> str:
        who = f"{self.signer} for {self.org}" if self.org else self.signer
        key = f" (key {short(self.fingerprint)})" if self.fingerprint else \
            " (unsigned, not attributable)"
        return f"{who}{key}"


@dataclass
class SignOffs:
    """Every sign-off of a transcript, checked against the declared signatories.

    ``required`` maps each organisation that must sign to its quorum (empty when the
    scenario declares no signatories); ``problems`` lists signatures that do not verify,
    and any sign-off the tools would never have written."""

    attributable: bool
    required: dict[str, int] = field(default_factory=dict)
    signatures: list[Signature] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    decision: Status | None = None

    def approvals(self, org: str) -> list[Signature]:
        return [s for s in self.signatures if s.org == org and s.decision == "approve"]

    def missing(self) -> dict[str, int]:
        """Organisations still short of their quorum, with how many signatures they need."""
        return {org: quorum - len(self.approvals(org)) for org, quorum in self.required.items()
                if len(self.approvals(org)) < quorum}

    def summary(self) -> str:
        if not self.signatures:
            return "no sign-off yet"
        parts = [f"{s.decision}d by {s.describe()}" for s in self.signatures]
        missing = self.missing()
        if self.decision is None and missing:
            parts.append("waiting for " + ", ".join(f"{org} ({n} more)"
                                                    for org, n in missing.items()))
        return "; ".join(parts)


def _scenario_of(transcript: Transcript) -> Scenario | None:
    """The embedded scenario; ``None`` for a campaign's evaluation stage (it has none)."""
    header = transcript.header
    if header is None or header.scenario is None:
        return None
    return embedded_scenario(header)


def sign_offs(events: Events, expected: Expected | Iterable[Signatory] | None = None
              ) -> SignOffs:
    """Check every sign-off of a hash-verified transcript.

    Signatures are checked against the signatories the embedded scenario declares, and, if
    ``expected`` is given (records the reader obtained independently), every declared and
    every signing key must be among those: a forger who re-wrote the embedded scenario with
    their own keys is caught there."""
    transcript = Transcript.of(events)
    scenario = _scenario_of(transcript)
    declared = scenario.signatories if scenario is not None else {}
    outcome = transcript.outcome
    result = SignOffs(attributable=bool(declared))
    if declared and scenario is not None:
        members = _members(transcript, scenario)
        result.required = {org: declared[org].quorum for org in members if org in declared}
        result.problems += _coverage_problems(transcript, scenario, members)
    keys = {fingerprint(key.public_key): (org, key.name, key.public_key)
            for org, spec in declared.items() for key in spec.keys}
    if isinstance(expected, Expected):
        result.problems += _quorum_problems(declared, expected.quorums)
        expected = expected.records
    if expected is not None:
        trusted = {record.fingerprint: record for record in expected}
        for fp, (org, name, _) in keys.items():
            record = trusted.get(fp)
            if record is None or record.org != org:
                result.problems.append(f"the transcript declares {name} (key {short(fp)}) as "
                                       f"a signatory of {org}, which the signatory records "
                                       "you gave do not: the embedded scenario may be forged")
    for event in transcript.signoffs:
        _check_one(transcript, event, keys, result, outcome)
    if result.decision is not None:
        decided = result.signatures[-1].seq
        result.problems += [f"event {event.seq}: a {event.type} after the agreement was "
                            f"{result.decision.value}; nothing may follow the decision"
                            for event in transcript.events[decided + 1:]
                            if not isinstance(event, Signoff)]
    return result


def _quorum_problems(declared: Mapping[str, OrgSignatories],
                     quorums: Mapping[str, int]) -> list[str]:
    """A signatories block the reader trusts must be the transcript's: same organisations,
    same quorums (keys are compared record by record)."""
    problems = [f"the transcript's scenario asks {declared[org].quorum} signature(s) of {org}, "
                f"the signatories you gave {quorum}: the embedded scenario may be forged"
                for org, quorum in quorums.items()
                if org in declared and declared[org].quorum != quorum]
    problems += [f"the signatories you gave name {org}, which the transcript's scenario does "
                 "not declare: the embedded scenario may be forged"
                 for org in quorums if org not in declared]
    if quorums:
        problems += [f"the transcript's scenario declares signatories for {org}, which the "
                     "signatories you gave do not" for org in declared if org not in quorums]
    return problems


def _members(transcript: Transcript, scenario: Scenario) -> list[str]:
    """Who must sign: every organisation of the scenario but those whose own move left the
    negotiation — derived from the moves, never from the agreement's list of parties, which
    an editor could shorten before anyone signs."""
    departed = {move.party for move in transcript.of_type(Move)
                if move.action.kind == "walk_away"}
    return [org for org in scenario.party_ids if org not in departed]


def _coverage_problems(transcript: Transcript, scenario: Scenario,
                       members: list[str]) -> list[str]:
    """Declared signatories must cover every organisation (as a scenario file must), and the
    agreement must be among exactly the organisations that stayed."""
    problems = [f"the embedded scenario declares no signatories for {org}, so nobody could "
                "sign for it: it was edited (a scenario file must declare every organisation)"
                for org in scenario.party_ids if org not in scenario.signatories]
    outcome = transcript.outcome
    agreement = outcome.agreement if outcome is not None else None
    if agreement is not None and sorted(agreement.parties) != sorted(members):
        problems.append(f"the agreement names {sorted(agreement.parties)} as its parties, but "
                        f"{sorted(members)} negotiated to the end: it was edited")
    return problems


def _check_one(transcript: Transcript, event: Signoff,
               keys: Mapping[str, tuple[str, str, str]], result: SignOffs,
               outcome: Outcome | None) -> None:
    seq = event.seq
    at = str(event.wall.get("at", ""))
    if result.decision is not None:
        result.problems.append(f"event {seq}: a sign-off after the agreement was already "
                               f"{result.decision.value}")
        return
    if outcome is None or not outcome.agreed or \
            event.agreement_event.get("hash") != outcome.hash:
        result.problems.append(f"event {seq}: the sign-off does not refer to this transcript's "
                               "agreement")
        return
    decision = event.decision
    if decision not in {"approve", "reject"}:
        result.problems.append(f"event {seq}: unknown decision {decision!r}")
        return
    if not result.attributable:
        result.signatures.append(Signature(seq, decision, None, event.reviewer or "",
                                           None, event.comment, at))
        result.decision = Status.RATIFIED if decision == "approve" else Status.REJECTED
        return
    fp = event.fingerprint
    known = keys.get(fp) if fp is not None else None
    if known is None or known[0] != event.org:
        result.problems.append(f"event {seq}: signed with a key that is not a declared "
                               f"signatory of {event.org!r}")
        return
    org, name, public_key = known
    if not signature_valid(public_key, transcript.record(event)):
        result.problems.append(f"event {seq}: the signature of {name} for {org} does not "
                               "verify (the transcript or the sign-off was changed)")
        return
    if any(s.fingerprint == fp for s in result.signatures):
        result.problems.append(f"event {seq}: {name} signed twice")
        return
    result.signatures.append(Signature(seq, decision, org, name, fp, event.comment, at))
    if decision == "reject":
        result.decision = Status.REJECTED
    elif not result.missing():
        result.decision = Status.RATIFIED


def status_of(events: Events, signed: SignOffs | None = None) -> Status:
    """The lifecycle status of a hash-verified transcript's events."""
    transcript = Transcript.of(events)
    outcome = transcript.outcome
    if transcript.has(Signoff) or (outcome is not None and outcome.agreed):
        signed = signed or sign_offs(transcript)
        if signed.problems:
            return Status.TAMPERED
        if signed.decision is not None:
            return signed.decision
    if transcript.has(Evaluation):  # a campaign's evaluation stage: nothing to sign
        return Status.EVALUATED
    if outcome is not None:
        return Status.PENDING if outcome.agreed else Status.NO_AGREEMENT
    if isinstance(transcript.last, Aborted):
        return Status.ABORTED
    return Status.IN_PROGRESS


def _level(verdict: Any) -> str:
    return verdict.level if verdict is not None else "none"


def stages(events: Events) -> list[Stage]:
    """The lifecycle steps reached, each with the event that shows it."""
    transcript = Transcript.of(events)
    result: list[Stage] = []
    outcome = transcript.outcome
    proposals = [e for e in transcript.of_type(Move) if e.terms is not None]
    if outcome is not None and outcome.accountability is not None:
        agreement = outcome.agreement or outcome.blocked_agreement
        terms = agreement.terms if agreement is not None else None
        final = next(p for p in reversed(proposals) if p.terms == terms)
        result.append(Stage("proposed", final.seq, f"by {final.party} in round "
                                                    f"{final.round + 1}"))
        result.append(Stage("checked", final.seq, f"referee: {_level(final.verdict)} "
                                                  "on the proposal"))
        result.append(Stage("accepted by all", outcome.seq, outcome.reason))
        if outcome.agreed:
            result.append(Stage("pending sign-off", outcome.seq,
                                f"referee: {_level(outcome.verdict)} on the agreement"))
        else:
            result.append(Stage("no agreement", outcome.seq, outcome.reason))
    elif outcome is not None:
        result.append(Stage("no agreement", outcome.seq, outcome.reason))
    signed = sign_offs(transcript) if transcript.has(Signoff) else None
    for signature in signed.signatures if signed else []:
        name = {"approve": "approved", "reject": "rejected"}[signature.decision]
        result.append(Stage(name, signature.seq, f"by {signature.describe()}: "
                                                 f"{signature.comment or 'no comment'}"))
    if signed is not None and signed.decision is not None:
        last = signed.signatures[-1]
        result.append(Stage(signed.decision.value, last.seq, signed.summary()))
    for aborted in transcript.of_type(Aborted):
        result.append(Stage("aborted", aborted.seq, aborted.reason))
    return result


def transcript_status(path: Path) -> tuple[Status, list[dict[str, Any]]]:
    """Status of a transcript file: TAMPERED when its chain or a signature fails."""
    result = verify(path)
    return verified_status(result), result.events


def verified_status(result: Verification) -> Status:
    """Status of a verified file: TAMPERED when its chain or a signature fails."""
    if not result.ok or result.transcript is None:
        return Status.TAMPERED
    try:
        return status_of(result.transcript)
    except TranscriptError:  # a hash-valid header that negotiate never wrote
        return Status.TAMPERED


def sign_off(path: Path, *, approve: bool, comment: str = "", reviewer: str = "",
             org: str | None = None, key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    """Append a decision as a hash-chained ``signoff`` event; refuse, writing nothing, when
    the transcript is tampered, has no agreement, or is already decided.

    For a scenario with signatories, ``org`` and ``key`` (one of that organisation's declared
    private keys) sign the decision over the current chain head; otherwise ``reviewer``
    names who decided, and the sign-off is recorded as unsigned."""
    try:
        result = verify(path)
    except TranscriptError as error:
        raise SignOffError(str(error)) from None
    if not result.ok or result.transcript is None:
        raise SignOffError(f"{path} is tampered or damaged ({result.reason}); it cannot be "
                           "signed. Re-run the negotiation.")
    transcript = result.transcript
    signed = sign_offs(transcript)
    status = status_of(transcript, signed)
    if status is Status.TAMPERED:
        raise SignOffError(f"{path} does not check out ({signed.problems[0]}); it cannot "
                           "be signed")
    if status in {Status.RATIFIED, Status.REJECTED}:
        raise SignOffError(f"{path} is already {status.value}; a decision cannot be changed. "
                           "Re-run the negotiation to decide again.")
    if status is not Status.PENDING:
        raise SignOffError(f"{path} has no agreement to sign (status: {status.value}).")
    outcome = transcript.outcome
    assert outcome is not None
    body: dict[str, Any] = {
        "decision": "approve" if approve else "reject",
        "comment": comment.strip(),
        "agreement_event": {"seq": outcome.seq, "hash": outcome.hash},
    }
    if signed.attributable:
        body.update(_signer(path, transcript, signed, org, key))
    else:
        if key is not None or org is not None:
            raise SignOffError(f"{path}: its scenario declares no signatories, so a key "
                               "cannot make this sign-off attributable; sign with "
                               "--reviewer NAME (recorded as unsigned), or add signatories "
                               "to the scenario and run the negotiation again")
        reviewer = reviewer.strip()
        if not reviewer:
            raise SignOffError("a sign-off needs the reviewer's name (--reviewer NAME)")
        body["reviewer"] = reviewer
        body["attributable"] = False
    body["status"] = status_after(signed, body).value
    if signed.attributable:
        assert key is not None
        # The writer lays the event out as seq, type, body, prev_hash: sign exactly that.
        body["signature"] = sign(key, {"seq": len(transcript), "type": EventType.SIGNOFF,
                                       **body, "prev_hash": result.head_hash})
    with TranscriptWriter.append_to(path, verified=result) as writer:
        return writer.append(EventType.SIGNOFF, body)


def _signer(path: Path, transcript: Transcript, signed: SignOffs, org: str | None,
            key: Ed25519PrivateKey | None) -> dict[str, Any]:
    """Who signs: the declared signatory whose key this is, for ``org``."""
    scenario = _scenario_of(transcript)
    assert scenario is not None
    if org is None or key is None:
        raise SignOffError(f"{path}: its scenario declares signatories; sign with --as ORG "
                           "--key PATH (a key made with 'negotiate keys new')")
    if org not in signed.required:
        raise SignOffError(f"'{org}' is not a party to this agreement; sign as one of "
                           f"{sorted(signed.required)}")
    fp = fingerprint(public_key_of(key))
    declared = {fingerprint(k.public_key): k.name for k in scenario.signatories[org].keys}
    if fp not in declared:
        listed = ", ".join(f"{name} ({short(f)})" for f, name in declared.items())
        raise SignOffError(f"this key ({short(fp)}) is not a declared signatory of {org}; "
                           f"its signatories are: {listed}")
    if any(s.fingerprint == fp for s in signed.signatures):
        raise SignOffError(f"{declared[fp]} has already signed for {org}")
    return {"org": org, "signer": declared[fp], "fingerprint": fp, "attributable": True}


def status_after(signed: SignOffs, body: Mapping[str, Any]) -> Status:
    """The status once ``body`` is recorded (what the new sign-off event states)."""
    if body["decision"] == "reject":
        return Status.REJECTED
    if not signed.attributable:
        return Status.RATIFIED
    still = signed.missing()
    org = body["org"]
    if still.get(org, 0) <= 1:
        still.pop(org, None)
    return Status.PENDING if still else Status.RATIFIED
