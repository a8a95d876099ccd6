"""The rehearsal studio (``negotiate serve``): a local web app where people take seats in a
negotiation against agents, watch the referee, and sign the agreement off.

Every rehearsal is an ordinary durable run (:mod:`negotiation.graph`) with the same
transcript as ``negotiate run``; :mod:`.seating` decides what each person may see,
:mod:`.rehearsal` drives one run and answers its seats' turns, :mod:`.service` holds the
rehearsals of one server, :mod:`.guard` and :mod:`.app` are the HTTP edge.
"""

from negotiation.studio.app import create_app
from negotiation.studio.service import Studio

__all__ = ["Studio", "create_app"]
