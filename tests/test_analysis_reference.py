"""The analysis against an independent brute-force reference in exact arithmetic.

The reference enumerates every outcome with ``Fraction`` utilities (no float noise) and
applies the documented rules: dominance, the ZOPA, each solution's measure, ties broken by
the largest welfare and then the lowest outcome number, Kalai–Smorodinsky leaving out a
party whose best ZOPA utility equals its reservation value.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation.analysis import SpaceAnalysis, pareto_mask
from negotiation.scenario import parse_scenario

Utilities = tuple[Fraction, ...]


def random_case(rng: random.Random, party_counts: Sequence[int] = (2, 2, 3)
                ) -> tuple[str, list[Utilities], list[Fraction]]:
    """A small random scenario (YAML), each outcome's exact utilities, the reservations."""
    parties = [f"p{k}" for k in range(rng.choice(party_counts))]
    issues = [(f"i{k}", [f"o{j}" for j in range(rng.randint(2, 4))])
              for k in range(rng.randint(1, 3))]
    lines = ["id: random-case", "title: Random case", "issues:"]
    lines += [f"  - {{id: {issue}, kind: discrete, name: {issue}, options: [{', '.join(opts)}]}}"
              for issue, opts in issues]
    lines.append("organizations:")
    exact_weights, exact_scores, reservations = [], [], []
    for party in parties:
        # Weights in tenths summing to 1; scores and reservations on a coarse grid, so ties
        # are common (the interesting cases) and float arithmetic is inexact.
        cuts = sorted(rng.randint(0, 10) for _ in range(len(issues) - 1))
        tenths = [b - a for a, b in itertools.pairwise([0, *cuts, 10])]
        weights = [Fraction(t, 10) for t in tenths]
        scores = [[Fraction(rng.randint(0, 10), 10) for _ in opts] for _, opts in issues]
        reservation = Fraction(rng.randint(0, 8), 20)
        exact_weights.append(weights)
        exact_scores.append(scores)
        reservations.append(reservation)
        weight_text = ", ".join(f"{issue}: {float(w)}" for (issue, _), w in
                                zip(issues, weights, strict=True))
        score_texts = [", ".join(f"{o}: {float(s)}" for o, s in zip(opts, row, strict=True))
                       for (_, opts), row in zip(issues, scores, strict=True)]
        value_text = ", ".join(f"{issue}: {{scores: {{{text}}}}}"
                               for (issue, _), text in zip(issues, score_texts, strict=True))
        lines += [f"  - id: {party}", f"    name: {party.upper()}", "    preferences:",
                  f"      reservation_value: {float(reservation)}",
                  f"      weights: {{{weight_text}}}", f"      values: {{{value_text}}}"]
    outcomes = []
    # Outcome numbers: mixed radix, issue 0 most significant (as OutcomeSpace numbers them).
    for choice in itertools.product(*(range(len(opts)) for _, opts in issues)):
        outcomes.append(tuple(
            sum((w * exact_scores[p][k][c] for k, (w, c) in
                 enumerate(zip(exact_weights[p], choice, strict=True))), Fraction(0))
            for p in range(len(parties))))
    return "\n".join(lines) + "\n", outcomes, reservations


def dominates(a: Utilities, b: Utilities) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and a != b


def reference_frontier(points: Sequence[Utilities]) -> set[int]:
    return {i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)}


def reference_point(points: Sequence[Utilities], zopa: Sequence[int],
                    score: Callable[[Utilities], Fraction]) -> int | None:
    """Best score, then largest welfare, then lowest outcome number."""
    if not zopa:
        return None
    return max(zopa, key=lambda o: (score(points[o]), sum(points[o]), -o))


def reference_solutions(points: Sequence[Utilities], reservations: Sequence[Fraction]
                        ) -> dict[str, int | None]:
    zopa = [o for o, u in enumerate(points)
            if all(x >= d for x, d in zip(u, reservations, strict=True))]
    gains = [lambda u, k=k: u[k] - reservations[k] for k in range(len(reservations))]
    ideal = [max((points[o][k] for o in zopa), default=reservations[k])
             for k in range(len(reservations))]
    counted = [k for k in range(len(reservations)) if ideal[k] > reservations[k]]

    def ks(u: Utilities) -> Fraction:
        if not counted:
            return Fraction(0)
        return min(gains[k](u) / (ideal[k] - reservations[k]) for k in counted)

    def nash(u: Utilities) -> Fraction:
        product = Fraction(1)
        for gain in gains:
            product *= gain(u)
        return product

    return {"Nash": reference_point(points, zopa, nash),
            "Kalai–Smorodinsky": reference_point(points, zopa, ks),
            "egalitarian": reference_point(points, zopa, lambda u: min(g(u) for g in gains)),
            "utilitarian": reference_point(points, zopa, lambda u: sum(u, Fraction(0)))}


