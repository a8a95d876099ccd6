"""Trust maths of a campaign: how distrust raises reservation values, and how an evaluation
of the agreement in force updates trust.

A party that trusts its partners at the table τ (mean, in [0, 1]) expects τ·u from a deal
worth u, so it accepts only if

    τ·u ≥ max(r, τ_sq·u_sq)   ⇒   reservation = min(0.99, max(r, τ_sq·u_sq) / τ)

with r the utility of its BATNA and, when the stage has ``status_quo: true``, u_sq its
utility of the agreement in force and τ_sq its trust in the partners to it: without a new
deal, the old one continues.

An evaluation simulates how the agreement in force performed: each partner delivers
``reliability + N(0, noise)`` (clipped to [0, 1]), each party observes that with its own
``N(0, noise)`` error and updates its trust by exponential smoothing,
``τ ← (1 − learning_rate)·τ + learning_rate·observed``; a party realises its utility of the
agreement times the mean delivery of its partners.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from negotiation.campaign.model import EvaluateStage, InForce

#: No distrust raises a reservation value above this: some deal must stay conceivable.
MAX_RESERVATION = 0.99

#: Truster → partner → trust in [0, 1].
Trust = dict[str, dict[str, float]]


def mean_trust(trust: Mapping[str, Mapping[str, float]], party: str, partners: list[str]
               ) -> float:
    """``party``'s mean trust in the others among ``partners`` (1 when it is alone)."""
    others = [trust[party][p] for p in partners if p != party]
    return float(np.mean(others)) if others else 1.0


def reservation_values(trust: Mapping[str, Mapping[str, float]], parties: list[str],
                       batna: Mapping[str, float], status_quo: InForce | None
                       ) -> dict[str, float]:
    """Each party's reservation value at this table (see the module docstring);
    ``status_quo`` is the agreement in force when the stage keeps it as the fallback."""
    result = {}
    for party in parties:
        fallback = batna[party]
        if status_quo is not None and party in status_quo.parties:
            fallback = max(fallback, mean_trust(trust, party, status_quo.parties)
                           * status_quo.utilities[party])
        result[party] = round(min(MAX_RESERVATION,
                                  fallback / mean_trust(trust, party, parties)), 4)
    return result


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation drew and what it did to trust."""

    delivered: dict[str, float]
    #: Observer → partner → observed delivery.
    observed: dict[str, dict[str, float]]
    #: Trust after the evaluation (every pair, not only the agreement's parties).
    trust: Trust
    realised: dict[str, float]


def evaluate(stage: EvaluateStage, in_force: InForce, trust: Mapping[str, Mapping[str, float]],
             rng: np.random.Generator) -> Evaluation:
    """Draw deliveries and observations for the parties to ``in_force`` and update their
    trust in each other (see the module docstring); draws come from ``rng`` in a fixed
    order, so a seed gives the same evaluation."""
    parties = in_force.parties
    delivered = {p: clip(stage.reliability.get(p, stage.default_reliability)
                         + rng.normal(0.0, stage.noise)) for p in parties}
    updated = {q: dict(row) for q, row in trust.items()}
    observed: dict[str, dict[str, float]] = {}
    for q in parties:
        observed[q] = {}
        for p in parties:
            if p == q:
                continue
            seen = clip(delivered[p] + rng.normal(0.0, stage.noise))
            observed[q][p] = seen
            updated[q][p] = round((1 - stage.learning_rate) * updated[q][p]
                                  + stage.learning_rate * seen, 6)
    realised = {q: round(in_force.utilities[q] * float(np.mean(
        [delivered[p] for p in parties if p != q])), 6) for q in parties}
    return Evaluation(delivered, observed, updated, realised)


def clip(value: float) -> float:
    """``value`` in [0, 1], rounded to 6 places."""
    return round(min(max(float(value), 0.0), 1.0), 6)


def rounded(trust: Mapping[str, Mapping[str, float]], parties: list[str]) -> Trust:
    """Trust among ``parties`` only, rounded to 6 places (as transcripts record it)."""
    return {q: {p: round(trust[q][p], 6) for p in parties if p != q} for q in parties}
