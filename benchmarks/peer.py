"""The same domains and the same negotiators in NegMAS and here, for side-by-side
measurements (NegMAS is optional: it is installed into the benchmark environment only).

Equal work means equal decisions.  NegMAS's time-based concession
(``TimeBasedConcedingNegotiator`` with a ``PolyAspiration`` curve, which is what its
``BoulwareTBNegotiator``/``LinearTBNegotiator``/``ConcederTBNegotiator`` are) is written here
once more as :class:`AspirationCurve`, on our shared ranked outcomes and through our whole
engine (referee, protocol, transcript), so that both systems make the same moves and reach
the same agreement in the same round; the benchmarks check that before they time anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agents.base import View
from agents.rule_based import Bidder, RuleBasedAgent
from negotiation.model import Action, DiscreteIssue, Scenario

#: NegMAS's PolyAspiration exponents: a(t) = 1 − t^e.
BOULWARE, LINEAR, CONCEDER = 4.0, 1.0, 0.25
#: The line-up by number of parties: Boulware vs Conceder (+ linear for a third party).
LINEUP = (BOULWARE, CONCEDER, LINEAR)
#: NegMAS's default tolerance below the aspiration level (``eps`` of its inverter).
NEGMAS_EPS = 1e-4


def negmas_available() -> bool:
    try:
        import negmas  # noqa: F401
    except ImportError:
        return False
    return True


class AspirationCurve(RuleBasedAgent):
    """NegMAS's time-based conceding negotiator, decision for decision, on our Bidder.

    At NegMAS's relative time t = (round + 1) / (rounds + 1) the aspiration is
    a(t) = 1 − t^e, scaled to the party's utility range and lowered by NegMAS's ε:
    low = u_min + a(t) · (u_max − u_min) − ε.  Offer the worst outcome worth at least
    ``low`` (NegMAS's ``worst_in``); accept a standing offer worth at least ``low``.
    """

    def __init__(self, exponent: float) -> None:
        super().__init__()
        self.exponent = exponent
        self.label = f"aspiration 1 − t^{exponent:g}"

    def decide(self, view: View, bidder: Bidder) -> Action:
        state = view.state
        t = min(1.0, (state.round + 1) / (state.max_rounds + 1))
        best, worst = bidder.best_utility, bidder.worst_utility
        low = max(worst, worst + (1.0 - t ** self.exponent) * (best - worst) - NEGMAS_EPS)
        standing = view.standing_offer
        if standing is not None and "accept" in view.legal and bidder.value(standing) >= low:
            return self.accept("The standing offer is worth our aspiration level.")
        return self.propose(view, bidder.lowest_at_least(low), bidder)


def aspiration_agents(scenario: Scenario) -> dict[str, AspirationCurve]:
    """Our side of the line-up, one agent per party in speaking order."""
    return {party: AspirationCurve(exponent)
            for party, exponent in zip(scenario.party_ids, LINEUP, strict=False)}


def negmas_domain(scenario: Scenario) -> tuple[list[Any], list[Any]]:
    """NegMAS issues and linear-additive utility functions equal to ours (discrete issues)."""
    from negmas import make_issue
    from negmas.preferences import LinearAdditiveUtilityFunction
    from negmas.preferences.value_fun import TableFun

    issues = []
    for issue in scenario.issues:
        assert isinstance(issue, DiscreteIssue), "the peer benchmarks use discrete issues"
        issues.append(make_issue(list(issue.options), name=issue.id))
    ufuns = []
    for org in scenario.organizations:
        prefs = org.preferences
        ufuns.append(LinearAdditiveUtilityFunction(
            values=[TableFun(dict(prefs.values[i.id].scores or {})) for i in scenario.issues],
            weights=[prefs.weights[i.id] for i in scenario.issues], issues=issues,
            reserved_value=prefs.reservation_value))
    return issues, ufuns


class NegmasSide:
    """One NegMAS set-up of a scenario: ``warm`` builds the outcome space, the utility
    functions and each one's presorted inverse once (handed to every negotiator through
    ``ufun_inverter=``); cold rebuilds all of them in every negotiation, as a NegMAS user
    who does nothing special does.  Callbacks are off in both: nobody listens to them."""

    def __init__(self, scenario: Scenario, rounds: int, *, warm: bool) -> None:
        self.scenario = scenario
        self.rounds = rounds
        self.warm = warm
        self._prepared: tuple[Any, list[Any], Callable[[Any], Any] | None] | None = None
        if warm:
            self._prepared = self._prepare(prebuild=True)

    def _prepare(self, prebuild: bool) -> tuple[Any, list[Any], Callable[[Any], Any] | None]:
        from negmas.outcomes import make_os
        from negmas.preferences.inv_ufun import DefaultInverseUtilityFunction

        issues, ufuns = negmas_domain(self.scenario)
        space = make_os(issues)
        for ufun in ufuns:
            ufun.outcome_space = space
        if not prebuild:
            return space, ufuns, None
        inverses = {}
        for ufun in ufuns:
            inverse = DefaultInverseUtilityFunction(ufun, rational_only=True)
            inverse.init()
            inverses[id(ufun)] = inverse
        return space, ufuns, lambda ufun: inverses[id(ufun)]

    def run(self) -> tuple[dict[str, str] | None, int]:
        """One negotiation: the agreed terms (``None``: none) and the number of rounds."""
        from negmas import SAOMechanism
        from negmas.negotiators.helpers import PolyAspiration
        from negmas.sao import TimeBasedConcedingNegotiator

        space, ufuns, inverter = self._prepared or self._prepare(prebuild=False)
        mechanism = SAOMechanism(outcome_space=space, n_steps=self.rounds,
                                 extra_callbacks=False)
        for ufun, exponent in zip(ufuns, LINEUP, strict=False):
            mechanism.add(TimeBasedConcedingNegotiator(
                offering_curve=PolyAspiration(1.0, exponent), stochastic=False,
                ufun_inverter=inverter), preferences=ufun)
        state = mechanism.run()
        terms = None if state.agreement is None else {
            issue.id: value for issue, value in zip(self.scenario.issues, state.agreement,
                                                     strict=True)}
        return terms, mechanism.current_step


def same_moves(ours: tuple[dict[str, Any] | None, int],
               theirs: tuple[dict[str, str] | None, int]) -> str | None:
    """Why two runs did not do the same work (``None``: same agreement, same rounds)."""
    if ours[0] != theirs[0]:
        return f"different agreements: ours {ours[0]}, NegMAS {theirs[0]}"
    if ours[1] != theirs[1]:
        return f"different lengths: ours {ours[1]} rounds, NegMAS {theirs[1]}"
    return None


__all__: Sequence[str] = ["AspirationCurve", "NegmasSide", "aspiration_agents",
                          "negmas_available", "negmas_domain", "same_moves"]