def test_frontier_and_solutions_match_an_exact_brute_force_reference() -> None:
    rng = random.Random(20261125)
    for _ in range(400):
        text, points, reservations = random_case(rng)
        analysis = SpaceAnalysis(parse_scenario(text))
        frontier = reference_frontier(points)
        assert set(analysis.frontier.tolist()) == frontier, text
        # The referee's dominance test agrees: exactly the frontier is undominated.
        assert {o for o in range(len(points))
                if analysis.efficiency(o)[1] is None} == frontier, text
        expected = reference_solutions(points, reservations)
        got = {name: None for name in expected} | {
            p.name: p.outcome for p in analysis.special_points()}
        assert got == expected, text


TIED_NASH = """
id: tied-nash
title: Every ZOPA outcome has a Nash product of zero
issues:
  - {id: deal, kind: discrete, name: Deal, options: [a, b, c]}
organizations:
  - id: x
    name: X
    preferences:
      reservation_value: 0.5
      weights: {deal: 1}
      values: {deal: {scores: {a: 0.9, b: 0.5, c: 0.5}}}
  - id: y
    name: Y
    preferences:
      reservation_value: 0.1
      weights: {deal: 1}
      values: {deal: {scores: {a: 0.1, b: 0.9, c: 0.9}}}
"""


def test_nash_ties_go_to_the_largest_welfare_then_the_lowest_outcome() -> None:
    # Every product is 0: 'a' gives y nothing, 'b' and 'c' give x nothing.  'a' (the lowest
    # index, the old pick) has welfare 1.0; 'b' and 'c' 1.4: 'b' is the first of those.
    analysis = SpaceAnalysis(parse_scenario(TIED_NASH))
    assert analysis.nash is not None and analysis.nash.terms == {"deal": "b"}
    assert {p.terms["deal"] for p in analysis.special_points()} == {"b"}


KS_IGNORES = """
id: ks-ignores
title: A party with nothing to gain
issues:
  - {id: deal, kind: discrete, name: Deal, options: [a, b, c]}
organizations:
  - id: x
    name: X
    preferences:
      reservation_value: 0
      weights: {deal: 1}
      values: {deal: {scores: {a: 1.0, b: 0.45, c: 0.0}}}
  - id: y
    name: Y
    preferences:
      reservation_value: 0
      weights: {deal: 1}
      values: {deal: {scores: {a: 0.0, b: 0.5, c: 1.0}}}
  - id: z
    name: Z
    preferences:
      reservation_value: 0.4
      weights: {deal: 1}
      values: {deal: {scores: {a: 0.4, b: 0.4, c: 0.4}}}
"""


def test_kalai_smorodinsky_ignores_a_party_whose_best_equals_its_reservation() -> None:
    # z gains nothing anywhere; the old 1e-12 clamp made its ratio 0 everywhere, so KS fell
    # back to the utilitarian point.  Sums: a 1.4, b 1.35, c 1.4 → utilitarian a (first of
    # the tie); KS over x and y: min(u_x, u_y) = 0, 0.45, 0 → b.
    analysis = SpaceAnalysis(parse_scenario(KS_IGNORES))
    assert analysis.utilitarian is not None and analysis.utilitarian.terms == {"deal": "a"}
    assert analysis.kalai_smorodinsky is not None
    assert analysis.kalai_smorodinsky.terms == {"deal": "b"}


def noisy(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each value moved by up to two ulps: what float arithmetic does to equal utilities."""
    steps = rng.integers(-2, 3, size=points.shape)
    result = points.copy()
    for _ in range(2):
        result = np.where(steps > 0, np.nextafter(result, np.inf), result)
        result = np.where(steps < 0, np.nextafter(result, -np.inf), result)
        steps = steps - np.sign(steps)
    return result


@settings(max_examples=200, deadline=None)
@given(parties=st.integers(2, 4), rows=st.integers(1, 60), seed=st.integers(0, 2**32 - 1))
def test_the_pareto_set_does_not_depend_on_the_order_of_the_points(
        parties: int, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    exact = rng.integers(0, 5, size=(rows, parties)) / 4 * 0.3  # 0.3 × quarters: inexact
    points = noisy(exact, rng)
    mask = pareto_mask(points)
    order = rng.permutation(rows)
    assert np.array_equal(pareto_mask(points[order]), mask[order])
    assert np.array_equal(pareto_mask(points[::-1]), mask[::-1])
    # And it is the exact answer: ulp noise does not make a point dominate its equal.
    exact_points = [tuple(Fraction(int(v), 4) for v in row)
                    for row in np.rint(exact / 0.3 * 4).astype(int)]
    assert set(np.flatnonzero(mask).tolist()) == reference_frontier(exact_points)


@pytest.mark.parametrize("parties", [2, 3])
def test_points_within_the_tolerance_count_as_equal(parties: int) -> None:
    base = np.full((1, parties), 0.3)
    nudged = base.copy()
    nudged[0, 0] += 4e-11  # below the 1e-9 grid: equal, so neither dominates
    assert pareto_mask(np.vstack([base, nudged])).tolist() == [True, True]
    nudged[0, 0] += 2e-9  # above it: a real improvement
    assert pareto_mask(np.vstack([base, nudged])).tolist() == [False, True]
