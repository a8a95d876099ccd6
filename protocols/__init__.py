"""Negotiation protocols: pure state machines that decide who may do what, and when it ends."""

from typing import cast

from negotiation.errors import InputError
from negotiation.plugins import (
    PROTOCOL_GROUP,
    import_path_refused,
    is_import_path,
    load_protocol,
    registered,
)
from protocols.alternating_offers import AlternatingOffers
from protocols.base import (
    IllegalActionError,
    NegotiationProtocol,
    ProtocolBase,
    ProtocolState,
    Status,
)
from protocols.mediated import MEDIATOR, MediatedSingleText, MediatedTable

PROTOCOLS: dict[str, NegotiationProtocol] = {
    "alternating_offers": AlternatingOffers(),
    "mediated_single_text": MediatedSingleText(),
}


class UnknownProtocolError(InputError, LookupError):
    """A scenario or command named a protocol that does not exist."""


def get_protocol(name: str) -> NegotiationProtocol:
    """A built-in protocol or a registered one: installed under the entry point group
    ``negotiation.protocols`` or given with ``--plugin``.  An import path is refused unless
    ``--plugin`` registered it: the name may come from a file."""
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    if name in registered(PROTOCOL_GROUP):
        return cast(NegotiationProtocol, load_protocol(name))
    if is_import_path(name):
        raise UnknownProtocolError(str(import_path_refused(name, "protocol")))
    raise UnknownProtocolError(f"unknown protocol '{name}'; choose one of "
                               f"{', '.join(protocol_names())}")


def protocol_names() -> list[str]:
    """Every name a scenario's protocol may use: built in, then registered extensions."""
    return sorted(PROTOCOLS) + sorted(n for n in registered(PROTOCOL_GROUP)
                                      if not is_import_path(n))


__all__ = [
    "MEDIATOR",
    "PROTOCOLS",
    "AlternatingOffers",
    "IllegalActionError",
    "MediatedSingleText",
    "MediatedTable",
    "NegotiationProtocol",
    "ProtocolBase",
    "ProtocolState",
    "Status",
    "UnknownProtocolError",
    "get_protocol",
    "protocol_names",
]
