"""Ed25519 signatories: key pairs, signatory records and signatures over a transcript head.

A signatory is one person entitled to sign for one organisation.  Their record (org, name,
public key, fingerprint) is public and goes into the scenario's ``signatories:`` block and
to whoever must check a charter; their private key stays in the user's config folder
(``negotiate keys new``), readable by them alone.

A sign-off signs, with the domain prefix :data:`DOMAIN`, the canonical JSON of its own event
(decision, the signer's organisation, name and fingerprint, the comment, the agreement event,
its sequence number and ``prev_hash``: the hash of the chain head it follows).  Because every
event's hash covers the one before it, that head commits to the whole transcript up to the
sign-off: terms, embedded scenario, moves and earlier sign-offs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from negotiation import files
from negotiation.errors import InputError
from negotiation.model import OrgSignatories
from negotiation.strict_yaml import load_yaml, read_data_file
from negotiation.transcript import canonical_json

#: Prefix of every signed message, so a sign-off signature can never be replayed as
#: anything else (or anything else as a sign-off).
DOMAIN = b"negotiation-signoff/1\n"
#: The fields of a sign-off event its signature does not cover: the signature itself, the
#: event's own hash (computed after signing) and the wall clock.
UNSIGNED_FIELDS = frozenset({"signature", "hash", "wall"})


class SignatoryFileError(InputError):
    """A key or signatory file cannot be used; the message says which and why."""


def fingerprint(public_key: str) -> str:
    """The sha256 of the raw 32-byte public key, hex: how people compare keys."""
    return hashlib.sha256(_raw_public_key(public_key)).hexdigest()


def short(fingerprint_: str) -> str:
    """A fingerprint as shown on screen: its first 16 hex digits."""
    return fingerprint_[:16]


def _raw_public_key(public_key: str) -> bytes:
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
    return raw


class Signatory(BaseModel):
    """The public record of one signatory: who signs for which organisation, with what key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$", max_length=64)
    name: str = Field(min_length=1, max_length=200)
    public_key: str = Field(description="Raw 32-byte Ed25519 public key, base64.")
    fingerprint: str = ""

    @field_validator("public_key")
    @classmethod
    def _valid_key(cls, value: str) -> str:
        _raw_public_key(value)
        return value

    def model_post_init(self, _context: Any) -> None:
        actual = fingerprint(self.public_key)
        if self.fingerprint and self.fingerprint != actual:
            raise ValueError(f"fingerprint {self.fingerprint} does not match the public key "
                             f"({actual})")
        object.__setattr__(self, "fingerprint", actual)


@dataclass(frozen=True)
class LocalKey:
    """A private key in the user's config folder, with its public record beside it."""

    path: Path
    signatory: Signatory

    def private_key(self) -> Ed25519PrivateKey:
        return load_private_key(self.path)


def keys_folder() -> Path:
    """Where private keys live: ``<user config>/negotiate/keys`` (platformdirs)."""
    from platformdirs import user_config_path

    return user_config_path("negotiate") / "keys"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "signatory"


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``data`` and ``mode``; never overwrite, never follow a symlink."""
    descriptor = files.create_exclusive(path, mode)
    try:
        files.write_all(descriptor, data)
        os.fsync(descriptor)
    except OSError as error:
        path.unlink(missing_ok=True)
        raise files.write_error(path, error) from None
    finally:
        os.close(descriptor)


def new_key(org: str, name: str, folder: Path | None = None) -> LocalKey:
    """Create an Ed25519 key pair for ``name`` signing for ``org``: the private key with
    mode 0600 in ``folder`` (default :func:`keys_folder`), its public record beside it."""
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    try:
        record = Signatory(org=org, name=name.strip(),
                           public_key=base64.b64encode(raw).decode())
    except ValidationError as error:
        raise SignatoryFileError(f"cannot make a key for org '{org}', name '{name}': "
                        f"{error.errors()[0]['msg']}; the org is the organisation id from "
                        "the scenario (e.g. vendor) and the name is not empty") from None
    folder = folder or keys_folder()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem = f"{org}-{_slug(name)}-{short(record.fingerprint)[:8]}"
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path = folder / f"{stem}.key"
    _write_new(path, pem, 0o600)
    _write_new(folder / f"{stem}.signatory.yaml", signatory_yaml(record).encode(), 0o644)
    return LocalKey(path, record)


def signatory_yaml(record: Signatory) -> str:
    return yaml.safe_dump(record.model_dump(), sort_keys=False, allow_unicode=True)


def local_keys(folder: Path | None = None) -> list[LocalKey]:
    """Every key pair in ``folder`` (default :func:`keys_folder`) whose record beside it
    describes that very key (a record naming another key is ignored, not believed)."""
    folder = folder or keys_folder()
    found = []
    for path in sorted(folder.glob("*.key")) if folder.is_dir() else []:
        record = path.with_suffix(".signatory.yaml")
        try:
            signatory = read_signatories(record)[0]
            if signatory.public_key == public_key_of(load_private_key(path)):
                found.append(LocalKey(path, signatory))
        except InputError:
            continue
    return found


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file; refuses other key types and symlinks."""
    try:
        if path.is_symlink():
            raise SignatoryFileError(f"{path} is a symbolic link; give the key file itself")
        if path.stat().st_mode & 0o077:
            raise SignatoryFileError(f"{path} can be read by other users, so it no longer "
                                     "proves who signed; make a new key with 'negotiate keys "
                                     f"new' (or, if it never left your hands, chmod 600 {path})")
        data = path.read_bytes()
    except OSError as error:
        raise SignatoryFileError(f"cannot read the key {path}: {error.strerror or error}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise SignatoryFileError(f"{path} is not an unencrypted PEM private key ({error}); "
                                 "make one with 'negotiate keys new'") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatoryFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key; "
                                 "make one with 'negotiate keys new'")
    return key


