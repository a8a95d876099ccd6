"""What a run's LLM agents used: model calls, HTTP attempts, tokens and cost, per party.

Pure functions over transcript events (typed events or their plain records), for the
console, the reports and the tournament rows to render; nothing here prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from negotiation.events import WALL, EventType, LlmCall


@dataclass(frozen=True)
class Usage:
    """One party's (or a run's) LLM use.

    ``calls`` are model calls (one ``llm_call`` event each, a re-ask is another call);
    ``attempts`` are the HTTP requests they took, retries and failed requests included
    (what the call budget counts).  ``cost_usd`` sums the calls whose model has a price;
    ``unpriced_calls`` says how many calls had none (their cost is unknown, not zero)."""

    calls: int = 0
    attempts: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    @property
    def cost_known(self) -> bool:
        """Whether ``cost_usd`` is the whole cost (every call had a price)."""
        return self.unpriced_calls == 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.calls + other.calls, self.attempts + other.attempts,
                     self.tokens_in + other.tokens_in, self.tokens_out + other.tokens_out,
                     round(self.cost_usd + other.cost_usd, 8),
                     self.unpriced_calls + other.unpriced_calls)


def _call_usage(call: Mapping[str, Any]) -> Usage:
    wall = call.get(WALL) or {}
    attempts = wall.get("attempts") if isinstance(wall, Mapping) else None
    cost = call.get("cost_usd")
    return Usage(calls=1, attempts=len(attempts) if isinstance(attempts, list) and attempts
                 else 1,
                 tokens_in=int(call.get("prompt_tokens") or 0),
                 tokens_out=int(call.get("completion_tokens") or 0),
                 cost_usd=float(cost) if cost is not None else 0.0,
                 unpriced_calls=int(cost is None))


def usage_by_party(events: Iterable[LlmCall | Mapping[str, Any] | Any]) -> dict[str, Usage]:
    """Each party's LLM use, in order of first call; parties that made no call are absent.

    ``events`` may be typed events (``Transcript.events``) or plain records; only
    ``llm_call`` events count.  A call with one attempt records none under ``wall``."""
    totals: dict[str, Usage] = {}
    for event in events:
        if isinstance(event, LlmCall):
            call: Mapping[str, Any] = event.model_dump()
        elif isinstance(event, Mapping) and event.get("type") == EventType.LLM_CALL:
            call = event
        else:
            continue
        party = str(call.get("party", ""))
        totals[party] = totals.get(party, Usage()) + _call_usage(call)
    return totals


def total_usage(by_party: Mapping[str, Usage]) -> Usage:
    """The run's total: the sum over parties."""
    return sum(by_party.values(), Usage())
