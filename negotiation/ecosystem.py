"""Ecosystem mapping and partner selection: who complements whom, which coalitions create
the most value net of coordination overhead, how to split it, and where a coalition
depends on a single member.

Complementarity of i and j counts the needs of each that the other's capabilities meet;
alignment is the Jaccard similarity of their stated values.  A coalition's value v(S) is
given by the ecosystem's ``coalition_values`` or, by default, its members' resources plus
``synergy`` for each need of a member met by another member; its net surplus subtracts
the stand-alone values Σ v({i}) and ``coordination_cost`` per pair of members.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from negotiation.analysis import shapley_values
from negotiation.errors import InputError
from negotiation.model import Actor, Ecosystem
from negotiation.safe_text import for_mermaid, for_plot

#: Coalitions are enumerated exactly up to this many actors (2^n subsets).
MAX_ACTORS = 16


class EcosystemError(InputError):
    """An ecosystem that cannot be mapped."""


@dataclass(frozen=True)
class CoalitionReport:
    members: tuple[str, ...]
    value: float
    surplus: float
    overhead: float
    net: float
    shapley: dict[str, float]
    dependencies: list[str]


class EcosystemMap:
    """Pairwise relations and ranked coalitions of an ecosystem."""

    def __init__(self, ecosystem: Ecosystem) -> None:
        if len(ecosystem.actors) > MAX_ACTORS:
            raise EcosystemError(f"{len(ecosystem.actors)} actors: at most {MAX_ACTORS} can "
                                 "be mapped exactly")
        self.ecosystem = ecosystem
        self.actors = {actor.id: actor for actor in ecosystem.actors}
        self._given = {frozenset(c.members): c.value for c in ecosystem.coalition_values}

    @staticmethod
    def complementarity(a: Actor, b: Actor) -> int:
        return len(set(a.needs) & set(b.capabilities)) + len(set(b.needs) & set(a.capabilities))

    @staticmethod
    def alignment(a: Actor, b: Actor) -> float:
        union = set(a.values) | set(b.values)
        return len(set(a.values) & set(b.values)) / len(union) if union else 0.0

    def value(self, members: frozenset[str]) -> float:
        if members in self._given:
            return self._given[members]
        actors = [self.actors[m] for m in members]
        met = sum(1 for a in actors for need in a.needs
                  if any(need in b.capabilities for b in actors if b is not a))
        return sum(a.resources for a in actors) + self.ecosystem.synergy * met

    @cached_property
    def coalitions(self) -> list[CoalitionReport]:
        """Every coalition of two or more actors, best net surplus first."""
        ids = list(self.actors)
        reports = []
        for size in range(2, len(ids) + 1):
            for members in itertools.combinations(ids, size):
                reports.append(self.report(members))
        return sorted(reports, key=lambda r: (-r.net, len(r.members), r.members))

    def report(self, members: Sequence[str]) -> CoalitionReport:
        group = frozenset(members)
        value = self.value(group)
        surplus = value - sum(self.value(frozenset([m])) for m in members)
        overhead = self.ecosystem.coordination_cost * len(members) * (len(members) - 1) / 2
        game = {frozenset(s): self.value(frozenset(s)) for n in range(1, len(members) + 1)
                for s in itertools.combinations(members, n)}
        return CoalitionReport(tuple(members), value, surplus, overhead, surplus - overhead,
                               shapley_values(list(members), game),
                               self.dependencies(members))

    def dependencies(self, members: Sequence[str]) -> list[str]:
        """Capabilities that members need and exactly one other member holds: single points
        of failure, one line per holder (``holder: capability, …``)."""
        sole: dict[str, set[str]] = {}
        for member in members:
            for need in self.actors[member].needs:
                holders = [m for m in members if m != member
                           and need in self.actors[m].capabilities]
                if len(holders) == 1:
                    sole.setdefault(holders[0], set()).add(need)
        return [f"{holder}: {', '.join(sorted(needs))}" for holder, needs in sorted(sole.items())]

    def mermaid(self) -> str:
        """The ecosystem as a Mermaid graph: who meets whose needs."""
        lines = ["graph LR"]
        for actor in self.actors.values():
            lines.append(f'    {actor.id}["{for_mermaid(actor.name)}"]')
        for a, b in itertools.permutations(self.actors.values(), 2):
            met = sorted(set(b.needs) & set(a.capabilities))
            if met:
                lines.append(f'    {a.id} -- "{for_mermaid(", ".join(met))}" --> {b.id}')
        return "\n".join(lines) + "\n"

    def plot(self, path: Path) -> Path:
        import math

        from matplotlib.figure import Figure

        from negotiation.plots import save_png

        figure = Figure(figsize=(7, 7))
        ax = figure.subplots()
        actors = list(self.actors.values())
        angle = {a.id: 2 * math.pi * k / len(actors) for k, a in enumerate(actors)}
        xy = {i: (math.cos(t), math.sin(t)) for i, t in angle.items()}
        for a, b in itertools.combinations(actors, 2):
            weight = self.complementarity(a, b)
            if weight:
                (x1, y1), (x2, y2) = xy[a.id], xy[b.id]
                ax.plot([x1, x2], [y1, y2], color="#1f4e8c", alpha=0.3 + 0.7 * min(weight, 3) / 3,
                        lw=1 + 2 * weight)
        for actor in actors:
            x, y = xy[actor.id]
            ax.scatter([x], [y], s=900 + 40 * actor.resources, color="#7fa7d8", zorder=3)
            ax.annotate(for_plot(actor.name), (x, y), ha="center", va="center", fontsize=8,
                        zorder=4)
        ax.set_axis_off()
        ax.set_title("Ecosystem: line width = complementarity (needs met)")
        figure.tight_layout()
        return save_png(figure, path)
