"""Classic rule-based negotiators, deterministic given the seed.

All of them bid from the agent's own view of the outcome space: outcomes sorted by the
agent's utility, restricted to those that keep its own red lines and beat its reservation
value.  When several outcomes meet a target utility, the one most similar to the other
parties' latest offers is chosen (a similarity heuristic in the spirit of the trade-off
tactic of Faratin, Sierra & Jennings 2002, needing no model of their preferences), so that
concessions move towards the other side rather than sideways.
"""

from __future__ import annotations

import bisect
import functools
import random
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from agents.base import View
from negotiation.cached import cached_property
from negotiation.model import (
    Accept,
    Action,
    Offer,
    Preferences,
    Propose,
    RedLine,
    SplitIssue,
    WalkAway,
)
from negotiation.terms import describe_outcome_change
from negotiation.utility import (
    FloatArray,
    IndexArray,
    UtilityFunction,
    discount_factor,
    red_line_mask,
    stable_argsort,
)

#: How far above the target an outcome may lie and still count as meeting it.
TARGET_WINDOW = 0.02
#: At most this many candidate outcomes are compared with the other parties' offers.
MAX_CANDIDATES = 256
#: Up to this many outcomes, similarity to an offer is computed once for the whole space;
#: beyond, only for the candidates (so that no negotiation pays in proportion to the space).
FULL_SIMILARITY_LIMIT = 4_096
#: Up to this many ranked outcomes, their utilities are also kept as a tuple, the quickest to
#: bisect (60 ns at 10^2, twice as quick as beyond); a longer ranking is bisected in place
#: through a memoryview of its array (~0.2-0.3 µs, no copy): a list of 10^6 floats takes
#: 32 MB and ~20 ms to make, and every full garbage collection walks it (~7 ms).
TUPLE_LIMIT = 4_096

_VALIDATE_PROPOSE = Propose.__pydantic_validator__.validate_python


def proposal(fields: dict[str, object]) -> Propose:
    """``Propose(**fields)``, validated alike by pydantic's validator of the model called
    directly: the model's ``__init__`` wraps the same validation in Python frames that cost
    half as much again (a rule-based agent makes a proposal on nearly every turn)."""
    return cast(Propose, _VALIDATE_PROPOSE(fields))


_VALIDATE_ACCEPT = Accept.__pydantic_validator__.validate_python


def acceptance(rationale: str) -> Accept:
    """``Accept(rationale=rationale)``, validated as :func:`proposal` validates (in a
    negotiation of three or more, every other move may be an acceptance)."""
    return cast(Accept, _VALIDATE_ACCEPT({"rationale": rationale}))


NO_DEAL = "No terms that keep our red lines are better for us than our alternative to a deal."
LATE = ("Discounted to now, no terms are worth more to us than our alternative to a deal "
        "any longer.")


