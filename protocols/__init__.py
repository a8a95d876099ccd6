"""Negotiation protocols: pure state machines that decide who may do what, and when it ends."""

from protocols.alternating_offers import AlternatingOffers
from protocols.base import IllegalActionError, NegotiationProtocol, ProtocolState, Status

PROTOCOLS: dict[str, NegotiationProtocol] = {"alternating_offers": AlternatingOffers()}


class UnknownProtocolError(LookupError):
    """A scenario or command named a protocol that does not exist."""


def get_protocol(name: str) -> NegotiationProtocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UnknownProtocolError(
            f"unknown protocol '{name}'; choose one of {sorted(PROTOCOLS)}"
        ) from None


__all__ = [
    "PROTOCOLS",
    "AlternatingOffers",
    "IllegalActionError",
    "NegotiationProtocol",
    "ProtocolState",
    "Status",
    "UnknownProtocolError",
    "get_protocol",
]
