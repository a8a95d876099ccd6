"""Transcript events: their type names, typed models and the one canonical serialisation.

Every line of a transcript is one event (docs/transcript-format.md).  This module is the only
place that names event types (:class:`EventType`) and knows their fields:

- **Serialisation** (:func:`canonical_json`, :func:`event_hash`, :func:`line_of`): canonical
  JSON (sorted keys, no spaces, UTF-8, no NaN) of the event's record; ``hash`` is the sha256
  of the record without ``hash``, and the line is that JSON with ``hash`` appended last.
  Records are plain dicts on the write path (a tournament writes thousands per second) and
  on disk; what is hashed is always the record exactly as read or written.
- **Typed events** (:data:`Event`, a union discriminated on ``type``): what readers get.  A
  record becomes a typed event only where it is read (:meth:`Transcript.of`), after its hash
  chain has been checked, so a malformed event is refused with its line number
  (:class:`EventError`) rather than failing somewhere later.
- :class:`Transcript`: the typed events of one run with accessors (``header``, ``outcome``,
  ``signoffs``, ``moves`` …), keeping each event's hashed record for signatures and links.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from negotiation.canonical import canonical_bytes, canonical_bytes_with, fast_text
from negotiation.canonical import canonical_json as canonical_json  # re-exported
from negotiation.errors import InputError


class EventType(StrEnum):
    """The ``type`` of every transcript event (its one spelling)."""

    HEADER = "header"
    LLM_CALL = "llm_call"
    MOVE = "move"
    BLOCKED = "blocked"
    PASSED = "passed"
    MEDIATOR_TEXT = "mediator_text"
    ERROR = "error"
    ABORTED = "aborted"
    RESUMED = "resumed"
    OUTCOME = "outcome"
    SIGNOFF = "signoff"
    EVALUATION = "evaluation"


#: A party's turn as recorded: a delivered move, a proposal the referee blocked, or a turn
#: the driver passed for a seat left idle.
TURNS = frozenset({EventType.MOVE, EventType.BLOCKED, EventType.PASSED})
#: Events that mark an interruption rather than a negotiation step.
INTERRUPTIONS = frozenset({EventType.ABORTED, EventType.RESUMED})
#: Events after which a run has nothing left to play (sign-offs follow an outcome).
ENDINGS = frozenset({EventType.OUTCOME, EventType.SIGNOFF})
#: The event a campaign's next stage links to: a negotiation's outcome or an evaluation.
STAGE_ENDS = frozenset({EventType.OUTCOME, EventType.EVALUATION})

WALL = "wall"


class EventError(InputError):
    """A transcript event that is not what its ``type`` says (a missing or mistyped field)."""


# --- the canonical serialisation ---------------------------------------------------------

class CanonicalObject(dict[str, Any]):
    """A JSON object that nobody modifies once built, whose canonical JSON is computed
    once: the scenario that every header of its runs embeds."""

    @cached_property
    def _fast_text(self) -> bytes | None:
        return fast_text(self)

    @cached_property
    def canonical(self) -> str:
        return canonical_json(self) if self._fast_text is None else self._fast_text.decode()

    @cached_property
    def encoded(self) -> bytes:
        """The canonical text in UTF-8, as hashed."""
        return self.canonical.encode() if self._fast_text is None else self._fast_text

    @cached_property
    def _last_prefix(self) -> _PrefixState:
        return _PrefixState()

    def fresh(self) -> CanonicalObject:
        """A copy of its own for one header, read back from the canonical text (which it
        keeps): whoever edits one run's header edits nothing of the next run's.  (orjson
        reads integers beyond 64 bits as floats: it reads only a text it wrote.)"""
        read = json.loads if self._fast_text is None else orjson.loads
        copy = CanonicalObject(read(self.encoded))
        copy.__dict__.update(_fast_text=self._fast_text, canonical=self.canonical,
                             encoded=self.encoded, _last_prefix=self._last_prefix)
        return copy


class _PrefixState:
    """The sha256 state after the text of the last header embedding a scenario, up to and
    including the scenario: the next header with the same text before its scenario (a
    tournament's next run of one line-up) resumes from a copy of it instead of hashing the
    scenario again.  It holds nothing but that header's first part."""

    def __init__(self) -> None:
        self.last: tuple[bytes, Any] = (b"", None)

    def __reduce__(self) -> tuple[type[_PrefixState], tuple[()]]:
        # A copied or pickled header (its scenario) starts with no state: a hash state
        # cannot be pickled, and a copy need not share it.
        return _PrefixState, ()


_SCENARIO_KEY = b'"scenario":'


def _embedding_digest(body: bytes, embedded: CanonicalObject) -> str:
    """``sha256(body).hexdigest()`` for the text of a record embedding ``embedded`` under
    ``scenario``: the same digest, since a hash resumed from the state after a prefix of the
    text and fed the rest is the hash of the whole text."""
    text = embedded.encoded
    start = body.find(_SCENARIO_KEY)
    while start >= 0 and not body.startswith(text, start + len(_SCENARIO_KEY)):
        start = body.find(_SCENARIO_KEY, start + 1)  # the key inside an earlier value
    if start < 0:
        return _sha256(body).hexdigest()
    end = start + len(_SCENARIO_KEY) + len(text)
    prefix = body[:start]
    slot = embedded._last_prefix
    known, state = slot.last
    if state is None or known != prefix:
        state = _sha256(body[:end])
        slot.last = (prefix, state)  # one tuple replaced whole: threads see one pair
    digest = state.copy()
    digest.update(memoryview(body)[end:])
    return str(digest.hexdigest())


def _canonical_record(record: Mapping[str, Any]) -> bytes:
    """``canonical_bytes(record)``, reusing the text of a ``CanonicalObject`` it embeds."""
    scenario = record.get("scenario")
    if not isinstance(scenario, CanonicalObject):
        return canonical_bytes(record)
    rest = {key: value for key, value in record.items() if key != "scenario"}
    return canonical_bytes_with(rest, "scenario", scenario.encoded)


_sha256 = hashlib.sha256


def hashed_text(record: Mapping[str, Any]) -> bytes:
    """The text a record's ``hash`` is the sha256 of: its canonical JSON without ``hash``."""
    return canonical_bytes({key: value for key, value in record.items() if key != "hash"})


def event_hash(record: Mapping[str, Any]) -> str:
    return _sha256(hashed_text(record)).hexdigest()


def link(record: dict[str, Any], prev_hash: str) -> tuple[bytes, str]:
    """Link ``record`` after ``prev_hash``: set its ``prev_hash`` and ``hash``; return the
    canonical text that was hashed (the record without ``hash``) and the hash.  One
    serialisation serves both: the line is that text with ``hash`` appended last
    (:func:`line_bytes`), so a verifier may re-canonicalise the record without it."""
    record["prev_hash"] = prev_hash
    if "scenario" in record:
        body = _canonical_record(record)
        scenario = record["scenario"]
        digest = record["hash"] = _embedding_digest(body, scenario) \
            if isinstance(scenario, CanonicalObject) else _sha256(body).hexdigest()
        return body, digest
    body = canonical_bytes(record)
    digest = record["hash"] = _sha256(body).hexdigest()
    return body, digest


def line_bytes(body: bytes, digest: str) -> bytes:
    """The line of an event whose canonical text without ``hash`` is ``body`` (UTF-8)."""
    return b"%s,\"hash\":\"%s\"}" % (body[:-1], digest.encode())


def chain(record: dict[str, Any], prev_hash: str) -> str:
    """Link ``record`` after ``prev_hash`` (:func:`link`) and return its line."""
    return line_bytes(*link(record, prev_hash)).decode()


def line_of(record: Mapping[str, Any]) -> str:
    """The line of an already chained record (canonical JSON, ``hash`` last)."""
    return line_bytes(hashed_text(record), record["hash"]).decode()


def deterministic_lines(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Records without wall-clock fields or hashes: what two runs with one seed share."""
    drop = {WALL, "hash", "prev_hash"}
    return [canonical_json({k: v for k, v in record.items() if k not in drop})
            for record in records]


# --- typed events ------------------------------------------------------------------------

class _Record(BaseModel):
    # Extra keys are kept: a newer writer's fields are read, never refused.
    model_config = ConfigDict(frozen=True, extra="allow")


class Offer(_Record):
    terms: dict[str, Any]


class ActionRecord(_Record):
    """An agent's action as recorded: ``propose`` (with ``offer``), ``accept``,
    ``walk_away``."""

    kind: str
    rationale: str = ""
    offer: Offer | None = None
    message: str | None = None


class VerdictRecord(_Record):
    """The referee's verdict as recorded: ``pass``, ``warn`` or ``block`` and findings."""

    level: str
    findings: list[dict[str, Any]] = []


class AgreementRecord(_Record):
    terms: dict[str, Any]
    proposer: str
    round: int
    parties: list[str]


class ProtocolRecord(_Record):
    name: str = ""
    rounds: int


class _Event(_Record):
    seq: int
    #: Absent only on an in-memory event not chained yet (the writer chains lazily).
    prev_hash: str = ""
    hash: str = ""
    wall: dict[str, Any] = {}


class Header(_Event):
    """The first event: the scenario, seed, protocol and agents of a negotiation, or (with
    ``kind``) a campaign stage that is not a negotiation."""

    type: Literal[EventType.HEADER]
    format: str
    scenario_id: str
    seed: int
    version: str = ""
    parties: list[str] = []
    scenario: dict[str, Any] | None = None
    scenario_digest: str | None = None
    protocol: ProtocolRecord | None = None
    agents: dict[str, str] = {}
    llm: dict[str, Any] | None = None
    options: dict[str, Any] = {}
    kind: str | None = None

    @property
    def inline_signoff(self) -> bool:
        return self.options.get("signoff") == "inline"

    @property
    def campaign_link(self) -> dict[str, Any]:
        link = self.options.get("campaign")
        return link if isinstance(link, dict) else {}


class LlmCall(_Event):
    type: Literal[EventType.LLM_CALL]
    round: int
    party: str
    model: str = ""
    status: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # None: the price of the model is unknown
    error: str | None = None


class Move(_Event):
    """A delivered move; ``verdict`` for proposals (others when flagged), ``utilities`` for
    proposals (every party's, for reviewers)."""

    type: Literal[EventType.MOVE]
    round: int
    party: str
    action: ActionRecord
    verdict: VerdictRecord | None = None
    utilities: dict[str, float] | None = None

    @property
    def terms(self) -> dict[str, Any] | None:
        return self.action.offer.terms if self.action.offer is not None else None


class Blocked(_Event):
    """A proposal the referee blocked (never delivered) and what the proposer was told."""

    type: Literal[EventType.BLOCKED]
    round: int
    party: str
    action: ActionRecord
    verdict: VerdictRecord | None = None
    feedback: dict[str, Any]
    utilities: dict[str, float] | None = None

    @property
    def terms(self) -> dict[str, Any] | None:
        return self.action.offer.terms if self.action.offer is not None else None


class Passed(_Event):
    """A turn the driver passed because the seat stayed idle past its turn timeout: no move
    (never an acceptance); the protocol's ``pass_turn`` says what it means for the table."""

    type: Literal[EventType.PASSED]
    round: int
    party: str
    #: The turn timeout (seconds) the seat let pass: a finite number, never a text ("nan"
    #: would type as a float that no transcript can hold, and a resume would replay it).
    timeout: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
    reason: str


class MediatorText(_Event):
    type: Literal[EventType.MEDIATOR_TEXT]
    round: int
    terms: dict[str, Any]
    utilities: dict[str, float]


class Error(_Event):
    type: Literal[EventType.ERROR]
    round: int
    party: str
    error: str


class Aborted(_Event):
    type: Literal[EventType.ABORTED]
    round: int
    party: str
    reason: str


class Resumed(_Event):
    type: Literal[EventType.RESUMED]
    after_seq: int
    reason: str


class Outcome(_Event):
    """The last event of a run: an agreement (with the referee's verdict, fairness and
    accountability) or none, and why."""

    type: Literal[EventType.OUTCOME]
    status: Literal["agreement", "no_agreement"]
    reason: str
    rounds: int
    reservation_values: dict[str, float] = {}
    verdict: VerdictRecord | None = None
    fairness: dict[str, Any] | None = None
    accountability: list[dict[str, Any]] | None = None
    agreement: AgreementRecord | None = None
    blocked_agreement: AgreementRecord | None = None
    utilities: dict[str, float] | None = None
    #: The zone-of-agreement verdict of a run started with ``--anyway`` although none exists.
    zopa: dict[str, Any] | None = None

    @property
    def agreed(self) -> bool:
        return self.status == "agreement"


class Signoff(_Event):
    """A human decision on the agreement: signed (``org``, ``signer``, ``fingerprint``,
    ``signature``) or unsigned (``reviewer``).  Its decision and signature are judged by
    :mod:`negotiation.lifecycle`, not here."""

    type: Literal[EventType.SIGNOFF]
    decision: str
    status: str = ""
    comment: str = ""
    agreement_event: dict[str, Any] = {}
    attributable: bool | None = None
    org: str | None = None
    signer: str | None = None
    fingerprint: str | None = None
    signature: str | None = None
    reviewer: str | None = None


class Evaluation(_Event):
    """A campaign's evaluation stage: what each partner delivered and how trust moved."""

    type: Literal[EventType.EVALUATION]
    agreement_in_force: dict[str, Any]
    model: dict[str, Any]
    delivered: dict[str, Any]
    observed: dict[str, Any] = {}
    trust_before: dict[str, Any]
    trust_after: dict[str, Any]
    realised: dict[str, Any]


Event = Annotated[Header | LlmCall | Move | Blocked | Passed | MediatorText | Error | Aborted
                  | Resumed | Outcome | Signoff | Evaluation, Field(discriminator="type")]
Turn = Move | Blocked
_EVENT: TypeAdapter[Event] = TypeAdapter(Event)
_E = TypeVar("_E", bound=_Event)


def _problem(error: ValidationError, record: Mapping[str, Any]) -> str:
    first = error.errors(include_url=False)[0]
    kind = record.get("type")
    if first["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        known = ", ".join(t.value for t in EventType)
        return f"unknown event type {kind!r} (known: {known})"
    where = ".".join(str(part) for part in first["loc"][1:])
    what = "is missing" if first["type"] == "missing" else f"is invalid ({first['msg']})"
    return f"the {kind} event's field {where!r} {what}"


def parse_event(record: Mapping[str, Any], line: int) -> Event:
    """The typed event of one record; ``EventError`` saying ``line N: …`` when it is not."""
    try:
        return _EVENT.validate_python(record)
    except ValidationError as error:
        raise EventError(f"line {line}: {_problem(error, record)}") from None


@dataclass(frozen=True)
class Transcript:
    """The typed events of a transcript, with the record each was hashed from."""

    events: tuple[Event, ...]
    records: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, records: Sequence[Mapping[str, Any]] | Transcript) -> Transcript:
        """Type hash-checked records (``EventError`` names the first bad line)."""
        if isinstance(records, Transcript):
            return records
        typed = tuple(parse_event(record, number)
                      for number, record in enumerate(records, start=1))
        return cls(typed, tuple(dict(record) for record in records))

    def __len__(self) -> int:
        return len(self.events)

    @property
    def head_hash(self) -> str:
        return self.events[-1].hash if self.events else ""

    @property
    def last(self) -> Event | None:
        return self.events[-1] if self.events else None

    @property
    def header(self) -> Header | None:
        first = self.events[0] if self.events else None
        return first if isinstance(first, Header) else None

    @property
    def finished(self) -> bool:
        """Whether the run ended (an outcome, perhaps followed by sign-offs)."""
        return self.last is not None and self.last.type in ENDINGS

    def record(self, event: _Event) -> dict[str, Any]:
        """The record ``event`` was hashed from (for signatures and links)."""
        return self.records[event.seq]

    def of_type(self, kind: type[_E]) -> list[_E]:
        return [event for event in self.events if isinstance(event, kind)]

    def has(self, kind: type[_Event]) -> bool:
        return any(isinstance(event, kind) for event in self.events)

    @cached_property
    def outcome(self) -> Outcome | None:
        return next((e for e in self.events if isinstance(e, Outcome)), None)

    @property
    def stage_end(self) -> Outcome | Evaluation | None:
        """The event a campaign's next stage links to (sign-offs may follow it)."""
        return next((e for e in self.events if isinstance(e, Outcome | Evaluation)), None)

    @property
    def signoffs(self) -> list[Signoff]:
        return self.of_type(Signoff)

    @property
    def turns(self) -> list[Turn]:
        """Every party's turn: delivered moves and blocked proposals, in order."""
        return [e for e in self.events if isinstance(e, Move | Blocked)]

    @property
    def proposals(self) -> list[Move]:
        """Delivered proposals with every party's utilities (what reviewers plot)."""
        return [e for e in self.events if isinstance(e, Move) and e.utilities is not None]