class Bidder:
    """One agent's ranked outcomes: the search structure behind every rule-based strategy."""

    def __init__(self, view: View) -> None:
        # Nothing here is proportional to the outcome space: the ranking is shared by every
        # negotiation over the same utility function, and copied only if this one learns
        # more (``forbid``).
        ranking = _ranking(view)
        self.space = view.space
        self.keeps = ranking.keeps
        self.reservation_value = view.preferences.reservation_value
        self.ascending: IndexArray = ranking.ascending
        self.ascending_utility: FloatArray = ranking.ascending_utility
        #: The same utilities, to bisect (:func:`_searchable`) for the one value looked up
        #: per turn.
        self._sorted_utility: Sequence[float] = ranking.searchable
        self.utility = view.utility.vector
        # Offers seen before, by identity (the offer is kept so its id cannot be reused).
        self._outcomes: dict[int, tuple[Offer, int]] = {}
        self._last_choice: tuple[tuple[int, ...], int] | None = None
        self._similarity: dict[int, FloatArray] = {}

    def forbid(self, red_lines: Sequence[RedLine], outcome: int | None) -> None:
        """Stop offering what the referee blocked: outcomes crossing ``red_lines`` it
        disclosed, and the blocked outcome itself."""
        self.keeps = self.keeps & red_line_mask(self.space, red_lines)  # a private copy
        if outcome is not None:
            self.keeps[outcome] = False
        mask = self.keeps[self.ascending]
        self.ascending = self.ascending[mask]
        self.ascending_utility = self.ascending_utility[mask]
        self._sorted_utility = _searchable(self.ascending_utility)
        self._last_choice = None

    @property
    def viable(self) -> bool:
        return len(self.ascending) > 0

    @property
    def best_utility(self) -> float:
        return float(self._sorted_utility[-1])

    @property
    def worst_utility(self) -> float:
        return float(self._sorted_utility[0])

    def offer(self, outcome: int) -> Offer:
        return self.space.offer(outcome)

    def outcome_of(self, offer: Offer) -> int:
        known = self._outcomes.get(id(offer))
        if known is not None and known[0] is offer:
            return known[1]
        outcome = self.space.index_of_offer(offer)
        self._outcomes[id(offer)] = (offer, outcome)
        return outcome

    def _similarity_to(self, reference: int) -> FloatArray:
        """Similarity of every outcome to ``reference`` (an outer sum, like utilities)."""
        cached = self._similarity.get(reference)
        if cached is None:
            if len(self._similarity) >= 64:
                self._similarity.clear()
            ref = self.space.value_indices(reference)
            columns = [table[:, ref[k]] for k, table in enumerate(self.space.similarity)]
            cached = np.asarray(functools.reduce(np.add.outer, columns).ravel(),
                                dtype=np.float64)
            self._similarity[reference] = cached
        return cached

    def _candidate_similarity(self, rows: IndexArray, reference: int) -> FloatArray:
        """Similarity of the outcomes whose value indices are ``rows`` to ``reference``."""
        ref = self.space.value_indices(reference)
        tables = self.space.similarity
        score = tables[0][rows[:, 0], ref[0]]
        for k in range(1, len(tables)):
            score = score + tables[k][rows[:, k], ref[k]]
        return np.asarray(score, dtype=np.float64)

    def value(self, offer: Offer) -> float:
        """Own utility of an offer; -1 if it breaks one of our red lines."""
        outcome = self.outcome_of(offer)
        return float(self.utility[outcome]) if self.keeps[outcome] else -1.0

    def lowest_at_least(self, target: float) -> int:
        """The acceptable outcome worth least among those worth at least ``target`` (the
        best one if none is)."""
        start = bisect.bisect_left(self._sorted_utility, target)
        return int(self.ascending[min(start, len(self.ascending) - 1)])

    def outcome_for(self, target: float, references: Sequence[Offer] = ()) -> int:
        """The acceptable outcome just above ``target`` most similar to ``references``."""
        sorted_utility = self._sorted_utility
        start = bisect.bisect_left(sorted_utility, target - 1e-12)
        if start >= len(sorted_utility):
            return int(self.ascending[-1])
        stop = bisect.bisect_right(sorted_utility, sorted_utility[start] + TARGET_WINDOW)
        stop = min(stop, start + MAX_CANDIDATES)
        if not references or stop - start == 1:
            return int(self.ascending[start])
        key = (start, stop, *(self.outcome_of(r) for r in references))
        if self._last_choice is not None and self._last_choice[0] == key:
            return self._last_choice[1]
        candidates = self.ascending[start:stop]
        if self.space.size <= FULL_SIMILARITY_LIMIT:
            first, *others = key[2:]
            score = self._similarity_to(first)[candidates]
            for reference in others:
                score = score + self._similarity_to(reference)[candidates]
        else:
            # Only the candidates, with the same additions in the same order as the
            # whole-space table (so the choice does not depend on the space's size).
            rows = self.space.value_indices(candidates)
            score = self._candidate_similarity(rows, key[2])
            for reference in key[3:]:
                score = score + self._candidate_similarity(rows, reference)
        choice = int(candidates[int(np.argmax(score))])
        self._last_choice = (key, choice)
        return choice


@dataclass(frozen=True)
class Ranking:
    """One party's acceptable outcomes, worst first (read-only, shared across runs)."""

    preferences: Preferences
    keeps: npt.NDArray[np.bool_]
    ascending: IndexArray
    ascending_utility: FloatArray

    @cached_property
    def searchable(self) -> Sequence[float]:
        """The utilities a Bidder bisects (:func:`_searchable`), made once per ranking."""
        return _searchable(self.ascending_utility)


#: Per utility function (a per-scenario object): its ranking.  Weak keys, so that a
#: ranking lives exactly as long as the scenario analysis that owns the utility function.
_RANKINGS: weakref.WeakKeyDictionary[UtilityFunction, Ranking] = weakref.WeakKeyDictionary()


def _searchable(utilities: FloatArray) -> Sequence[float]:
    """Ranked utilities as ``bisect`` reads them quickest: a tuple up to ``TUPLE_LIMIT``
    outcomes (read-only, like the ranking it is shared with), beyond a read-only memoryview
    of the array itself (the same floats, read in place: bisect on the array would make a
    numpy scalar per comparison)."""
    if len(utilities) <= TUPLE_LIMIT:
        return tuple(utilities.tolist())
    return cast(Sequence[float], np.ascontiguousarray(utilities).data.toreadonly())


