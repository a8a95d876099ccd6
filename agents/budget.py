"""Budgets for LLM-backed runs: calls, tokens and money, shared by a run's agents.

A budget is never overshot.  Each HTTP request (a retry or a failed request included) is
admitted before it is sent, and each model call reserves, before it starts, an upper
bound of its prompt and a completion cap (the ``max_tokens`` it sends) that fit in what is
left of the token and cost budgets; when nothing useful fits, the call is refused.

Kept apart from the LLM client so that drivers can catch ``BudgetExceeded`` without
importing the openai SDK.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from negotiation.errors import AgentFailure

#: The smallest completion cap worth paying for: a move with a one-sentence rationale
#: takes more, so a smaller cap would only buy a cut-off reply.
MIN_REPLY_TOKENS = 32


class BudgetExceeded(AgentFailure, RuntimeError):
    """A run's call, token or cost budget is spent; the run stops cleanly."""


@dataclass(frozen=True)
class Reservation:
    """What one model call may use at most: its prompt bound plus ``max_tokens``."""

    model: str
    max_tokens: int
    tokens: int
    cost: float


@dataclass
class Budget:
    """Limits shared by every LLM agent in a run; ``None`` means unlimited.

    ``prices`` maps a model to (input, output) US dollars per million tokens."""

    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: HTTP requests sent (every attempt: retries and failed requests included).
    calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    #: Held by calls in flight (concurrent negotiations may share a budget).
    reserved_tokens: int = 0
    reserved_cost: float = 0.0

    @property
    def caps_tokens(self) -> bool:
        """Whether calls must be sized (a token or cost limit is set)."""
        return self.max_tokens is not None or self.max_cost is not None

    def check(self) -> None:
        """Raise ``BudgetExceeded`` when the call budget has no request left."""
        if self.max_calls is not None and self.calls >= self.max_calls:
            raise BudgetExceeded(f"call budget spent ({self.calls} of {self.max_calls} calls); "
                                 "raise it (--budget-calls) to go further")

    def admit_request(self) -> None:
        """Count one HTTP request before it is sent (each one is a request the provider
        may bill or rate-limit); ``BudgetExceeded`` instead when none is left."""
        self.check()
        self.calls += 1

    def reserve(self, model: str, prompt_bound: int, wanted: int) -> Reservation:
        """Reserve a call whose prompt has at most ``prompt_bound`` tokens: its completion
        cap is ``wanted`` lowered so that prompt + cap fits in the tokens and dollars left.
        ``BudgetExceeded`` when less than a useful reply (``MIN_REPLY_TOKENS``) fits, or a
        cost budget is set and ``model`` has no price."""
        floor = min(wanted, MIN_REPLY_TOKENS)
        cap = wanted
        if self.max_tokens is not None:
            room = self.max_tokens - self.tokens - self.reserved_tokens - prompt_bound
            if room < floor:
                raise BudgetExceeded(
                    f"token budget spent ({self.tokens} of {self.max_tokens} tokens used; "
                    f"the next call needs up to {prompt_bound} prompt tokens and "
                    f"{floor} for a reply); raise it (--budget-tokens) to go further")
            cap = min(cap, room)
        price_in, price_out = self.prices.get(model, (0.0, 0.0))
        if self.max_cost is not None:
            if model not in self.prices:
                raise BudgetExceeded(f"a cost budget is set but the price table has no "
                                     f"price for model '{model}'; add it to --prices")
            left = self.max_cost - self.cost - self.reserved_cost \
                - prompt_bound * price_in / 1_000_000
            # A hair under what is left, so that rounding can never tip the sum over.
            room = math.floor(left * 1_000_000 / price_out * (1 - 1e-9)) if price_out \
                else (cap if left >= 0 else -1)
            if room < floor:
                raise BudgetExceeded(
                    f"cost budget spent (${self.cost:.4f} of ${self.max_cost:.4f} used; "
                    f"the next call could cost more than what is left); raise it "
                    "(--budget-cost) to go further")
            cap = min(cap, room)
        reservation = Reservation(model, cap, prompt_bound + cap,
                                  (prompt_bound * price_in + cap * price_out) / 1_000_000)
        self.reserved_tokens += reservation.tokens
        self.reserved_cost += reservation.cost
        return reservation

    def release(self, reservation: Reservation) -> None:
        """Give back what a call held (once it is over, charged or not)."""
        self.reserved_tokens -= reservation.tokens
        self.reserved_cost = max(0.0, self.reserved_cost - reservation.cost)

    def charge(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Add a call's reported usage; its cost, or None when the model has no price."""
        self.tokens += prompt_tokens + completion_tokens
        price = self.prices.get(model)
        if price is None:
            return None
        cost = (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
        self.cost += cost
        return cost


def charged_usage(usage: Any, reservation: Reservation, capped: bool) -> tuple[int, int]:
    """(prompt, completion) tokens to charge for a reply whose server reported ``usage``.

    A server that reports no usage, or counts that are not whole numbers of 0 or more (a
    hostile or broken server: negative counts would hand the budget back), is charged
    what the call reserved, the most it could have used, when a token or cost budget is
    set; without one there is nothing to protect and it is charged nothing."""
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    if (isinstance(prompt, int) and isinstance(completion, int)
            and prompt >= 0 and completion >= 0):
        return prompt, completion
    if not capped:
        return 0, 0
    return reservation.tokens - reservation.max_tokens, reservation.max_tokens


def prompt_token_bound(body: Mapping[str, Any]) -> int:
    """An upper bound of the prompt tokens of a chat-completions request ``body``: its size
    in UTF-8 bytes as compact JSON.  Every token of a byte-level BPE tokenizer (OpenAI's,
    and most open models') stands for at least one byte, and the JSON around each message,
    tool and schema is longer than the few tokens a server adds for them."""
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
