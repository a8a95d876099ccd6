"""Charts of utility spaces and negotiation traces (matplotlib, written to PNG files).

Figures are built with matplotlib's object API (``Figure``), not pyplot: no global state,
no display backend, safe in servers and worker processes.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from negotiation import files
from negotiation.analysis import SpaceAnalysis
from negotiation.events import Move
from negotiation.safe_text import for_plot

#: Outcomes drawn in a scatter; larger spaces are thinned by a seeded sample.
MAX_DRAWN = 20_000
_MARKERS = {"Nash": "*", "Kalai–Smorodinsky": "D", "egalitarian": "^", "utilitarian": "s"}


def save_png(figure: Figure, path: Path) -> Path:
    """Save ``figure`` as a PNG at ``path``, written whole and never through a symlink
    (an earlier plot at ``path`` is replaced)."""
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110)
    return files.write_file(path, image.getvalue(), replace=True)


def _pairs(parties: Sequence[str]) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(len(parties)), 2))


def _grid(count: int) -> tuple[Figure, list[Axes]]:
    columns = min(count, 3)
    rows = (count + columns - 1) // columns
    figure = Figure(figsize=(5.2 * columns, 4.8 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    flat = list(axes.flat)
    for extra in flat[count:]:
        extra.set_visible(False)
    return figure, flat[:count]


def _drawn_outcomes(analysis: SpaceAnalysis) -> np.ndarray:
    outcomes = analysis.outcomes
    if len(outcomes) <= MAX_DRAWN:
        return outcomes
    rng = np.random.default_rng(0)
    return np.sort(rng.choice(outcomes, size=MAX_DRAWN, replace=False))


def _space_panel(ax: Axes, analysis: SpaceAnalysis, i: int, j: int) -> None:
    parties = analysis.parties
    drawn = _drawn_outcomes(analysis)
    utilities = analysis.full_utilities[drawn]
    feasible = analysis.feasible_full[drawn]
    ax.scatter(utilities[~feasible, i], utilities[~feasible, j], s=4, c="#d0d0d0",
               label="crosses a red line")
    ax.scatter(utilities[feasible, i], utilities[feasible, j], s=4, c="#7fa7d8",
               label="feasible outcome")
    front = analysis.frontier_utilities
    if len(parties) == 2:
        order = np.argsort(front[:, i])
        ax.plot(front[order, i], front[order, j], "-o", c="#1f4e8c", ms=3,
                label="Pareto frontier")
    else:
        ax.scatter(front[:, i], front[:, j], s=8, c="#1f4e8c", label="Pareto frontier")
    ax.axvline(analysis.reservation[i], ls="--", c="#b04040", lw=1)
    ax.axhline(analysis.reservation[j], ls="--", c="#b04040", lw=1, label="reservation value")
    for point in analysis.special_points():
        ax.scatter(point.utilities[parties[i]], point.utilities[parties[j]], s=90,
                   marker=_MARKERS[point.name], edgecolors="black", zorder=5, label=point.name)
    ax.set_xlabel(f"utility of {parties[i]}")
    ax.set_ylabel(f"utility of {parties[j]}")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)


def plot_space(analysis: SpaceAnalysis, path: Path) -> Path:
    """The utility space: a scatter for two parties, a pairwise grid for more."""
    pairs = _pairs(analysis.parties)
    figure, axes = _grid(len(pairs))
    for ax, (i, j) in zip(axes, pairs, strict=True):
        _space_panel(ax, analysis, i, j)
    axes[0].legend(loc="lower left", fontsize=7, framealpha=0.9)
    figure.suptitle(f"{for_plot(analysis.scenario.title)}\n({analysis.method})", fontsize=10)
    figure.tight_layout()
    return save_png(figure, path)


def plot_trace(analysis: SpaceAnalysis, proposals: Sequence[Move],
               agreement: Mapping[str, float] | None, path: Path) -> Path:
    """Each party's offers over time, drawn in utility space on top of the frontier.

    Two parties: one panel.  More: small multiples, one row per proposer and one column per
    pair of parties, so each panel holds a single path instead of every party's at once."""
    parties = analysis.parties
    pairs = _pairs(parties)
    colours = colormaps["tab10"]
    proposers = [party for party in parties
                 if any(p.party == party and p.utilities for p in proposals)]
    rows: list[list[str]] = [proposers] if len(parties) == 2 else [[p] for p in proposers]
    figure, grid = _rows_of_panels(max(len(rows), 1), len(pairs))
    front = analysis.frontier_utilities
    for row, shown in zip(grid, rows or [[]], strict=True):
        for ax, (i, j) in zip(row, pairs, strict=True):
            ax.scatter(front[:, i], front[:, j], s=6, c="#c8d6ea", label="Pareto frontier")
            for party in shown:
                own = [p.utilities for p in proposals if p.party == party and p.utilities]
                xs = [u[parties[i]] for u in own]
                ys = [u[parties[j]] for u in own]
                colour = colours(parties.index(party))
                ax.plot(xs, ys, "-o", ms=3, lw=1, c=colour, alpha=0.8,
                        label=f"offers by {for_plot(party)}")
                ax.scatter(xs[:1], ys[:1], s=40, marker="s", c=[colour], edgecolors="black",
                           zorder=5, label="first offer" if party == shown[0] else None)
            if agreement is not None:
                ax.scatter(agreement[parties[i]], agreement[parties[j]], s=160, marker="*",
                           c="gold", edgecolors="black", zorder=6, label="agreement")
            ax.axvline(analysis.reservation[i], ls="--", c="#b04040", lw=1)
            ax.axhline(analysis.reservation[j], ls="--", c="#b04040", lw=1)
            ax.set_xlabel(f"utility of {for_plot(parties[i])}")
            ax.set_ylabel(f"utility of {for_plot(parties[j])}")
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.02, 1.02)
            if len(rows) > 1:
                ax.set_title(f"offers by {for_plot(shown[0])}", fontsize=9)
        row[0].legend(loc="lower left", fontsize=7, framealpha=0.9)
    figure.suptitle(f"Offers over time\n{for_plot(analysis.scenario.title)}", fontsize=10)
    figure.tight_layout()
    return save_png(figure, path)