def _ranking(view: View) -> Ranking:
    """Outcomes that keep the party's red lines and beat its reservation value, worst
    first, with their utilities.  Shared by every negotiation over the same utility
    function (read-only: a Bidder that learns more makes new arrays)."""
    cached = _RANKINGS.get(view.utility)
    if cached is not None and cached.preferences is view.preferences:
        return cached
    utility = view.utility.vector
    keeps = red_line_mask(view.space, view.preferences.red_lines)
    acceptable = keeps & (utility >= view.preferences.reservation_value)
    if acceptable.all():  # every outcome (no red line, none below the reservation value)
        ascending = stable_argsort(utility)
    else:
        outcomes = np.flatnonzero(acceptable)
        ascending = outcomes[stable_argsort(utility[outcomes])]
    ascending_utility = utility[ascending]
    for array in (keeps, ascending, ascending_utility):
        array.flags.writeable = False
    ranking = Ranking(view.preferences, keeps, ascending, ascending_utility)
    _RANKINGS[view.utility] = ranking
    return ranking


class RuleBasedAgent:
    """Shared turn logic: prepare the bidder once, walk away if no deal can help us."""

    label = "rule-based"

    def __init__(self) -> None:
        self._bidder: Bidder | None = None
        #: The outcome we offered last: what the referee blocked, when it gives feedback.
        self._last_outcome: int | None = None
        #: Our last proposal when it repeated the offer before it: a further repeat is the
        #: same move in the same words (a frozen model, so it is handed over again).
        self._repeat: Propose | None = None
        #: Our acceptances by their words: accepting again in the same words is the same
        #: move, handed over again (frozen).
        self._acceptances: dict[str, Accept] = {}
        self._left_seen: tuple[str, ...] = ()

    async def act(self, view: View) -> Action:
        bidder = self._bidder
        if bidder is None:
            bidder = self._bidder = Bidder(view)
        if view.departed != self._left_seen:
            # Whoever left gets and pays nothing: offer only terms that say so.
            self._left_seen = view.departed
            bidder.forbid([RedLine(issue=issue.id, party=party, op="==", value=0)
                           for issue in view.scenario.issues
                           if isinstance(issue, SplitIssue)
                           for party in view.departed if party in issue.parties],
                          None)
        if view.feedback is not None:
            bidder.forbid(view.feedback.red_lines, self._last_outcome)
        if not bidder.viable:
            return WalkAway(rationale=NO_DEAL)
        if bidder.best_utility * answered_factor(view) < bidder.reservation_value:
            return WalkAway(rationale=LATE)  # discounted, no offer would be worth making
        return self.decide(view, bidder)

    def decide(self, view: View, bidder: Bidder) -> Action:
        raise NotImplementedError

    def accept(self, rationale: str) -> Accept:
        """Accept the standing offer, saying why."""
        made = self._acceptances.get(rationale)
        if made is None:
            made = self._acceptances[rationale] = acceptance(rationale)
        return made

    @staticmethod
    def beats_reservation(view: View, bidder: Bidder, value: float) -> bool:
        """Whether an agreement worth ``value`` reached now beats our alternative to a deal,
        discounted as the referee judges it (u · d^t; d = 1 without discounting)."""
        return value * view.discount_factor >= bidder.reservation_value

    @classmethod
    def references(cls, view: View) -> list[Offer]:
        """What our next offer should resemble: the others' latest offers or, before anyone
        has made one in a campaign's later stage, the agreement in force (anchoring on the
        status quo keeps a renegotiation close to what the parties already live with)."""
        offers = cls.latest_offers_of_others(view)
        if not offers and view.memory is not None and view.memory.status_quo is not None:
            return [view.memory.status_quo]
        return offers

    @staticmethod
    def latest_offers_of_others(view: View) -> list[Offer]:
        """Each other party's most recent offer, newest first."""
        seen: dict[str, Offer] = {}
        for move in reversed(view.history):
            if move.party != view.party and move.party not in seen and \
                    isinstance(move.action, Propose):
                seen[move.party] = move.action.offer
                if len(seen) == len(view.state.parties) - 1:
                    break
        return list(seen.values())

    def propose(self, view: View, outcome: int, bidder: Bidder) -> Propose:
        factor = answered_factor(view)
        if float(bidder.utility[outcome]) * factor < bidder.reservation_value:
            # Discounting: an offer accepted by the others in turn must still beat our
            # alternative when the agreement is made.
            outcome = bidder.outcome_for(bidder.reservation_value / factor,
                                         self.references(view))
        repeat = self._repeat
        if outcome == self._last_outcome and repeat is not None \
                and repeat.offer is bidder.offer(outcome):
            return repeat
        change = describe_outcome_change(bidder.space, self._last_outcome, outcome)
        made = proposal({"offer": bidder.offer(outcome), "rationale": f"{self.label}: {change}."})
        self._repeat = made if outcome == self._last_outcome else None
        self._last_outcome = outcome
        return made


