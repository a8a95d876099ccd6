"""Scripts for the scripted OpenAI-compatible server: read a request as a model would."""

from __future__ import annotations

import json
from typing import Any

from negotiation.devtools.llm_server import Reply, reply_json


def prompt(request: dict[str, Any]) -> str:
    return "\n".join(m.get("content") or "" for m in request["messages"])


def situation(request: dict[str, Any]) -> dict[str, Any]:
    """The '## Now' block of the first user message: legal moves and the standing offer."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    block = user.split("## Now\n", 1)[1].rsplit("\nReply with", 1)[0]
    return dict(json.loads(block))


def fair_dealer(terms: dict[str, Any], accept_above: float = 0.5) -> Any:
    """Accept a standing offer worth more than ``accept_above``; otherwise propose ``terms``."""

    def script(request: dict[str, Any], number: int) -> Reply:
        now = situation(request)
        standing = now["standing_offer"]
        if "accept" in now["legal_moves"] and standing["its_utility_for_you"] > accept_above:
            return reply_json({"kind": "accept", "rationale": "This meets our needs."})
        return reply_json({"kind": "propose", "terms": terms,
                           "rationale": "A balanced split of value.",
                           "message": "We think this is fair to both sides."})

    return script
