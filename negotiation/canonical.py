"""Canonical JSON: the one text every transcript hash is computed over.

The definition is Python's ``json`` with sorted keys, no spaces, UTF-8 (``ensure_ascii``
off) and no NaN or infinities (:data:`REFERENCE`).  Every transcript ever written used it,
so its bytes are the contract: old transcripts must keep verifying and one seed must keep
giving one file.

orjson writes the same bytes about ten times faster for what events hold (objects with
string keys, strings, integers, floats, booleans, lists), and is used for objects and lists
whenever its text is the reference's.  It differs only in these cases, each of which either
leaves a mark in orjson's text that is looked for, or makes orjson refuse the value; then
the reference encoder writes it:

- a float under 1e-4: ``json`` writes ``8.4317e-05`` and ``1e-07``, orjson
  ``0.000084317`` and ``1e-7``.  Looked for: a number starting ``0.0000`` or with an
  exponent ``e-``;
- NaN and infinities: ``json`` refuses them, orjson writes ``null``.  Looked for: ``null``
  as a value, then the text is read back: a NaN or infinity read back as ``None`` makes it
  differ from the value (so does a tuple read back as a list: the slower path for it too);
- keys that are not strings, integers beyond 64 bits, float subclasses (numpy), datetimes,
  dataclasses, nesting deeper than 255, lone surrogates: orjson refuses them.

Floats from 1e-4 up, including those of 1e16 and more that both write with ``e+``, come out
the same in both (shortest round-trip digits, the same switch to exponents); at import,
probes of these (:data:`_PROBES`) must come out the same, or the fast path stays off.
``tests/test_canonical.py`` pins all of this: both encoders on every decimal exponent of a
double, random bit patterns, and generated nested values.  Two differences are not looked
for, since no event holds such a value: orjson also writes plain enums (neither str nor
int ones) and UUIDs, which ``json`` refuses, and it reads a dict subclass's own entries
where ``json`` calls its ``items()`` (the only subclass here, ``CanonicalObject``, does not
override it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson

#: One encoder for every event: ``json.dumps`` with these options builds a new one per call,
#: which costs about as much as encoding a move.
REFERENCE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                             allow_nan=False)

#: Dataclasses and datetimes go to ``_refuse`` (orjson would encode them; ``json`` refuses).
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS \
    | orjson.OPT_PASSTHROUGH_DATETIME
#: Where orjson's text may differ from the reference's (see the module docstring): a
#: number with an exponent or starting ``0.0000``, or ``null``.  In compact JSON a value
#: follows ``:``, ``,`` or ``[``.  Substrings are looked for first: searching a move's 400
#: bytes with a pattern costs several times more than encoding the move.
_SMALL_FLOAT = re.compile(rb"[:,\[]-?(?:[0-9]+(?:\.[0-9]+)?[eE]|0\.0000)")
_NULL = re.compile(rb"[:,\[]null")
#: The marks themselves, found by ``re``'s search for a literal: as fast as
#: ``bytes.__contains__`` or faster (``e-`` two to three times: a move's text is full of
#: ``e``).  Marks in strings (``re-offer``) only send the text to the patterns above.
_EXPONENT_MARK = re.compile(rb"e-").search
_ZEROS_MARK = re.compile(rb"0\.0000").search
_NULL_MARK = re.compile(rb"null").search


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is left to the reference encoder")


def _orjson_text(value: Any) -> bytes | None:
    """orjson's text of an object or list when it is the reference's, else ``None``."""
    try:
        text = orjson.dumps(value, default=_refuse, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return None
    if (_EXPONENT_MARK(text) or _ZEROS_MARK(text)) and _SMALL_FLOAT.search(text):
        return None
    # A null is a None or a NaN or infinity: read back, the latter equals nothing.
    if _NULL_MARK(text) and _NULL.search(text) and orjson.loads(text) != value:
        return None
    return text


#: Values whose text must come out the same from both (no mark the check looks for): an
#: orjson release that wrote any of them otherwise would lose the fast path, not the bytes.
_PROBES: list[Any] = [
    {"z": 1, "a": {"é": "\x00\x1f\x7f\u2028 \"\\ « t^4 − 1 »", "B": [True, False, -0.0]}},
    [1e16, 1.5e16, 1e22, 1.2345678901234567e19, 1.7976931348623157e308, 9999999999999998.0],
    [0.0001, 0.00015, 0.1, 1 / 3, 2.5, 100.0, 123456789012345.6, 2**63, -(2**63)],
]


def _fast_path_sound() -> bool:
    return all(_orjson_text(probe) == REFERENCE.encode(probe).encode() for probe in _PROBES)


_FAST = _fast_path_sound()


def fast_text(value: Any) -> bytes | None:
    """orjson's canonical text of ``value`` when it is provably the reference's, else
    ``None``.  Such a text orjson also reads back as ``json`` does (every integer in it
    fits 64 bits)."""
    if _FAST and isinstance(value, (dict, list)):
        return _orjson_text(value)
    return None


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value`` (``ValueError``/``TypeError`` as ``json``)."""
    text = fast_text(value)
    return REFERENCE.encode(value) if text is None else text.decode()


def canonical_bytes(value: Any) -> bytes:
    """:func:`canonical_json` encoded as UTF-8, what hashes are computed over."""
    if _FAST and isinstance(value, (dict, list)):  # fast_text's test, one call less per event
        text = _orjson_text(value)
        if text is not None:
            return text
    return REFERENCE.encode(value).encode()


def canonical_bytes_with(record: Mapping[str, Any], key: str, text: bytes) -> bytes:
    """``canonical_bytes({**record, key: value})`` where ``text`` is the canonical text of
    ``value``, computed once: a header embedding its scenario."""
    if _FAST and _orjson_text(record) is not None:
        return orjson.dumps({**record, key: orjson.Fragment(text)}, option=orjson.OPT_SORT_KEYS)
    # The reference's order of refusals: the keys are sorted first (a TypeError), then each
    # key and value is written in turn, and the text is encoded to UTF-8 last (a lone
    # surrogate's UnicodeEncodeError).  A key's text is written as the reference writes a key
    # (``1`` as ``"1"``).
    items = sorted([*((k, v) for k, v in record.items() if k != key), (key, None)])
    scenario = text.decode()
    body = ",".join(REFERENCE.encode({k: 0})[1:-3] + ":"
                    + (scenario if k == key else REFERENCE.encode(v)) for k, v in items)
    return ("{" + body + "}").encode()
