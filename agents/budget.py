"""Budgets for LLM-backed runs: calls, tokens and money, shared by a run's agents.

Kept apart from the LLM client so that drivers can catch ``BudgetExceeded`` without
importing the openai SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from negotiation.errors import AgentFailure


class BudgetExceeded(AgentFailure, RuntimeError):
    """A run's call, token or cost budget is spent; the run stops cleanly."""


@dataclass
class Budget:
    """Limits shared by every LLM agent in a run; ``None`` means unlimited."""

    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    calls: int = 0
    tokens: int = 0
    cost: float = 0.0

    def check(self) -> None:
        """Raise ``BudgetExceeded`` before a call that the budget no longer allows."""
        if self.max_calls is not None and self.calls >= self.max_calls:
            raise BudgetExceeded(f"call budget spent ({self.calls} of {self.max_calls} calls)")
        if self.max_tokens is not None and self.tokens >= self.max_tokens:
            raise BudgetExceeded(f"token budget spent ({self.tokens} of {self.max_tokens} "
                                 "tokens)")
        if self.max_cost is not None and self.cost >= self.max_cost:
            raise BudgetExceeded(f"cost budget spent (${self.cost:.4f} of "
                                 f"${self.max_cost:.4f})")

    def count_requests(self, requests: int) -> None:
        """Count a model call's HTTP requests, failed ones and retries included: each one
        is a request the provider may bill or rate-limit."""
        self.calls += requests

    def charge(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        self.tokens += prompt_tokens + completion_tokens
        price = self.prices.get(model)
        if price is None:
            return None
        cost = (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
        self.cost += cost
        return cost