def answered_factor(view: View) -> float:
    """Our discount factor when every other party has answered an offer we make now (the
    moment it could become an agreement): d^(t + (n − 1) / (n · rounds))."""
    if view.preferences.discount == 1.0:
        return 1.0  # no discounting: asked twice a turn, answered without the arithmetic
    state = view.state
    parties = len(state.parties)
    later = view.time + (parties - 1) / (parties * state.max_rounds)
    return discount_factor(view.preferences.discount, later)


@dataclass(frozen=True)
class TimeDependentCurve:
    """Faratin, Sierra & Jennings (1998), polynomial time-dependent tactic.

    α(t) = κ + (1 − κ) · t^(1/β),   target(t) = u_max − α(t) · (u_max − u_min)

    with t the share of the deadline used, κ = 0, u_min the reservation value (or the least
    acceptable outcome).  β < 1 is Boulware (concede late), β = 1 linear, β > 1 Conceder.
    """

    beta: float

    def target(self, t: float, best: float, worst: float) -> float:
        alpha = float(min(max(t, 0.0), 1.0) ** (1.0 / self.beta))
        return best - alpha * (best - worst)


class TimeDependent(RuleBasedAgent):
    """Concede along a fixed time curve; accept what beats our next offer (AC_next)."""

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError("beta must be positive (β < 1 Boulware, β > 1 Conceder)")
        self.curve = TimeDependentCurve(beta)
        kind = "Boulware" if beta < 1 else "Conceder" if beta > 1 else "linear"
        self.label = f"{kind} concession (β={beta:g})"

    def decide(self, view: View, bidder: Bidder) -> Action:
        target = self.curve.target(view.time, bidder.best_utility, bidder.worst_utility)
        outcome = bidder.outcome_for(target, self.references(view))
        standing = view.standing_offer
        if (standing is not None and "accept" in view.legal
                and bidder.value(standing) >= float(bidder.utility[outcome])
                and self.beats_reservation(view, bidder, bidder.value(standing))):
            return self.accept("The standing offer is at least as good for us as the offer "
                               "we would make next (AC_next).")
        return self.propose(view, outcome, bidder)


class TitForTat(RuleBasedAgent):
    """Relative tit-for-tat in utility space (Faratin, Sierra & Jennings 1998, §4.3).

    Reciprocate the other side's last concession in proportion:
    target_{n+1} = target_n · u(o_{n−1}) / u(o_n), where o_n is the latest offer we received
    and u our own utility; clamped to [u_min, u_max].  An offer worth at least our target
    is accepted.
    """

    label = "tit-for-tat"

    def __init__(self) -> None:
        super().__init__()
        self._target: float | None = None
        self._received: list[float] = []

    def decide(self, view: View, bidder: Bidder) -> Action:
        if self._target is None:
            self._target = bidder.best_utility
        standing = view.standing_offer
        if standing is not None and view.state.standing_proposer != view.party:
            value = bidder.value(standing)
            if (value >= self._target and "accept" in view.legal
                    and self.beats_reservation(view, bidder, value)):
                return self.accept("The standing offer meets what we asked for in return "
                                   "for the concessions made so far.")
            self._received.append(max(value, 1e-9))
            if len(self._received) >= 2:
                ratio = self._received[-2] / self._received[-1]
                self._target = min(max(self._target * ratio, bidder.worst_utility),
                                   bidder.best_utility)
        return self.propose(view, bidder.outcome_for(self._target, self.references(view)),
                            bidder)


class Hardliner(RuleBasedAgent):
    """Always demand our best outcome; accept only an offer worth as much."""

    label = "hardliner"

    def decide(self, view: View, bidder: Bidder) -> Action:
        standing = view.standing_offer
        if (standing is not None and "accept" in view.legal
                and bidder.value(standing) >= bidder.best_utility - 1e-12
                and self.beats_reservation(view, bidder, bidder.value(standing))):
            return self.accept("The standing offer gives us everything we asked for.")
        best = int(bidder.ascending[-1])
        return self.propose(view, best, bidder)


class RandomAgent(RuleBasedAgent):
    """A seeded random baseline: random acceptable offers; accepts acceptable offers
    with probability ``p_accept``."""

    label = "random"

    def __init__(self, seed: int = 0, p_accept: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p_accept <= 1.0:
            raise ValueError("p_accept must lie in [0, 1]")
        self.rng = random.Random(seed)
        self.p_accept = p_accept

    def decide(self, view: View, bidder: Bidder) -> Action:
        standing = view.standing_offer
        if (standing is not None and "accept" in view.legal
                and self.beats_reservation(view, bidder, bidder.value(standing))
                and self.rng.random() < self.p_accept):
            return self.accept("The standing offer beats our alternative to a deal.")
        outcome = int(bidder.ascending[self.rng.randrange(len(bidder.ascending))])
        return self.propose(view, outcome, bidder)
