"""The tamper-evident event log of a run: JSON Lines, one hash-chained event per line.

Each event carries ``seq`` (0, 1, 2, …), ``prev_hash`` (the previous event's ``hash``; 64
zeros for the first) and ``hash``: the sha256 of the event's canonical JSON (sorted keys, no
spaces, UTF-8) without the ``hash`` field.  Lines are written as that canonical JSON with
``hash`` appended as the last key.  Editing, deleting, inserting or reordering any
line breaks the chain at that line.  Everything that depends on when or where a run
happened lives under the key ``wall``; removing ``wall`` and the two hash fields leaves
what determinism compares.  With ``SOURCE_DATE_EPOCH`` set, wall-clock times are fixed and
whole files are byte-identical across runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from negotiation import files
from negotiation.errors import InputError
from negotiation.events import (
    ENDINGS,
    INTERRUPTIONS,
    WALL,
    Event,
    EventError,
    EventType,
    Header,
    Outcome,
    Transcript,
    canonical_json,
    deterministic_lines,
    event_hash,
    hashed_text,
    line_bytes,
    link,
    parse_event,
)
from negotiation.model import Scenario

__all__ = ["FORMAT", "GENESIS", "INTERRUPTIONS", "WALL", "Transcript", "TranscriptConflict",
           "TranscriptError", "TranscriptWriter", "Verification", "canonical_json", "clock",
           "deterministic_lines", "drop_torn_tail", "embedded_scenario", "event_hash",
           "load_verified", "negotiation_header", "negotiation_of", "now", "read_transcript",
           "verify"]

FORMAT = "negotiation-transcript/1"
GENESIS = "0" * 64


class TranscriptError(InputError):
    """A transcript cannot be written or read."""


def now() -> datetime:
    """The wall clock, or ``SOURCE_DATE_EPOCH`` when set (reproducible runs)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.strip().isdigit():
        return datetime.fromtimestamp(int(epoch), tz=UTC)
    return datetime.now(tz=UTC)


_second: tuple[int, str] = (-1, "")  # the last whole second (Unix time) and its text
_stamp: tuple[int, str] = (-1, "")  # the last millisecond stamped and its stamp


def _wall_timestamp() -> str:
    # Every event is stamped (many within one millisecond), so a stamp is reused within its
    # millisecond and the date and time are formatted once per second: the text
    # ``datetime.now(tz=UTC).isoformat(timespec="milliseconds")`` gives, from the clock it
    # reads, without building a datetime.
    # Each tuple is read once and replaced whole: threads stamping at once never pair one
    # second's text with another's milliseconds.
    global _second, _stamp
    millisecond = time.time_ns() // 1_000_000
    stamp = _stamp
    if millisecond == stamp[0]:
        return stamp[1]
    second, rest = divmod(millisecond, 1000)
    known = _second
    if second != known[0]:
        known = _second = (second, datetime.fromtimestamp(second, tz=UTC).isoformat()[:-6])
    stamp = _stamp = (millisecond, f"{known[1]}.{rest:03d}+00:00")
    return stamp[1]


