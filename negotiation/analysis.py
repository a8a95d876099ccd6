"""The utility space of a scenario: Pareto frontier, bargaining solutions, Shapley values.

Everything is computed over the whole outcome space with numpy.  For spaces up to
``EXACT_LIMIT`` outcomes the answers are exact.  Beyond it, the analysis runs on a seeded
uniform sample of ``SAMPLE_SIZE`` outcomes and says so (``exact=False``): every reported
point is then a real outcome, and with m samples the best sampled value of any measure lies
in the top fraction q of all outcomes with probability 1 − (1 − q)^m (for m = 10^6 and
q = 10^-5: 1 − e^-10).  With three or more parties the frontier costs O(n · frontier)
comparisons instead of O(n log n), so both numbers are ``MANY_PARTIES_LIMIT`` (a few
seconds typically, half a minute if every outcome is on the frontier).

Definitions, with u_i a party's utility and d_i its reservation value (disagreement point):
- Pareto frontier: outcomes no other feasible outcome weakly improves for all and strictly
  for one.  Feasible: keeps every organisation's red lines.
- Zone of possible agreement (ZOPA): feasible outcomes with u_i ≥ d_i for every party.
- Nash (1950): maximises Π (u_i − d_i) over the ZOPA.
- Kalai–Smorodinsky (1975): the ZOPA point maximising min_i (u_i − d_i) / (û_i − d_i), û_i
  the best u_i in the ZOPA (the frontier point on the line from d to the ideal point).
- Egalitarian (Kalai 1977): maximises min_i (u_i − d_i).
- Utilitarian: maximises Σ u_i.

Comparisons and ties.  Utilities are compared on a grid of ``10^-UTILITY_DECIMALS`` (each
utility rounded to 9 decimals first), so float noise of a few ulps never makes one outcome
dominate another: p dominates q when, after that rounding, p is at least as good for every
party and better for one (:mod:`negotiation.pareto` finds the frontier).  The frontier
depends only on the set of points, never on their order.  A solution's measure ties when
it is within a relative ``TIE_TOLERANCE`` of the best; ties are broken by the largest
welfare (Σ u_i, compared the same way), then by the lowest outcome number.
Kalai–Smorodinsky leaves out a party whose best utility in the ZOPA equals its reservation
value (it has nothing to gain: its ratio is undefined); when every party is left out, all
ZOPA points tie and the welfare rule picks one.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from negotiation.cached import cached_property
from negotiation.events import CanonicalObject
from negotiation.frozen import read_only_copy
from negotiation.model import Organization, Preferences, PublicScenario, Scenario
from negotiation.pareto import BoolArray as BoolArray  # re-exported: callers import them
from negotiation.pareto import on_grid
from negotiation.pareto import pareto_mask as pareto_mask
from negotiation.scenario import scenario_digest
from negotiation.utility import (
    FloatArray,
    IndexArray,
    OutcomeSpace,
    UtilityFunction,
    red_line_mask,
    utility_functions,
)

EXACT_LIMIT = 2_000_000
#: Scores of a bargaining solution within this relative distance of the best are tied.
TIE_TOLERANCE = 1e-9
SAMPLE_SIZE = 1_000_000
MANY_PARTIES_LIMIT = 100_000


@dataclass(frozen=True)
class Point:
    """A notable outcome: its number in the space, its terms and every party's utility."""

    name: str
    outcome: int
    terms: dict[str, object]
    utilities: dict[str, float]


#: The bargaining solutions a report names, in this order.
SOLUTIONS = ("Nash", "Kalai–Smorodinsky", "egalitarian", "utilitarian")
#: Outcomes × frontier points up to which every outcome's efficiency is tabled at once.
EFFICIENCY_TABLE_LIMIT = 1_000_000
#: Questions answered one outcome at a time before the table is made.
EFFICIENCY_TABLE_AFTER = 8
#: Outcomes whose rounded utilities are remembered (events record them on every move).
ROUNDED_LIMIT = 65_536