def _rows_of_panels(rows: int, columns: int) -> tuple[Figure, list[list[Axes]]]:
    figure = Figure(figsize=(4.4 * columns + 0.8, 4.0 * rows + 0.8))
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, [list(row) for row in axes]


def over_time_path(path: Path) -> Path:
    """Where the utility-over-time plot goes beside the offer plot at ``path``
    (``run.png`` → ``run.over-time.png``)."""
    return path.with_name(f"{path.stem}.over-time{path.suffix or '.png'}")


def plot_utility_over_time(analysis: SpaceAnalysis, proposals: Sequence[Move],
                           agreement: Mapping[str, float] | None, path: Path,
                           agreed_round: int | None = None) -> Path:
    """One panel per party: its utility of each offer by round, one line per proposer,
    its reservation value as a dotted line and the agreement as a star in the round it was
    reached (``agreed_round``; default: the last offer's), small multiples so that three or
    more parties stay readable."""
    parties = analysis.parties
    colours = colormaps["tab10"]
    figure, axes = _grid(len(parties))
    rounds = [p.round for p in proposals] or [agreed_round or 1]
    if agreed_round is None:
        agreed_round = max(rounds)
    first_round, last_round = min(rounds), max(*rounds, agreed_round)
    for k, (ax, party) in enumerate(zip(axes, parties, strict=True)):
        for proposer_index, proposer in enumerate(parties):
            own = [p for p in proposals if p.party == proposer and p.utilities]
            if own:
                ax.plot([p.round for p in own],
                        [p.utilities[party] for p in own if p.utilities], marker="o", ms=3,
                        lw=1.2 if proposer == party else 1.0,
                        ls="-" if proposer == party else "--", c=colours(proposer_index),
                        label=f"offers by {for_plot(proposer)}")
        ax.axhline(analysis.reservation[k], ls=":", c="#b04040", lw=1.2,
                   label="reservation value")
        if agreement is not None:
            ax.scatter([agreed_round], [agreement[party]], s=180, marker="*", c="gold",
                       edgecolors="black", zorder=6, label="agreement")
        ax.set_title(f"utility of {for_plot(party)}", fontsize=10)
        ax.set_xlabel("round")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(first_round - 0.5, last_round + 0.5)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower left", fontsize=7, framealpha=0.9)
    figure.suptitle(f"Utility of each offer by round\n{for_plot(analysis.scenario.title)}",
                    fontsize=10)
    figure.tight_layout()
    return save_png(figure, path)


def plot_run(analysis: SpaceAnalysis, proposals: Sequence[Move],
             agreement: Mapping[str, float] | None, path: Path,
             agreed_round: int | None = None) -> tuple[Path, Path]:
    """``report --plot``: the offers in utility space at ``path`` and each party's utility
    of each offer by round beside it (:func:`over_time_path`)."""
    return (plot_trace(analysis, proposals, agreement, path),
            plot_utility_over_time(analysis, proposals, agreement, over_time_path(path),
                                   agreed_round))


def plot_campaign(manifest: Mapping[str, Any], path: Path) -> Path:
    """Per party, the value of the agreement in force and the mean trust in its partners
    after every stage of a campaign."""
    stages = manifest["stages"]
    labels = [for_plot(stage["id"]) for stage in stages]
    parties = list(dict.fromkeys(p for stage in stages for p in stage["parties"]))
    figure = Figure(figsize=(11, 4.4))
    value_ax, trust_ax = figure.subplots(1, 2)
    colours = colormaps["tab10"]
    for k, party in enumerate(parties):
        values = [stage["values"].get(party, np.nan) for stage in stages]
        trust = [np.mean(list(stage["trust"][party].values()))
                 if stage["trust"].get(party) else np.nan for stage in stages]
        value_ax.plot(labels, values, "-o", c=colours(k), label=for_plot(party))
        trust_ax.plot(labels, trust, "-o", c=colours(k), label=for_plot(party))
    for stage_index, stage in enumerate(stages):
        if stage["kind"] == "evaluate":
            for ax in (value_ax, trust_ax):
                ax.axvspan(stage_index - 0.4, stage_index + 0.4, color="#eef2f8", zorder=0)
    value_ax.set_title("Value of the agreement in force\n(realised value after evaluations)",
                       fontsize=9)
    trust_ax.set_title("Mean trust in partners", fontsize=9)
    for ax in (value_ax, trust_ax):
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.grid(alpha=0.3)
    value_ax.legend(fontsize=8, loc="lower left")
    figure.suptitle(manifest["title"], fontsize=10)
    figure.tight_layout()
    return save_png(figure, path)
