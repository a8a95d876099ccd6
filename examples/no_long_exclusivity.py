"""A custom guardrail check: no exclusivity longer than a given number of months.

Register it for a command with
``negotiate --plugin no_long_exclusivity=examples.no_long_exclusivity:NoLongExclusivity``
and name it in the scenario:

    guardrails:
      custom:
        - use: no_long_exclusivity
          options: {max_months: 12}
          proposals: warn
          agreements: block
"""

from __future__ import annotations

from negotiation.api import Failure, Scenario, TermValue


class NoLongExclusivity:
    """Flags exclusivity periods longer than ``max_months`` (options named months_N)."""

    name = "no_long_exclusivity"

    def __init__(self, issue: str = "exclusivity", max_months: int = 12) -> None:
        self.issue = issue
        self.max_months = max_months

    def check(self, scenario: Scenario, terms: dict[str, TermValue],
              subject: str) -> list[Failure]:
        value = str(terms.get(self.issue, ""))
        if not value.startswith("months_"):
            return []
        months = int(value.removeprefix("months_"))
        if months <= self.max_months:
            return []
        return [Failure(code="exclusivity_too_long",
                        message=f"{months} months of exclusivity exceeds the "
                                f"{self.max_months}-month limit",
                        data={"months": months, "max_months": self.max_months})]
