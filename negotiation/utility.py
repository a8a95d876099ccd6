"""Outcome spaces and linear-additive utilities, vectorised with numpy.

An outcome is one value per issue.  ``OutcomeSpace`` enumerates every outcome of a scenario
as a row of per-issue value indices (mixed radix, issue 0 most significant), so a party's
utility over the whole space is one weighted sum of table look-ups:

    U_p(o) = Σ_i w_{p,i} · v_{p,i}(o_i),   with Σ_i w_{p,i} = 1 and v_{p,i} ∈ [0, 1],

which keeps every utility in [0, 1] (Keeney & Raiffa 1976, additive value functions).
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from negotiation.cached import cached_property
from negotiation.frozen import ReadOnlyDict
from negotiation.model import (
    DiscreteIssue,
    Issue,
    NumericIssue,
    Offer,
    Preferences,
    RedLine,
    Scenario,
    SplitIssue,
    TermValue,
    ValueFunction,
)
from negotiation.terms import format_value

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]


MAX_SHARED_OFFERS = 65_536


class InvalidOfferError(ValueError):
    """An offer that does not name exactly one allowed value for every issue."""


def _hashable(value: TermValue) -> object:
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def issue_values(issue: Issue) -> list[TermValue]:
    """Every allowed value of one issue, in a fixed order."""
    if isinstance(issue, DiscreteIssue):
        return list(issue.options)
    if isinstance(issue, NumericIssue):
        count = round((issue.max - issue.min) / issue.step) + 1
        grid = [round(issue.min + k * issue.step, 10) for k in range(count)]
        return [int(x) if float(x).is_integer() else x for x in grid]
    slots = 100 // issue.step
    parties = issue.parties
    values: list[TermValue] = []
    # Compositions of `slots` into len(parties) parts, first party's share ascending.
    for bars in itertools.combinations(range(slots + len(parties) - 1), len(parties) - 1):
        parts, previous = [], -1
        for bar in (*bars, slots + len(parties) - 1):
            parts.append(bar - previous - 1)
            previous = bar
        values.append({p: n * issue.step for p, n in zip(parties, parts, strict=True)})
    return values


def settled_value(issue: Issue, value: TermValue) -> tuple[TermValue]:
    """The one allowed value of an issue settled at ``value`` (in its canonical form)."""
    wanted = _hashable(value)
    for candidate in issue_values(issue):
        if _hashable(candidate) == wanted:
            return (candidate,)
    raise InvalidOfferError(f"{value!r} is not an allowed value of issue '{issue.id}'")


def allowed_values_text(issue: Issue) -> str:
    """What an issue accepts, in words a person or a model can act on."""
    if isinstance(issue, DiscreteIssue):
        return "one of " + ", ".join(issue.options)
    if isinstance(issue, NumericIssue):
        return f"a number from {issue.min:g} to {issue.max:g} in steps of {issue.step:g}"
    return (f"a share for each of {', '.join(issue.parties)}, each a whole multiple of "
            f"{issue.step}, summing to 100")


@dataclass(frozen=True)
class OutcomeSpace:
    """All outcomes of a scenario's issues, indexed ``0 … size-1``."""

    issues: tuple[Issue, ...]
    #: Issues settled in advance: each has only its fixed value in this space.
    fixed: Mapping[str, TermValue] = field(default_factory=dict)
    values: tuple[tuple[TermValue, ...], ...] = field(init=False)
    _lookup: tuple[dict[object, int], ...] = field(init=False, repr=False)
    #: Offers built so far, shared by every negotiation over this space (offers are
    #: immutable); bounded so that huge spaces do not grow it without limit.
    _offers: dict[int, Offer] = field(init=False, repr=False, compare=False,
                                      default_factory=dict)
    #: id of each of those offers → its outcome number (the offers keep the ids taken).
    _numbers: dict[int, int] = field(init=False, repr=False, compare=False,
                                     default_factory=dict)
    #: What changed from one outcome to another, in words, by ``before * size + after``
    #: (:func:`negotiation.terms.describe_outcome_change`): scenario data, bounded.
    _change_texts: dict[int, str] = field(init=False, repr=False, compare=False,
                                          default_factory=dict)

    def __post_init__(self) -> None:
        # Split values are read-only: every party and run reads them (view.space.values).
        values = tuple(tuple(ReadOnlyDict(value) if isinstance(value, dict) else value
                             for value in (settled_value(issue, self.fixed[issue.id])
                                           if issue.id in self.fixed else issue_values(issue)))
                       for issue in self.issues)
        object.__setattr__(self, "values", values)
        object.__setattr__(
            self,
            "_lookup",
            tuple({_hashable(v): k for k, v in enumerate(vals)} for vals in values),
        )

    @classmethod
    def of(cls, scenario: Scenario) -> OutcomeSpace:
        return cls(tuple(scenario.issues), scenario.fixed)

    @property
    def issue_ids(self) -> list[str]:
        return [issue.id for issue in self.issues]

    @cached_property
    def radices(self) -> tuple[int, ...]:
        return tuple(len(vals) for vals in self.values)

    @cached_property
    def size(self) -> int:
        return int(np.prod(self.radices, dtype=np.int64))

    @cached_property
    def _strides(self) -> tuple[int, ...]:
        strides, acc = [], 1
        for radix in reversed(self.radices):
            strides.append(acc)
            acc *= radix
        return tuple(reversed(strides))

    @cached_property
    def _value_texts_written(self) -> tuple[dict[int, str], ...]:
        return tuple({} for _ in self.issues)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("value_texts", None)  # read-only views (unpicklable): made again on use
        return state

    @cached_property
    def value_texts(self) -> tuple[tuple[str, int, int, Mapping[int, str]], ...]:
        """Per issue: its name, its stride and radix in outcome numbers, and the texts of
        its values asked so far (:meth:`value_text`), for the words of every offer a
        rule-based agent makes (filled as asked: a split issue may have thousands).
        Read-only: every run and party over this space reads them, agents included."""
        return tuple((issue.name, stride, radix, MappingProxyType(texts))
                     for issue, stride, radix, texts in zip(
                         self.issues, self._strides, self.radices,
                         self._value_texts_written, strict=True))

    def value_text(self, issue: int, position: int) -> str:
        """The value at ``position`` of the issue numbered ``issue``, in words
        (:func:`negotiation.terms.format_value`), remembered in :attr:`value_texts`."""
        texts = self._value_texts_written[issue]
        text = texts.get(position)
        if text is None:
            text = format_value(self.issues[issue], self.values[issue][position])
            texts[position] = text
        return text

    def value_indices(self, outcomes: IndexArray | int) -> IndexArray:
        """The value index of each issue in ``outcomes``: one row per outcome (a single row
        for one outcome), computed from the numbers rather than tabled for the whole space,
        which would take ``size × issues × 8`` bytes."""
        numbers = np.asarray(outcomes, dtype=np.intp)[..., None]
        return np.asarray((numbers // np.array(self._strides, dtype=np.intp))
                          % np.array(self.radices, dtype=np.intp), dtype=np.intp)

    @cached_property
    def similarity(self) -> tuple[FloatArray, ...]:
        """Per issue, how alike two values are, in [0, 1]: equal options 1, otherwise 0;
        numbers by distance over the range; splits by 1 − (L1 distance of shares) / 200."""
        tables = []
        for issue, vals in zip(self.issues, self.values, strict=True):
            if isinstance(issue, DiscreteIssue):
                tables.append(np.eye(len(vals)))
            elif isinstance(issue, SplitIssue):
                shares = np.array([[v[p] for p in issue.parties] for v in vals
                                   if isinstance(v, dict)], dtype=np.float64)
                distance = np.abs(shares[:, None, :] - shares[None, :, :]).sum(axis=2)
                tables.append(1.0 - distance / 200.0)
            else:
                xs = np.array([float(v) for v in vals if not isinstance(v, dict)])
                tables.append(1.0 - np.abs(xs[:, None] - xs[None, :]) / (issue.max - issue.min))
        for table in tables:
            table.flags.writeable = False  # every Bidder of every run reads them
        return tuple(tables)

    @cached_property
    def _digits(self) -> tuple[tuple[str, tuple[TermValue, ...], int, int], ...]:
        """Per issue: its id, its values, and its stride and radix in outcome numbers."""
        return tuple(zip(self.issue_ids, self.values, self._strides, self.radices,
                         strict=True))

    def terms(self, outcome: int) -> dict[str, TermValue]:
        """The terms of outcome number ``outcome``."""
        result: dict[str, TermValue] = {}
        for issue_id, vals, stride, radix in self._digits:
            value = vals[(outcome // stride) % radix]
            result[issue_id] = dict(value) if isinstance(value, dict) else value
        return result

    def offer(self, outcome: int) -> Offer:
        """The offer of outcome number ``outcome`` (one shared object per outcome)."""
        offer = self._offers.get(outcome)
        if offer is None:
            if len(self._offers) >= MAX_SHARED_OFFERS:
                self._offers.clear()
                self._numbers.clear()
            # Shared by every party and run, and known by its number without reading its
            # terms again (index_of_offer): its terms and splits are read-only (the splits
            # are the space's own read-only values).
            offer = self._offers[outcome] = Offer.model_construct(terms=ReadOnlyDict(
                {issue_id: vals[(outcome // stride) % radix]
                 for issue_id, vals, stride, radix in self._digits}))
            self._numbers[id(offer)] = outcome
        return offer

    def number_of_own(self, offer: object) -> int | None:
        """The outcome number of ``offer`` when this space built it (:meth:`offer`:
        read-only, trusted), ``None`` for any other object."""
        number = self._numbers.get(id(offer))
        return number if number is not None and self._offers.get(number) is offer else None

    def index_of_offer(self, offer: Offer) -> int:
        """``index_of(offer.terms)``, free when the offer was built by this space."""
        known = self.number_of_own(offer)
        return self.index_of(offer.terms) if known is None else known

    def index_of(self, terms: Mapping[str, TermValue]) -> int:
        """The outcome number of a complete set of terms; ``InvalidOfferError`` otherwise."""
        outcome = 0
        for issue, lookup, stride in zip(self.issues, self._lookup, self._strides, strict=True):
            if issue.id not in terms:
                raise InvalidOfferError(f"no value for issue '{issue.id}'")
            value = terms[issue.id]
            try:
                position = lookup[_hashable(value)]
            except (KeyError, TypeError):
                raise InvalidOfferError(
                    f"{value!r} is not an allowed value of issue '{issue.id}': "
                    f"{allowed_values_text(issue)}"
                ) from None
            outcome += position * stride
        extra = set(terms) - {issue.id for issue in self.issues}
        if extra:
            raise InvalidOfferError(f"unknown issue(s) {sorted(extra)}")
        return outcome


def read_only_offer(terms: Mapping[str, TermValue]) -> Offer:
    """An offer of ``terms`` (already valid) that refuses changes, splits included."""
    return Offer.model_construct(terms=ReadOnlyDict(
        {issue: ReadOnlyDict(value) if isinstance(value, dict) else value
         for issue, value in terms.items()}))


def value_table(issue: Issue, values: Sequence[TermValue], fn: ValueFunction | None,
                 org_id: str) -> FloatArray:
    """Score of each value of ``issue`` for one organisation, in [0, 1].

    ``points`` are interpolated linearly between their x values and held flat beyond
    them: a value below the first x scores the first point's score, one above the last x
    the last point's (``numpy.interp``), as the scenario docs say."""
    if fn is None:
        return np.zeros(len(values))
    if isinstance(issue, DiscreteIssue):
        assert fn.scores is not None
        return np.array([fn.scores[str(v)] for v in values], dtype=np.float64)
    if isinstance(issue, SplitIssue):
        owner = fn.share_of or org_id
        xs = np.array([float(v[owner]) for v in values if isinstance(v, dict)])
        low, high = 0.0, 100.0
    else:
        xs = np.array([float(v) for v in values if not isinstance(v, dict)])
        low, high = issue.min, issue.max
    if fn.points is not None:
        px, py = zip(*fn.points, strict=True)
        return np.asarray(np.interp(xs, px, py), dtype=np.float64)
    scaled = (xs - low) / (high - low)
    return np.asarray(scaled if fn.prefer == "high" else 1.0 - scaled, dtype=np.float64)


class UtilityFunction:
    """One organisation's linear-additive utility, for single offers and whole spaces."""

    def __init__(self, space: OutcomeSpace, preferences: Preferences, org_id: str) -> None:
        self.space = space
        self.org_id = org_id
        self.reservation_value = preferences.reservation_value
        self.weights = np.array([preferences.weights.get(i.id, 0.0) for i in space.issues])
        self.tables: tuple[FloatArray, ...] = tuple(
            self.weights[k] * value_table(issue, space.values[k],
                                           preferences.values.get(issue.id), org_id)
            for k, issue in enumerate(space.issues)
        )
        # Shared by every run of the scenario (view.utility): read-only, like the vector.
        for array in (self.weights, *self.tables):
            array.flags.writeable = False
        self._strides = space._strides
        self._radices = space.radices

    @cached_property
    def vector(self) -> FloatArray:
        """Utility of every outcome in the space, shape ``(size,)``.

        The outer sum of the per-issue tables is the utility tensor in outcome order
        (issue 0 most significant), so no index table is needed."""
        return np.asarray(functools.reduce(np.add.outer, self.tables).ravel(),
                          dtype=np.float64)

    def of_outcome(self, outcome: int) -> float:
        total = 0.0
        for table, stride, radix in zip(self.tables, self._strides, self._radices, strict=True):
            total += float(table[(outcome // stride) % radix])
        return total

    def __call__(self, offer: Offer | Mapping[str, TermValue]) -> float:
        terms = offer.terms if isinstance(offer, Offer) else offer
        return self.of_outcome(self.space.index_of(terms))


#: Up to this many values numpy's own stable sort is the quicker.
STABLE_SORT_LIMIT = 2_048


def stable_argsort(values: FloatArray) -> IndexArray:
    """``np.argsort(values, kind="stable")``: equal values keep their order.  Beyond a few
    thousand values numpy's stable sort of floats (timsort) takes ~5× as long as its
    quicksort (10^4: ~500 vs ~80 µs), so this sorts with the quicksort and then, only if
    some values tie, once more by a unique integer key (the dense rank of the value, then
    the position), which any sort orders alike: sorted in place, the keys give the
    positions back modulo the length.  At 10^7 values at most two such arrays are alive."""
    if len(values) <= STABLE_SORT_LIMIT:
        return np.asarray(np.argsort(values, kind="stable"), dtype=np.intp)
    order = np.argsort(values)
    ordered = values[order]
    starts = np.empty(len(values), dtype=bool)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    del ordered  # at 10^7 outcomes every array here is 80 MB: hold as few at once as can be
    if starts.all():
        return np.asarray(order, dtype=np.intp)  # no ties: the only ascending order
    key = np.cumsum(starts, dtype=np.int64)  # in sorted order: which run of equal values
    del starts
    key *= len(values)
    key += order  # then the position: unique keys
    del order
    key.sort()  # in place: no index array
    key %= len(values)  # the positions, in stable order
    return np.asarray(key, dtype=np.intp)


def discount_factor(discount: float, time: float) -> float:
    """GENIUS's discounting: an agreement at normalised time ``t ∈ [0, 1]`` is worth
    ``U(o) · d^t`` to a party with discount factor ``d`` (``d = 1``: no discounting)."""
    return float(discount ** min(max(time, 0.0), 1.0))


def discount_factors(preferences: Sequence[Preferences], time: float) -> FloatArray:
    """``d_i^t`` for each party, in the order given."""
    return np.array([discount_factor(p.discount, time) for p in preferences])


def utility_functions(scenario: Scenario, space: OutcomeSpace | None = None
                      ) -> dict[str, UtilityFunction]:
    """Every organisation's utility function over one shared outcome space."""
    space = space or OutcomeSpace.of(scenario)
    return {org.id: UtilityFunction(space, org.preferences, org.id)
            for org in scenario.organizations}


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda value, allowed: value in allowed,
    "not_in": lambda value, allowed: value not in allowed,
}


def violates(red_line: RedLine, terms: Mapping[str, TermValue]) -> bool:
    """Whether ``terms`` break ``red_line`` (a red line states what must hold)."""
    value = terms[red_line.issue]
    if isinstance(value, dict):
        assert red_line.party is not None
        value = value[red_line.party]
    return not bool(_COMPARE[red_line.op](value, red_line.value))


def red_line_mask(space: OutcomeSpace, red_lines: Sequence[RedLine]) -> npt.NDArray[np.bool_]:
    """``True`` for every outcome that keeps all ``red_lines``."""
    if not red_lines:
        return np.ones(space.size, dtype=bool)
    tables = [np.ones(len(values), dtype=bool) for values in space.values]
    position = {issue.id: k for k, issue in enumerate(space.issues)}
    for red_line in red_lines:
        k = position[red_line.issue]
        tables[k] &= np.array([not violates(red_line, {red_line.issue: v})
                               for v in space.values[k]])
    return np.asarray(functools.reduce(np.logical_and.outer, tables).ravel(), dtype=bool)