def public_key_of(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Expected:
    """Signatories a reader trusts, obtained outside the transcript: their records, and the
    quorum of each organisation when a whole ``signatories:`` block was given."""

    records: tuple[Signatory, ...]
    quorums: Mapping[str, int]


def _load(path: Path) -> Any:
    try:
        return load_yaml(read_data_file(path), str(path))
    except (OSError, UnicodeDecodeError) as error:
        raise SignatoryFileError(f"cannot read the signatory file {path}: {error}") from None
    except yaml.YAMLError as error:
        raise SignatoryFileError(f"{path}: not valid YAML ({error}); a signatory file holds "
                                 "org, name and public_key (as 'negotiate keys new' writes "
                                 "it)") from None


def _record(path: Path, index: int, item: Any) -> Signatory:
    try:
        return Signatory.model_validate(item)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "(record)"
        raise SignatoryFileError(f"{path}: record {index + 1}, field {where}: "
                                 f"{problem['msg']}; a signatory record holds org, name "
                                 "and public_key (base64)") from None


def read_signatories(path: Path) -> list[Signatory]:
    """Signatory records from a YAML or JSON file: one record, or a list of them."""
    data = _load(path)
    items = data if isinstance(data, list) else [data]
    records = [_record(path, index, item) for index, item in enumerate(items)]
    if not records:
        raise SignatoryFileError(f"{path} holds no signatory record")
    return records


def read_expected(paths: Sequence[Path]) -> Expected:
    """What ``verify --signatories`` trusts: signatory records (as ``keys new`` writes
    them), or a ``signatories:`` block with quorums (a scenario file you agreed to, or just
    its block), which then must match the transcript's exactly."""
    records: list[Signatory] = []
    quorums: dict[str, int] = {}
    for path in paths:
        data = _load(path)
        block = data.get("signatories") if isinstance(data, dict) else None
        if block is None:
            records += read_signatories(path)
            continue
        try:
            declared = {org: OrgSignatories.model_validate(spec)
                        for org, spec in dict(block).items()}
        except (ValidationError, TypeError, ValueError) as error:
            raise SignatoryFileError(f"{path}: signatories: not a block of organisation -> "
                                     f"{{keys, quorum}} ({error})") from None
        for org, spec in declared.items():
            quorums[org] = spec.quorum
            records += [_record(path, index, {"org": org, "name": key.name,
                                              "public_key": key.public_key})
                        for index, key in enumerate(spec.keys)]
    return Expected(tuple(records), quorums)


def signed_message(event: Mapping[str, Any]) -> bytes:
    """What a sign-off's signature covers: every field of the event, its ``seq`` and its
    ``prev_hash`` (the chain head it follows) included, but :data:`UNSIGNED_FIELDS`."""
    body = {key: value for key, value in event.items() if key not in UNSIGNED_FIELDS}
    return DOMAIN + canonical_json(body).encode()


def sign(private: Ed25519PrivateKey, event: Mapping[str, Any]) -> str:
    return base64.b64encode(private.sign(signed_message(event))).decode()


def signature_valid(public_key: str, event: Mapping[str, Any]) -> bool:
    """Whether ``event['signature']`` is ``public_key``'s signature of ``event``."""
    try:
        signature = base64.b64decode(str(event.get("signature", "")), validate=True)
        key = Ed25519PublicKey.from_public_bytes(_raw_public_key(public_key))
        key.verify(signature, signed_message(event))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
