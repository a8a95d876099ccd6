"""Negotiation protocols: pure state machines that decide who may do what, and when it ends."""

from typing import cast

from negotiation.errors import InputError
from negotiation.plugins import PROTOCOL_GROUP, installed, is_import_path, load_protocol
from protocols.alternating_offers import AlternatingOffers
from protocols.base import IllegalActionError, NegotiationProtocol, ProtocolState, Status
from protocols.mediated import MEDIATOR, MediatedSingleText

PROTOCOLS: dict[str, NegotiationProtocol] = {
    "alternating_offers": AlternatingOffers(),
    "mediated_single_text": MediatedSingleText(),
}


class UnknownProtocolError(InputError, LookupError):
    """A scenario or command named a protocol that does not exist."""


def get_protocol(name: str) -> NegotiationProtocol:
    """A built-in protocol, an installed one (entry point group ``negotiation.protocols``)
    or one given by import path (``mypkg.rules:Mediated``)."""
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    if name in installed(PROTOCOL_GROUP) or is_import_path(name):
        return cast(NegotiationProtocol, load_protocol(name))
    choices = sorted(PROTOCOLS) + sorted(installed(PROTOCOL_GROUP))
    raise UnknownProtocolError(f"unknown protocol '{name}'; choose one of {choices}, or give "
                               "an import path such as mypkg.rules:MyProtocol")


__all__ = [
    "MEDIATOR",
    "PROTOCOLS",
    "AlternatingOffers",
    "IllegalActionError",
    "MediatedSingleText",
    "NegotiationProtocol",
    "ProtocolState",
    "Status",
    "UnknownProtocolError",
    "get_protocol",
]