def clock() -> Callable[[], str]:
    """A source of event timestamps (ISO 8601 with milliseconds): the wall clock, or the
    fixed ``SOURCE_DATE_EPOCH`` when it is set now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.strip().isdigit():
        fixed = now().isoformat(timespec="milliseconds")
        return lambda: fixed
    return _wall_timestamp


class TranscriptConflict(TranscriptError):
    """Another process appended to (or cut) the transcript since this writer read it."""


class TranscriptWriter:
    """Appends hash-chained events to a file (flushed and fsynced each) or to memory.

    A new file appears on disk only with its header: the first line is written to a hidden
    temporary file beside it, fsynced, and linked into place (never over an existing file
    or through a symlink).  Every later line is appended under an exclusive lock, after
    checking that the file's last line is still the event this writer last knew of, in one
    write that is cut back if it fails (a full disk), so the file always verifies up to its
    last complete event.

    With ``path=None`` events are kept in memory, for tournaments and benchmarks, and
    chained lazily: ``prev_hash``, ``hash`` and ``lines`` are computed the first time
    ``lines`` or ``head_hash`` is read (the same values an eager writer gives), so a
    tournament that only reads the events never pays for serialising them.
    """

    def __init__(self, path: Path | None = None, *, fsync: bool = True,
                 _continue_from: tuple[int, str] | None = None) -> None:
        self.path = path
        self.fsync = fsync
        #: Per chained event, its hashed text and hash: its line is made when it is written
        #: or :attr:`lines` is read (a tournament reads only the head hash).
        self._linked: list[tuple[bytes, str]] = []
        self.events: list[dict[str, Any]] = []
        self._chained = 0  # events[:_chained] carry their hashes (and are in _linked)
        self._clock = clock()  # read once: the environment is not consulted per event
        self._seq, self._head = _continue_from or (0, GENESIS)
        self._pending: list[dict[str, Any]] = []
        self._fd: int | None = None
        self._temporary: Path | None = None  # the new file, until its header is linked
        if path is None:
            return
        try:
            if _continue_from:
                self._fd = files.open_existing(path)
            elif os.path.lexists(path):
                files.refuse_symlink(path)
                raise TranscriptError(f"{path} already exists; transcripts are never "
                                      "overwritten")
            else:
                self._temporary, self._fd = files.temporary_beside(path)
        except files.OutputError as error:
            raise TranscriptError(f"cannot write the transcript: {error}") from None

    @classmethod
    def resume(cls, path: Path) -> TranscriptWriter:
        """Re-attach to an interrupted run's transcript for a deterministic re-run.

        Events the re-run produces are first checked against the ones already on disk
        (everything but wall-clock fields must match) and adopted, not written again; once
        the re-run passes the end of the file, new events are appended.  A last line cut
        short by a crash (no newline: never completely written) is dropped first.
        """
        drop_torn_tail(path)
        result = verify(path)
        if not result.ok:
            raise TranscriptError(f"{path} does not verify: {result.reason}; it cannot be "
                                  "resumed")
        if result.events[-1]["type"] in ENDINGS:
            raise TranscriptError(f"{path} has already finished; nothing to resume")
        writer = cls(path, _continue_from=(0, GENESIS))
        writer._pending = list(result.events)
        return writer

    @property
    def replaying(self) -> bool:
        """Whether the re-run is still catching up with events already on disk."""
        return bool(self._pending)

    @classmethod
    def append_to(cls, path: Path, *, head: str | None = None,
                  verified: Verification | None = None) -> TranscriptWriter:
        """Continue an existing, verified transcript (e.g. to add a sign-off).

        ``head`` is the hash of the last event the caller's decision was based on; when the
        file has moved on since, nothing is written (``TranscriptConflict``).  Each append
        re-checks this under the file's lock, so of two concurrent sign-offs one wins and
        the other is refused.  A caller that has just verified the file passes that
        ``verified`` result instead of having it read and hashed again: the locked tail
        check at each append still refuses a file that moved on since.  Close the writer
        (or use it as a context manager).
        """
        writer = cls(path, _continue_from=(0, GENESIS))
        try:
            result = verified if verified is not None else verify(path)
            if not result.ok:
                raise TranscriptError(f"{path} does not verify: {result.reason}")
            writer._seq, writer._head = len(result.events), result.head_hash
            if head is not None and head != result.head_hash:
                raise _conflict(path, result.events[-1])
        except BaseException:
            writer.close()
            raise
        return writer

    @property
    def head_hash(self) -> str:
        self._chain()
        return self._head

    @property
    def lines(self) -> list[str]:
        """The transcript's lines (canonical JSON, hash last), as a file would hold them."""
        self._chain()
        return [line_bytes(body, digest).decode() for body, digest in self._linked]

    def append(self, type_: EventType, body: dict[str, Any], *,
               wall: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record one event: ``type_`` and ``body`` (the fields docs/transcript-format.md
        lists for it) as a plain record, chained and serialised by :mod:`negotiation.events`;
        readers type it (:meth:`Transcript.of`)."""
        event: dict[str, Any] = {"seq": self._seq, "type": type_, **body}
        if self._pending:  # a resumed run catching up with the file
            self._skip_interruptions()
            if self._pending:
                event["prev_hash"] = self._head
                return self._adopt(event)
        event[WALL] = {"at": self._clock()} if wall is None else {"at": self._clock(), **wall}
        self.events.append(event)
        self._seq += 1
        if self._fd is not None:
            self._chain()
            try:
                self._write(line_bytes(*self._linked[-1]), after=event["prev_hash"])
            except BaseException:
                # Nothing reached the file: forget the event, so the writer and the file agree.
                self.events.pop()
                self._linked.pop()
                self._chained -= 1
                self._seq -= 1
                self._head = event["prev_hash"]
                raise
        return event

    @property
    def outcome(self) -> Outcome | None:
        """The run's outcome, typed, once it is recorded (what a finished run shows)."""
        record = next((e for e in reversed(self.events) if e["type"] == EventType.OUTCOME),
                      None)
        outcome = None if record is None else parse_event(record, record["seq"] + 1)
        return outcome if isinstance(outcome, Outcome) else None

    def _write(self, line: bytes, *, after: str) -> None:
        """Write one line to the file, whose last line must be the event hashed ``after``."""
        assert self._fd is not None and self.path is not None
        data = line + b"\n"
        try:
            if self._temporary is not None:
                self._publish(data)
            else:
                with files.locked(self._fd):
                    self._check_tail(after)
                    files.append_whole(self._fd, data, fsync=self.fsync)
        except files.OutputError as error:
            raise TranscriptError(str(error)) from None
        except OSError as error:
            raise TranscriptError(str(files.write_error(
                self.path, error, resume=f"continue with: negotiate resume {self.path}")
            )) from None

    def _publish(self, first_line: bytes) -> None:
        """Write the header to the temporary file, fsync it and link it into place."""
        assert self._fd is not None and self._temporary is not None and self.path is not None
        files.append_whole(self._fd, first_line, fsync=self.fsync)
        try:
            files.publish(self._temporary, self.path, replace=False)
        except BaseException:
            os.ftruncate(self._fd, 0)  # still unpublished: a later attempt starts afresh
            raise
        self._temporary = None
        files.fsync_folder(self.path.parent)

    def _check_tail(self, head: str) -> None:
        """The file's last line must be the event ``head`` that the new one follows: else
        another process appended meanwhile (or this writer fell out of step with it)."""
        assert self._fd is not None and self.path is not None
        size = os.fstat(self._fd).st_size
        ending = f'"hash":"{head}"}}\n'.encode()
        if size >= len(ending) and os.pread(self._fd, len(ending), size - len(ending)) == ending:
            return
        last = _last_line(self._fd, size)
        try:
            event = json.loads(last)
        except ValueError:
            event = None
        if isinstance(event, dict) and last.endswith(b"\n") \
                and event.get("hash") == head:
            return
        raise _conflict(self.path, event if isinstance(event, dict) else None)

    def _chain(self) -> None:
        """Hash every event not chained yet."""
        linked, head, count = self._linked, self._head, self._chained
        try:
            for event in self.events[count:]:
                linked.append(link(event, head))
                head = event["hash"]
                count += 1
        finally:  # an event that cannot be serialised stays unchained, as do those after it
            self._head, self._chained = head, count

    def _take(self, existing: dict[str, Any]) -> dict[str, Any]:
        self._chain()
        self._linked.append((hashed_text(existing), existing["hash"]))
        self.events.append(existing)
        self._chained = len(self.events)
        self._seq = existing["seq"] + 1
        self._head = existing["hash"]
        return existing

    def _skip_interruptions(self) -> None:
        """Interruption markers on disk belong to no turn: adopt them as they come."""
        while self._pending and self._pending[0]["type"] in INTERRUPTIONS:
            self._take(self._pending.pop(0))

    def _adopt(self, event: dict[str, Any]) -> dict[str, Any]:
        existing = self._pending[0]
        ours, theirs = deterministic_lines([event])[0], deterministic_lines([existing])[0]
        if ours != theirs:  # the event stays pending: nothing can be appended after this
            raise TranscriptError(
                f"the resumed run diverged from {self.path} at line {existing['seq'] + 1}: "
                f"it now produces {ours[:200]} where the file has {theirs[:200]}")
        self._take(self._pending.pop(0))
        self._skip_interruptions()
        return existing

    def peek_pending(self) -> list[dict[str, Any]]:
        """Events on disk that the re-run has not reached yet."""
        return list(self._pending)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._temporary is not None:  # the header was never written: leave no file
            self._temporary.unlink(missing_ok=True)
            self._temporary = None

    def __enter__(self) -> TranscriptWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _last_line(fd: int, size: int) -> bytes:
    """The file's last line (with its newline, if it has one), read from the end."""
    data, start = b"", size
    while start > 0:
        step = min(1 << 16, start)
        start -= step
        data = os.pread(fd, step, start) + data
        cut = data.rfind(b"\n", 0, len(data) - 1)
        if cut >= 0:
            return data[cut + 1:]
    return data


def _conflict(path: Path, last: dict[str, Any] | None) -> TranscriptConflict:
    if last is not None and last.get("type") == EventType.SIGNOFF:
        return TranscriptConflict(f"{path}: another sign-off was recorded meanwhile; review "
                                  "again (nothing was written)")
    return TranscriptConflict(f"{path} changed on disk since it was read (another process "
                              "appended to it or cut it); nothing was written. Read it again")


@dataclass(frozen=True)
class Verification:
    """The result of re-computing a transcript's hash chain and typing its events.

    ``events`` are the records of every line that checked out; ``transcript`` types them
    (``None`` unless the whole file verified)."""

    ok: bool
    events: list[dict[str, Any]]
    head_hash: str
    bad_line: int | None = None
    reason: str = ""
    transcript: Transcript | None = None


def read_events(path: Path) -> Iterator[tuple[int, str]]:
    """The lines of a regular file: a FIFO or a device planted under a transcript's name
    is refused at once (opening one to read would wait forever for a writer)."""
    try:
        fd = files.open_regular(path)
    except files.NotRegularFile:
        raise TranscriptError(f"{path}: not a regular file, so not a transcript") from None
    with open(fd, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip("\n")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a transcript may hold (NaN and infinities are "
                     "refused); the line was written by something other than negotiate")


def verify(path: Path) -> Verification:
    """Re-compute the chain; report the first bad line (1-based) and why.

    Each line is checked as raw JSON first (sequence, link, hash), and only then read as the
    typed event its ``type`` names: a line is never trusted before its hash is."""
    events: list[dict[str, Any]] = []
    typed: list[Event] = []
    head = GENESIS
    try:
        lines = list(read_events(path))
    except FileNotFoundError:
        raise TranscriptError(f"{path}: no such transcript") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TranscriptError(f"{path}: cannot read: {error}") from None

    def bad(number: int, reason: str) -> Verification:
        return Verification(False, events, head, number, f"line {number}: {reason}")

    if not lines:
        return Verification(False, events, head, 1, "line 1: the transcript is empty")
    for number, line in lines:
        try:
            event = json.loads(line, parse_constant=_refuse_constant)
        except json.JSONDecodeError as error:
            return bad(number, f"not valid JSON ({error.msg})")
        except ValueError as error:
            return bad(number, str(error))
        except RecursionError:
            return bad(number, "nested too deeply to be a transcript event")
        if not isinstance(event, dict):
            return bad(number, "not a JSON object")
        expected_seq = len(events)
        if event.get("seq") != expected_seq:
            return bad(number, f"seq is {event.get('seq')!r}, expected {expected_seq} "
                               "(an event was deleted, inserted or reordered)")
        if event.get("prev_hash") != head:
            return bad(number, "prev_hash does not match the previous event's hash "
                               "(an event was deleted, inserted or reordered)")
        try:
            digest = event_hash(event)
        except ValueError as error:  # 1e400 reads as infinity; "\\ud800" as a lone surrogate
            return bad(number, f"holds a value no transcript can hold ({error}); the line "
                               "was written by something other than negotiate")
        if event.get("hash") != digest:
            return bad(number, "hash does not match the event's content (the event was edited)")
        if number == 1 and (event.get("type") != EventType.HEADER
                            or event.get("format") != FORMAT):
            return bad(number, f"the first event must be a {FORMAT} header")
        try:
            typed.append(parse_event(event, number))
        except EventError as error:
            return Verification(False, events, head, number, str(error))
        events.append(event)
        head = event["hash"]
    return Verification(True, events, head, transcript=Transcript(tuple(typed), tuple(events)))


def drop_torn_tail(path: Path) -> bool:
    """Remove a last line that a crash cut short (no final newline); report if it did.
    Holds the file's lock, so a line being appended right now is never mistaken for one."""
    if not os.path.lexists(path):
        return False
    try:
        fd = files.open_existing(path)
    except files.OutputError as error:
        raise TranscriptError(str(error)) from None
    try:
        with files.locked(fd):
            size = os.fstat(fd).st_size
            if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
                return False
            os.ftruncate(fd, size - len(_last_line(fd, size)))
            os.fsync(fd)
    finally:
        os.close(fd)
    return True


def read_transcript(path: Path) -> Transcript:
    """The typed events of a transcript that verifies; ``TranscriptError`` naming the first
    bad line (a broken chain, or an event that is not what its type says)."""
    result = verify(path)
    if not result.ok or result.transcript is None:
        raise TranscriptError(f"{path} is tampered or damaged: {result.reason}")
    return result.transcript


def load_verified(path: Path) -> list[dict[str, Any]]:
    """The records of a transcript that verifies; ``TranscriptError`` naming the bad line."""
    return list(read_transcript(path).records)


def negotiation_of(transcript: Transcript, path: Path) -> Header:
    """The header of a negotiation's transcript; ``TranscriptError`` for any other kind."""
    header = transcript.header
    if header is None or header.scenario is None:
        kind = header.kind if header is not None and header.kind else "unknown"
        raise TranscriptError(f"{path} records a campaign's {kind} stage, not a negotiation; "
                              "see campaign.json beside it (negotiate verify FOLDER)")
    return header


def embedded_scenario(header: Header) -> Scenario:
    """The scenario a negotiation's header embeds; ``TranscriptError`` when it is not one
    (a hash-valid header that negotiate never wrote)."""
    try:
        return Scenario.model_validate(header.scenario)
    except ValidationError as error:
        raise TranscriptError(f"line 1: the embedded scenario is not valid "
                              f"({error.error_count()} problem(s), first: "
                              f"{error.errors()[0]['msg']}); the header was not written by "
                              "negotiate") from None


def negotiation_header(events: Transcript | Sequence[Mapping[str, Any]], path: Path
                       ) -> dict[str, Any]:
    """The header record of a negotiation's transcript (see :func:`negotiation_of`)."""
    transcript = _typed(events, path)
    return transcript.record(negotiation_of(transcript, path))


def _typed(events: Transcript | Sequence[Mapping[str, Any]], path: Path) -> Transcript:
    try:
        return Transcript.of(events)
    except EventError as error:
        raise TranscriptError(f"{path}: {error}") from None
