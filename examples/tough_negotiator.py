"""A custom strategy: concede like Boulware, but never below the midpoint between our best
outcome and our reservation value (a "tough" floor), and accept only offers above it.

    negotiate run rd-joint-venture --agent kestrel=examples.tough_negotiator:ToughNegotiator
"""

from __future__ import annotations

from negotiation.api import Accept, Action, Bidder, Propose, TimeDependentCurve, View, WalkAway


class ToughNegotiator:
    """Boulware concession with a floor halfway between best outcome and reservation."""

    def __init__(self, beta: float = 0.3) -> None:
        self.curve = TimeDependentCurve(beta)
        self.bidder: Bidder | None = None

    async def act(self, view: View) -> Action:
        if self.bidder is None:
            self.bidder = Bidder(view)
        bidder = self.bidder
        if not bidder.viable:
            return WalkAway(rationale="Nothing on the table beats our alternative.")
        floor = (bidder.best_utility + bidder.reservation_value) / 2
        target = max(self.curve.target(view.time, bidder.best_utility, bidder.worst_utility),
                     floor)
        standing = view.standing_offer
        if standing is not None and "accept" in view.legal and bidder.value(standing) >= target:
            return Accept(rationale="The offer clears our floor.")
        outcome = bidder.outcome_for(target)
        return Propose(offer=bidder.offer(outcome),
                       rationale=f"Tough concession at t={view.time:.2f}; we hold our floor.")
