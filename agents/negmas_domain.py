"""A scenario's outcome space and one organisation's preferences, as NegMAS sees them.

Imported only when NegMAS is installed (``agents.negmas_seat`` checks first).  Each of our
issues becomes one discrete NegMAS issue over the same values in the same order: options stay
strings, numbers stay numbers, and a split becomes a label such as ``"platform=30,vendor=70"``
(NegMAS outcomes are tuples of hashable values).  The utility function is NegMAS's
``LinearAdditiveUtilityFunction`` with the organisation's weights and one value table per
issue (Keeney & Raiffa 1976: ``U(o) = Σ_i w_i · v_i(o_i)``), so it equals our own utility on
every outcome, wrapped so that outcomes crossing one of the organisation's red lines are worth
``RED_LINE_UTILITY``, below any reservation value (a NegMAS negotiator neither offers nor
accepts them); the reservation value is its ``reserved_value``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from negmas.outcomes import make_issue, make_os
from negmas.preferences import LinearAdditiveUtilityFunction, MappingUtilityFunction, TableFun
from negmas.sao import ResponseType, SAOMechanism, SAONegotiator, SAOState

from negotiation.model import Offer, Preferences, RedLine, TermValue
from negotiation.utility import OutcomeSpace, UtilityFunction, violates

__all__ = ["RED_LINE_UTILITY", "AbsentParty", "Domain", "ResponseType", "Table", "Valuation",
           "mechanism_state", "utility_function", "value_label"]

#: What an outcome crossing one of the organisation's red lines is worth to its negotiator.
RED_LINE_UTILITY = -1.0

Outcome = tuple[Any, ...]


def value_label(value: TermValue) -> Any:
    """The hashable NegMAS value of one of our issue values."""
    if isinstance(value, dict):
        return ",".join(f"{party}={share}" for party, share in value.items())
    return value


@dataclass(frozen=True)
class Domain:
    """Our outcome space as a NegMAS outcome space, with the translation both ways."""

    space: OutcomeSpace
    outcome_space: Any
    #: Per issue, each NegMAS value → our value.
    ours: tuple[dict[Any, TermValue], ...]

    @classmethod
    def of(cls, space: OutcomeSpace, name: str = "scenario") -> Domain:
        issues = [make_issue([value_label(v) for v in values], name=issue.id)
                  for issue, values in zip(space.issues, space.values, strict=True)]
        ours = tuple({value_label(v): v for v in values} for values in space.values)
        return cls(space, make_os(issues, name=name), ours)

    def outcome(self, offer: Offer) -> Outcome:
        """The NegMAS outcome of one of our offers."""
        positions = self.space.value_indices(self.space.index_of_offer(offer))
        return tuple(value_label(values[int(k)])
                     for values, k in zip(self.space.values, positions, strict=True))

    def offer(self, outcome: Sequence[Any]) -> Offer:
        """Our offer for a NegMAS outcome (``InvalidOfferError`` if it is not in the space)."""
        terms = {issue.id: ours.get(label, label)
                 for issue, ours, label in zip(self.space.issues, self.ours, outcome,
                                               strict=True)}
        return self.space.offer(self.space.index_of(terms))


class Valuation:
    """One organisation's utility of a NegMAS outcome: its linear-additive utility, or
    ``RED_LINE_UTILITY`` for an outcome that crosses a red line or that the referee refused.

    It learns: :meth:`forbid` adds red lines the referee disclosed and refused outcomes, as
    our own agents do after a blocked proposal."""

    def __init__(self, domain: Domain, utility: UtilityFunction,
                 preferences: Preferences) -> None:
        values = {}
        for issue, issue_values, weight, table in zip(domain.space.issues, domain.space.values,
                                                      utility.weights, utility.tables,
                                                      strict=True):
            scores = table / weight if weight > 0 else np.zeros(len(issue_values))
            values[issue.id] = TableFun({value_label(v): float(s)
                                         for v, s in zip(issue_values, scores, strict=True)})
        weights = {issue.id: float(w)
                   for issue, w in zip(domain.space.issues, utility.weights, strict=True)}
        self.additive = LinearAdditiveUtilityFunction(
            values, weights=weights, outcome_space=domain.outcome_space,
            reserved_value=preferences.reservation_value)
        self.reservation_value = preferences.reservation_value
        self._space = domain.space
        self._allowed = [{value_label(v) for v in values} for values in domain.space.values]
        self._refused: set[Outcome] = set()
        self.forbid(preferences.red_lines)

    def forbid(self, red_lines: Sequence[RedLine], outcomes: Collection[Outcome] = ()) -> None:
        for issue, values, allowed in zip(self._space.issues, self._space.values,
                                          self._allowed, strict=True):
            for line in red_lines:
                if line.issue == issue.id:
                    allowed -= {value_label(v) for v in values
                                if violates(line, {issue.id: v})}
        self._refused.update(tuple(outcome) for outcome in outcomes)

    def __call__(self, outcome: Sequence[Any] | None) -> float:
        if outcome is None:
            return float(self.reservation_value)
        outcome = tuple(outcome)
        if outcome in self._refused or any(
                value not in allowed
                for value, allowed in zip(outcome, self._allowed, strict=True)):
            return RED_LINE_UTILITY
        return float(self.additive(outcome))


def utility_function(domain: Domain, valuation: Valuation) -> Any:
    """An organisation's NegMAS utility function over ``valuation`` (its ``mapping``)."""
    return MappingUtilityFunction(valuation, outcome_space=domain.outcome_space,
                                  reserved_value=valuation.reservation_value)


class AbsentParty(SAONegotiator):  # type: ignore[misc]
    """Holds another organisation's place in the host mechanism: it is never asked to move
    and has no utility function (nothing of the other side's preferences is handed over)."""

    def propose(self, state: SAOState, dest: str | None = None) -> None:
        return None


class Table(SAOMechanism):  # type: ignore[misc]
    """The host mechanism of one seated negotiator: never run, it gives the negotiator its
    interface (outcome space, deadline, the parties' ids in turn order) and answers
    ``nmi.state`` with the state of our protocol that the seat last showed it."""

    def __init__(self, domain: Domain, parties: Sequence[str], seated: str, negotiator: Any,
                 ufun: Any, n_steps: int) -> None:
        super().__init__(outcome_space=domain.outcome_space, n_steps=n_steps,
                         name=f"{seated}-table")
        self.shown: SAOState | None = None
        for party in parties:
            if party == seated:
                self.add(negotiator, ufun=ufun)
            else:
                self.add(AbsentParty(id=party, name=party))

    @property
    def state(self) -> SAOState:
        return self.shown if self.shown is not None else super().state


def mechanism_state(*, step: int, n_steps: int, n_negotiators: int,
                    current_offer: Outcome | None, current_proposer: str | None,
                    n_acceptances: int, new_offers: list[tuple[str, Outcome]],
                    last_negotiator: str | None) -> SAOState:
    """A running ``SAOState`` as ``SAOMechanism`` shows it during step ``step``: relative
    time ``(step + 1) / (n_steps + 1)``, NegMAS's own formula for a step-limited run."""
    return SAOState(running=True, started=True, step=step, time=0.0,
                    relative_time=min(1.0, (step + 1) / (n_steps + 1)),
                    n_negotiators=n_negotiators, current_offer=current_offer,
                    current_proposer=current_proposer, n_acceptances=n_acceptances,
                    new_offers=new_offers, last_negotiator=last_negotiator)
