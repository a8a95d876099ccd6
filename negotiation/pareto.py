"""The Pareto frontier of a set of points (one row per outcome, one column per party).

Utilities are compared on a grid of ``10^-UTILITY_DECIMALS`` (each rounded to 9 decimals
first), so float noise of a few ulps never makes one outcome dominate another: p dominates
q when, after that rounding, p is at least as good for every party and better for one.  On
that grid, in whole units, sums are exact (for utilities below ~10^6: beyond, the block loop
compares column by column), and a point that dominates another has a strictly larger sum:
the frontier algorithms below rest on it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from negotiation.utility import FloatArray, IndexArray

#: Utilities are compared after rounding to this many decimals (the dominance tolerance).
UTILITY_DECIMALS = 9
BoolArray = npt.NDArray[np.bool_]


def grid_units(utilities: FloatArray) -> FloatArray:
    """``utilities`` in whole units of ``10^-UTILITY_DECIMALS`` (integers held as floats,
    exact below 2^53, so their sums and comparisons are exact)."""
    return np.rint(np.asarray(utilities, dtype=np.float64) * 10.0**UTILITY_DECIMALS)


def on_grid(utilities: FloatArray) -> FloatArray:
    """``utilities`` rounded to ``UTILITY_DECIMALS``: the values every comparison uses."""
    return np.asarray(grid_units(utilities) / 10.0**UTILITY_DECIMALS, dtype=np.float64)


def pareto_mask(points: FloatArray) -> BoolArray:
    """``True`` for the rows of ``points`` (n × m, larger is better) that no row dominates.

    Rows are compared on the grid of :func:`on_grid` (as integers, so sums are exact): a
    row dominates another when it is at least as good in every column and better in one.
    First, most points are dominated by one of the few with the largest sums: vectorised
    passes drop them (a few leaders over every point, then more over the survivors; a pass
    costs points × leaders).  What remains has the same frontier: a dropped point is
    dominated by a frontier point too (dominance is transitive), and none of those is ever
    dropped.  Then, two parties: one sort and a running maximum (Kung, Luccio & Preparata
    1975), O(n log n).  More parties: block nested loops (Börzsönyi, Kossmann & Stocker
    2001) in the order of decreasing sum, so every point that dominates another comes before
    it (on the integer grid, a point that dominates another has a strictly larger sum); a
    block is compared with the frontier found so far and with itself, O(n · frontier)
    comparisons, vectorised.  Identical points do not dominate each other; all copies of a
    frontier point are kept.  The result depends only on the points, not on their order.
    """
    n = len(points)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    points = grid_units(points)
    if points.shape[1] == 2:
        # Sort by the first utility, best first; group equal first utilities.  A point is on
        # the frontier iff it has its group's best second utility and that beats every
        # group before it.  (The sort is cheap: pruning pays only on large sets.)
        kept = _pruned(points, _PRUNE_TWO_AFTER)
        candidates = points if kept is None else points[kept]
        order = np.argsort(-candidates[:, 0])
        first, second = candidates[order, 0], candidates[order, 1]
        is_start = np.concatenate(([True], first[1:] != first[:-1]))
        starts = np.flatnonzero(is_start)
        group = np.cumsum(is_start) - 1
        group_best = np.maximum.reduceat(second, starts)
        before = np.concatenate(([-np.inf], np.maximum.accumulate(group_best)[:-1]))
        mask[order if kept is None else kept[order]] = \
            (second == group_best[group]) & (group_best > before)[group]
        return mask
    sums = points.sum(axis=1)
    # Whole grid units: the sums are exact unless a row's values reach 2^53 / parties
    # units (utilities of ~10^6 and more); then a dominating row's sum may round to its
    # victim's, and dominance and order are decided column by column instead.
    exact = max(float(points.max()), -float(points.min())) * points.shape[1] < 2.0**53
    kept = _pruned(points, _PRUNE_AFTER, sums)
    order = np.arange(n) if kept is None else kept
    if exact:
        order = order[np.argsort(-sums[order], kind="stable")]
    else:  # ties of the rounded sums broken lexicographically: a dominating row first
        order = order[np.lexsort((*(-points[order, ::-1].T), -sums[order]))]
    front = np.empty((0, points.shape[1]))
    front_sums = np.empty(0)
    for start in range(0, len(order), _BLOCK):
        rows = order[start:start + _BLOCK]
        block, block_sums = points[rows], sums[rows]
        dominated = _dominated_by(block, block_sums, block, block_sums, exact)
        for front_start in range(0, len(front), _FRONT_CHUNK):
            part = slice(front_start, front_start + _FRONT_CHUNK)
            dominated |= _dominated_by(block, block_sums, front[part], front_sums[part],
                                       exact)
        mask[rows[~dominated]] = True
        front = np.concatenate((front, block[~dominated]))
        front_sums = np.concatenate((front_sums, block_sums[~dominated]))
    return mask


_BLOCK = 256
_FRONT_CHUNK = 4096
#: Leaders of each pruning pass (the points with the largest sums).
_LEADERS = (8, 64)
#: A pass with k leaders runs while more than k × this many points remain.
_PRUNE_AFTER = 16
_PRUNE_TWO_AFTER = 1024
_PRUNE_CHUNK = 16384


def _pruned(points: FloatArray, worth: int, sums: FloatArray | None = None
            ) -> IndexArray | None:
    """The rows of ``points`` (on the integer grid) that no leader dominates, the leaders of
    each pass being the ``_LEADERS`` rows with the largest sums; a pass with k leaders runs
    while more than k × ``worth`` rows remain (``None``: too few rows for any pass)."""
    if len(points) <= _LEADERS[0] * worth:
        return None
    if sums is None:
        sums = points.sum(axis=1)
    order: IndexArray | None = None  # every row: read in place, not copied
    for count in _LEADERS:
        remaining = len(points) if order is None else len(order)
        if count * worth >= remaining:
            break
        leaders = np.argpartition(-sums, count)[:count]
        best, best_sums = points[leaders], sums[leaders]
        kept = np.empty(remaining, dtype=bool)
        for start in range(0, remaining, _PRUNE_CHUNK):
            part = slice(start, start + _PRUNE_CHUNK)
            rows = part if order is None else order[part]
            kept[part] = ~_dominated_by(points[rows], sums[rows], best, best_sums)
        order = np.flatnonzero(kept) if order is None else order[kept]
    return order


def _dominated_by(points: FloatArray, sums: FloatArray, others: FloatArray,
                  other_sums: FloatArray, exact: bool = True) -> BoolArray:
    """``True`` for each row of ``points`` that some row of ``others`` dominates (rows on
    the integer grid, with their ``sums``): at least as good for every party and better
    for one, which on that grid is at least as good for every party with a larger sum
    when the sums are ``exact``; otherwise, with a difference in some column (a rounded
    sum is never larger for a row that is no better, so pruning by sums stays sound).  One
    party at a time, on (others × points) booleans: no float temporaries."""
    dominated = (other_sums[:, None] > sums[None, :] if exact
                 else (others[:, None, :] != points[None, :, :]).any(axis=2))
    for party in range(points.shape[1]):
        dominated &= others[:, None, party] >= points[None, :, party]
    return np.asarray(dominated.any(axis=0), dtype=bool)


__all__ = ["UTILITY_DECIMALS", "BoolArray", "grid_units", "on_grid", "pareto_mask"]