@dataclass
class SpaceAnalysis:
    """The utility space of one scenario, computed once and shared by every check."""

    scenario: Scenario
    seed: int = 0
    #: Analyse only these organisations (a sub-coalition); ``None``: all of them.
    members: tuple[str, ...] | None = None
    space: OutcomeSpace = field(init=False)
    _coalitions: dict[tuple[str, ...], SpaceAnalysis] = field(
        init=False, repr=False, compare=False, default_factory=dict)
    _efficiency_asked: int = field(init=False, repr=False, compare=False, default=0)
    _rounded: dict[int, dict[str, float]] = field(
        init=False, repr=False, compare=False, default_factory=dict)
    #: Whether a header holds :attr:`scenario_json` itself (:meth:`header_scenario`).
    _scenario_json_given: bool = field(init=False, repr=False, compare=False, default=False)

    def __post_init__(self) -> None:
        # Every agent is shown this space (view.space), shared by every run: it holds the
        # public scenario's read-only issues and fixed terms, never the caller's objects.
        public = self.public
        self.space = OutcomeSpace(tuple(public.issues), public.fixed)

    def of_members(self, members: Sequence[str]) -> SpaceAnalysis:
        """The analysis of a sub-coalition of this scenario, made once and shared by every
        run (a per-scenario table, like the rest of the analysis)."""
        key = tuple(members)
        if key not in self._coalitions:
            self._coalitions[key] = SpaceAnalysis(self.scenario, self.seed, members=key)
        return self._coalitions[key]

    @cached_property
    def organizations(self) -> list[Organization]:
        return [org for org in self.scenario.organizations
                if self.members is None or org.id in self.members]

    @property
    def parties(self) -> list[str]:
        return list(self._party_ids)

    @cached_property
    def _party_ids(self) -> tuple[str, ...]:
        return tuple(org.id for org in self.organizations)

    @cached_property
    def public(self) -> PublicScenario:
        """The scenario as every party sees it (built once, shared by runs: read-only)."""
        return read_only_copy(self.scenario.public())

    @cached_property
    def briefs(self) -> dict[str, Preferences]:
        """Each organisation's brief as its own agent is shown it (shared by runs: read-only,
        so that an agent editing its brief edits neither the referee's nor the next run's)."""
        return {org.id: read_only_copy(org.preferences) for org in self.scenario.organizations}

    @cached_property
    def shown_scenario(self) -> Scenario:
        """The scenario as custom checks are shown it (built once, shared by runs:
        read-only, so that a plugin editing it edits neither the caller's scenario nor what
        the next analysis of it finds)."""
        return read_only_copy(self.scenario)

    @cached_property
    def scenario_json(self) -> CanonicalObject:
        # Every header embeds it: its canonical JSON is computed once, not once per run.
        return CanonicalObject(self.scenario.model_dump(mode="json"))

    @cached_property
    def digest(self) -> str:
        """sha256 of the scenario's canonical JSON (computed once per scenario)."""
        scenario = self.scenario_json
        if scenario.canonical.isascii():  # then scenario_digest's (ASCII-escaped) text
            return hashlib.sha256(scenario.encoded).hexdigest()
        return scenario_digest(self.scenario)

    def header_scenario(self) -> CanonicalObject:
        """The scenario as a run's header embeds it, the header's own (whoever edits one
        run's header edits nothing of another's): the first header takes
        :attr:`scenario_json` itself, whose entries nothing reads once its canonical text
        is made (a cold run's analysis makes one header); the next ones copies read back
        from that text."""
        scenario = self.scenario_json
        if self._scenario_json_given:
            return scenario.fresh()
        scenario.encoded  # noqa: B018  (the text, made before the entries are handed out)
        self._scenario_json_given = True
        return scenario

    @property
    def exact(self) -> bool:
        return self.space.size <= (EXACT_LIMIT if len(self.parties) <= 2
                                   else MANY_PARTIES_LIMIT)

    @property
    def sample_size(self) -> int:
        return SAMPLE_SIZE if len(self.parties) <= 2 else MANY_PARTIES_LIMIT

    @cached_property
    def method(self) -> str:
        if self.exact:
            return f"exact over all {self.space.size:,} outcomes"
        return (f"seeded uniform sample of {self.sample_size:,} of {self.space.size:,} "
                f"outcomes: each reported optimum lies in the top {1000 / self.sample_size:.2g}% "
                "of outcomes with probability 1 − e^-10")

    @cached_property
    def outcomes(self) -> IndexArray:
        """The outcome numbers analysed: all of them, or the sample."""
        if self.exact:
            return np.arange(self.space.size)
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(self.space.size, size=self.sample_size, replace=False))

    @cached_property
    def functions(self) -> dict[str, UtilityFunction]:
        """Each organisation's utility function over the shared space."""
        return utility_functions(self.scenario, self.space)

    @cached_property
    def full_utilities(self) -> FloatArray:
        """Utility of every outcome for every party, shape ``(size, parties)``.

        Stored column by column, and each party's utility function then reads its column,
        so a large space holds every utility once (10^7 outcomes: 80 MB per party)."""
        functions = self.functions
        table = np.empty((self.space.size, len(self.parties)), order="F")
        for k, party in enumerate(self.parties):
            table[:, k] = functions[party].vector
        table.flags.writeable = False  # shared by every run of the scenario: read-only
        for k, party in enumerate(self.parties):
            functions[party].vector = table[:, k]  # read-only views of the table
        return table

    def recorded_utilities(self, outcome: int) -> dict[str, float]:
        """Each party's utility of ``outcome`` rounded to 6 places, as events record it;
        remembered per outcome (scenario data, the same for every run, asked on every
        move).  Shared: copy it before handing it on."""
        rounded = self._rounded.get(outcome)
        if rounded is None:
            if len(self._rounded) >= ROUNDED_LIMIT:
                self._rounded.clear()
            rounded = {party: round(value, 6) for party, value in zip(
                self._party_ids, self.full_utilities[outcome].tolist(), strict=True)}
            self._rounded[outcome] = rounded
        return rounded

    @cached_property
    def utilities(self) -> FloatArray:
        """Utilities of the analysed outcomes (all of them when exact)."""
        return self.full_utilities if self.exact else self.full_utilities[self.outcomes]

    @cached_property
    def reservation(self) -> FloatArray:
        return np.array([org.preferences.reservation_value
                         for org in self.organizations])

    @cached_property
    def keeps_red_lines(self) -> dict[str, BoolArray]:
        """Per organisation, which outcomes keep all of its red lines (whole space)."""
        return {org.id: red_line_mask(self.space, org.preferences.red_lines)
                for org in self.organizations}

    @cached_property
    def feasible_full(self) -> BoolArray:
        mask = np.ones(self.space.size, dtype=bool)
        for keeps in self.keeps_red_lines.values():
            mask &= keeps
        return mask

    @cached_property
    def feasible(self) -> BoolArray:
        return self.feasible_full if self.exact else self.feasible_full[self.outcomes]

    @cached_property
    def rational_full(self) -> BoolArray:
        """Over the whole space: outcomes every analysed party values at least at its
        reservation value (red lines aside).  Read-only: every referee of the scenario
        shares it."""
        mask = np.asarray(np.all(self.full_utilities >= self.reservation - 1e-12, axis=1),
                          dtype=bool)
        mask.flags.writeable = False
        return mask

    @cached_property
    def rational(self) -> BoolArray:
        """The zone of possible agreement, as a mask over ``outcomes``."""
        above = np.all(self.utilities >= self.reservation - 1e-12, axis=1)
        return np.asarray(self.feasible & above, dtype=bool)

    @property
    def zopa_size(self) -> int:
        return int(self.rational.sum())

    @cached_property
    def frontier(self) -> IndexArray:
        """Outcome numbers on the Pareto frontier of the feasible outcomes."""
        feasible = self.feasible
        if feasible.all():  # no red line excludes any outcome: no copy of the utilities
            return self.outcomes[pareto_mask(self.utilities)]
        candidates = np.flatnonzero(feasible)
        on_front = pareto_mask(self.utilities[candidates])
        return self.outcomes[candidates[on_front]]

    @cached_property
    def frontier_utilities(self) -> FloatArray:
        return self.full_utilities[self.frontier]

    def blockers(self) -> dict[str, str]:
        """When there is no ZOPA: who blocks it and why, per party."""
        reasons: dict[str, str] = {}
        feasible = self.feasible
        for k, org in enumerate(self.organizations):
            others_ok = feasible & np.all(
                np.delete(self.utilities, k, axis=1) >= np.delete(self.reservation, k) - 1e-12,
                axis=1)
            if not others_ok.any():
                continue
            best = float(self.utilities[others_ok, k].max())
            if best < self.reservation[k]:
                reasons[org.id] = (f"{org.name} gets at most {best:.3f} from any outcome the "
                                   f"others accept, below its reservation value "
                                   f"{self.reservation[k]:.3f}")
        if not feasible.any():
            reasons["red_lines"] = "the organisations' red lines exclude every outcome"
        elif not reasons and self.zopa_size == 0:
            reasons.update(self._joint_blockers())
        return reasons

    def zopa_verdict(self) -> dict[str, Any] | None:
        """What a run records in its outcome when there is no ZOPA ("partnership not
        justified"): the reasons and how they were found; ``None`` when there is one."""
        if self.zopa_size > 0:
            return None
        return {"justified": False, "reasons": list(self.blockers().values()),
                "method": self.method}

    def _joint_blockers(self) -> dict[str, str]:
        """Why there is no ZOPA when no single party is the blocker: the pairs that accept
        no outcome in common, else the plain fact that no outcome suits all at once."""
        accepts = self.feasible[:, None] & (self.utilities >= self.reservation - 1e-12)
        orgs = self.organizations
        reasons = {
            f"{a.id}+{b.id}": f"{a.name} and {b.name} accept no outcome in common: each "
                              "outcome one of them accepts leaves the other below its "
                              "reservation value"
            for (i, a), (j, b) in itertools.combinations(enumerate(orgs), 2)
            if not (accepts[:, i] & accepts[:, j]).any()}
        return reasons or {"all": f"every pair of the {len(orgs)} organisations shares an "
                                  "acceptable outcome, but no outcome clears every "
                                  "reservation value at once"}

    # Every solution below maximises a measure that is monotone in each party's utility,
    # so a maximiser over the ZOPA lies on the frontier: searching the rational frontier
    # points is exact and far cheaper than searching the whole space.

    @cached_property
    def rational_frontier(self) -> IndexArray:
        """Frontier outcomes inside the ZOPA, as outcome numbers."""
        utilities = self.frontier_utilities
        inside = np.logical_and.reduce(utilities >= self.reservation - 1e-12, axis=1)
        return self.frontier[inside]

    @cached_property
    def _solutions(self) -> list[Point | None]:
        """The Nash, Kalai–Smorodinsky, egalitarian and utilitarian points, chosen together
        (one pass over the candidates, not four): each the rational frontier point with the
        best score; ties (within a relative ``TIE_TOLERANCE``) go to the largest welfare,
        then to the lowest outcome number."""
        candidates = self.rational_frontier
        if not candidates.size:
            return [None] * len(SOLUTIONS)
        utilities = self._candidate_utilities
        welfare = utilities.sum(axis=1)
        # Among equal min-ratios the welfare tie-break picks the frontier point on the KS line.
        scores = np.stack((self._nash_products, self._ks_of_grid(utilities),
                           (utilities - self._reservation_on_grid).min(axis=1), welfare))
        tied = np.where(_near_best(scores), welfare, -np.inf)
        # ``candidates`` ascend, so the first of the tied is the lowest outcome number.
        outcomes = candidates[_near_best(tied).argmax(axis=1)].tolist()
        return [Point(name, outcome, dict(self.space.terms(outcome)),
                      {p: round(u, 6) for p, u in zip(self.parties, values, strict=True)})
                for name, outcome, values in zip(
                    SOLUTIONS, outcomes, self.full_utilities[outcomes].tolist(), strict=True)]

    @cached_property
    def _candidate_utilities(self) -> FloatArray:
        """Utilities of the rational frontier points, on the comparison grid."""
        return on_grid(self.full_utilities[self.rational_frontier])

    @cached_property
    def _reservation_on_grid(self) -> FloatArray:
        return on_grid(self.reservation)

    def nash_product_of(self, utilities: FloatArray) -> FloatArray:
        return np.asarray(self._nash_of_grid(on_grid(utilities)), dtype=np.float64)

    def _nash_of_grid(self, utilities: FloatArray) -> FloatArray:
        """:meth:`nash_product_of` of utilities on the grid already (``on_grid`` would leave
        them as they are: a grid value times 10^9 is within far less than ½ of its integer)."""
        gains = np.clip(utilities - self._reservation_on_grid, 0.0, None)
        return np.multiply.reduce(gains, axis=-1)  # type: ignore[no-any-return]

    @cached_property
    def _nash_products(self) -> FloatArray:
        return self._nash_of_grid(self._candidate_utilities)

    @cached_property
    def best_nash_product(self) -> float:
        products = self._nash_products
        return float(products.max()) if products.size else 0.0

    @property
    def nash(self) -> Point | None:
        return self._solutions[0]

    @cached_property
    def ideal(self) -> FloatArray:
        """Best utility each party can get inside the ZOPA."""
        if not self._candidate_utilities.size:
            return self.reservation.copy()
        return np.asarray(self._candidate_utilities.max(axis=0), dtype=np.float64)

    def ks_score(self, utilities: FloatArray) -> FloatArray:
        """min_i (u_i − d_i) / (û_i − d_i) over the parties with something to gain
        (û_i > d_i); 0 for every point when no party has."""
        return self._ks_of_grid(on_grid(utilities))

    def _ks_of_grid(self, utilities: FloatArray) -> FloatArray:
        """:meth:`ks_score` of utilities on the grid already."""
        span = self.ideal - self._reservation_on_grid
        counted = span > 0
        if not counted.any():
            return np.zeros(utilities.shape[:-1])
        ratios = ((utilities - self._reservation_on_grid)[..., counted] / span[counted])
        return np.asarray(ratios.min(axis=-1), dtype=np.float64)

    @property
    def kalai_smorodinsky(self) -> Point | None:
        return self._solutions[1]

    @property
    def egalitarian(self) -> Point | None:
        return self._solutions[2]

    @property
    def utilitarian(self) -> Point | None:
        return self._solutions[3]

    def special_points(self) -> list[Point]:
        return [p for p in self._solutions if p is not None]

    def utilities_of(self, outcome: int) -> FloatArray:
        return np.asarray(self.full_utilities[outcome], dtype=np.float64)

    def efficiency(self, outcome: int) -> tuple[float, int | None]:
        """``outcome``'s distance to the Pareto frontier and a feasible outcome that
        dominates it (the best such by sum; ``None`` if none).  Small spaces answer from a
        table of every outcome, computed once, from the ``EFFICIENCY_TABLE_AFTER``-th
        question on: an analysis asked that often (a tournament's) is asked far more often
        than the table costs, while a single run does not pay for the whole table."""
        self._efficiency_asked += 1
        frontier = self.frontier  # ascending outcome numbers
        at = int(np.searchsorted(frontier, outcome))
        if at < len(frontier) and frontier[at] == outcome:
            return 0.0, None  # a frontier point: at distance 0, and no feasible point dominates it
        if (self._efficiency_asked > EFFICIENCY_TABLE_AFTER
                and self.space.size * len(self.frontier) <= EFFICIENCY_TABLE_LIMIT):
            distances, dominating = self._efficiency_table
            distance, better = float(distances[outcome]), int(dominating[outcome])
        else:
            distances, dominating = self._efficiency_of(np.array([outcome]))
            distance, better = float(distances[0]), int(dominating[0])
        return distance, (None if better < 0 else better)

    @cached_property
    def _efficiency_table(self) -> tuple[FloatArray, IndexArray]:
        return self._efficiency_of(np.arange(self.space.size))

    def _efficiency_of(self, outcomes: IndexArray) -> tuple[FloatArray, IndexArray]:
        """Per outcome: Euclidean distance to the nearest frontier point, and the frontier
        outcome with the largest sum among those that Pareto-dominate it (−1: none)."""
        distances = np.zeros(len(outcomes))
        dominating = np.full(len(outcomes), -1, dtype=np.intp)
        front = self.frontier_utilities
        if not len(front):
            return distances, dominating
        front_sum, front_grid = self._front_tables
        rows = max(1, 2**18 // len(front))  # bounds the (rows, frontier, parties) temporaries
        for start in range(0, len(outcomes), rows):
            points = self.full_utilities[outcomes[start:start + rows]]
            gap = front[None, :, :] - points[:, None, :]
            distances[start:start + rows] = np.sqrt(np.einsum("ofp,ofp->of", gap, gap)
                                                    .min(axis=1))
            # Dominance on the comparison grid, as the frontier itself was found.
            grid_gap = front_grid[None, :, :] - on_grid(points)[:, None, :]
            # ``np.all``/``np.any`` as the ufuncs' reductions, without their Python wrappers.
            better = (np.logical_and.reduce(grid_gap >= 0, axis=2)
                      & np.logical_or.reduce(grid_gap > 0, axis=2))
            best = np.where(better, front_sum[None, :], -np.inf).argmax(axis=1)
            dominating[start:start + rows] = np.where(np.logical_or.reduce(better, axis=1),
                                                      self.frontier[best], -1)
        return distances, dominating

    @cached_property
    def _front_tables(self) -> tuple[FloatArray, FloatArray]:
        """The frontier points' welfare (Σ u_i) and their utilities on the comparison grid."""
        front = self.frontier_utilities
        return front.sum(axis=1), on_grid(front)


def _near_best(score: FloatArray) -> BoolArray:
    """``True`` where ``score`` is within a relative ``TIE_TOLERANCE`` of its maximum (of
    each row's, for several rows)."""
    best = score.max(axis=-1, keepdims=True)
    return np.asarray(score >= best - TIE_TOLERANCE * np.abs(best), dtype=bool)


def shapley_values(players: Sequence[str], value: Mapping[frozenset[str], float]
                   ) -> dict[str, float]:
    """Exact Shapley values (Shapley 1953) of a cooperative game.

    φ_i = Σ_{S ⊆ N∖{i}} |S|! (n − |S| − 1)! / n! · (v(S ∪ {i}) − v(S)),
    with v(S) = 0 for coalitions ``value`` does not list.
    """
    n = len(players)
    result = {}
    for player in players:
        others = [p for p in players if p != player]
        total = 0.0
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for coalition in itertools.combinations(others, size):
                members = frozenset(coalition)
                total += weight * (value.get(members | {player}, 0.0) - value.get(members, 0.0))
        result[player] = total
    return result
