"""Scenario → GENIUS domain folder, exactly, or a refusal that says why.

GENIUS normalises weights to sum to 1 and each discrete issue's best evaluation to 1, so
each organisation's utility is rewritten issue by issue: with g_i(v) = w_i · s_i(v) the
weighted score of value v of issue i, GENIUS gets

    w'_i = max_v g_i(v),   e'_i(v) = g_i(v) / w'_i,

and the slack 1 − Σ_i w'_i (a best outcome worth less than 1) is given to a numeric issue,
whose linear evaluator is scaled down to keep w'_i · e'_i = g_i.  Importing the export
therefore gives back the same outcome space and utilities (to rounding).  What GENIUS
cannot express is refused: split issues, fixed terms, numeric value functions that are not
a line clipped to [0, 1], and a best outcome below 1 without a numeric issue to carry the
slack.  Red lines have no GENIUS form: they are left out, and the export says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from negotiation import files
from negotiation.errors import RefusedError
from negotiation.model import DiscreteIssue, NumericIssue, Organization, Scenario, SplitIssue
from negotiation.utility import FloatArray, OutcomeSpace, value_table

#: Largest difference tolerated between a value function and the GENIUS line written for it.
LINE_TOLERANCE = 1e-9


class ExportRefused(RefusedError):
    """The scenario uses something GENIUS cannot express; the message names it and the fix."""


@dataclass(frozen=True)
class Export:
    """The files of a GENIUS folder (name → XML text) and what was left out."""

    files: dict[str, str]
    notes: list[str]


def _number(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


def _is_integer_issue(issue: NumericIssue) -> bool:
    return issue.step == 1 and float(issue.min).is_integer() and float(issue.max).is_integer()


def _line(issue: NumericIssue, xs: FloatArray, table: FloatArray, org: Organization
          ) -> tuple[float, float]:
    """(intercept, slope) of a line that, clipped to [0, 1], equals ``table`` at ``xs``."""
    fn = org.preferences.values.get(issue.id)
    candidates = [(float(table[0]), 0.0)]
    span = float(xs[-1] - xs[0])
    slope = float(table[-1] - table[0]) / span
    candidates.append((float(table[0]) - slope * float(xs[0]), slope))
    if fn is not None and fn.points is not None:
        for (x0, y0), (x1, y1) in zip(fn.points, fn.points[1:], strict=False):
            if y1 != y0:
                rise = (y1 - y0) / (x1 - x0)
                candidates.append((y0 - rise * x0, rise))
    for intercept, gradient in candidates:
        line = np.clip(intercept + gradient * xs, 0.0, 1.0)
        if np.all(np.abs(line - table) <= LINE_TOLERANCE):
            return intercept, gradient
    raise ExportRefused(
        f"organizations.{org.id}.preferences.values.{issue.id}: GENIUS evaluates numeric "
        "issues with one straight line (clipped to 0…1), and this value function bends; "
        "give it as 'prefer: high|low' or as points on one line, or make the issue discrete")


@dataclass
class _Weighted:
    """One organisation's issue in GENIUS form: weight and per-value evaluations."""

    weight: float
    evaluations: FloatArray | None = None  # discrete
    line: tuple[float, float] | None = None  # numeric: (intercept, slope), unscaled
    scale: float = 1.0  # numeric: evaluator = scale · line


def _profile_parts(scenario: Scenario, space: OutcomeSpace, org: Organization
                   ) -> list[_Weighted]:
    parts: list[_Weighted] = []
    prefs = org.preferences
    for k, issue in enumerate(scenario.issues):
        weight = prefs.weights.get(issue.id, 0.0)
        table = value_table(issue, space.values[k], prefs.values.get(issue.id), org.id)
        weighted = weight * table
        best = float(weighted.max())
        if isinstance(issue, DiscreteIssue):
            parts.append(_Weighted(best, weighted / best if best > 0 else np.ones(len(table))))
            continue
        assert isinstance(issue, NumericIssue)
        xs = np.array([float(v) for v in space.values[k] if not isinstance(v, dict)])
        line = _line(issue, xs, table, org)
        parts.append(_Weighted(best, line=line, scale=weight / best if best > 0 else 0.0))
    slack = 1.0 - sum(part.weight for part in parts)
    if abs(slack) <= LINE_TOLERANCE:
        return parts
    for k, issue in enumerate(scenario.issues):
        part = parts[k]
        if part.line is None:
            continue
        intercept, slope = part.line
        assert isinstance(issue, NumericIssue)
        raw_top = max(intercept + slope * issue.min, intercept + slope * issue.max)
        if raw_top > 1.0 + LINE_TOLERANCE and part.scale > 0:
            continue  # clipped at 1 inside the range: scaling would move the kink
        original = part.weight * part.scale  # the organisation's own weight of the issue
        part.weight += slack
        part.scale = original / part.weight
        return parts
    raise ExportRefused(
        f"organizations.{org.id}: its best possible agreement is worth {1 - slack:.6g}, but "
        "GENIUS gives every profile's best outcome utility 1 (weights sum to 1, the best "
        "option of each discrete issue scores 1); score the best option of every weighted "
        "issue 1, or add a numeric issue")


def _objective(parent: ElementTree.Element, scenario: Scenario) -> ElementTree.Element:
    return ElementTree.SubElement(parent, "objective", index="0", etype="objective",
                                  type="objective", description="", name=scenario.id)


def _issue(parent: ElementTree.Element, index: int, issue: DiscreteIssue | NumericIssue
           ) -> ElementTree.Element:
    kind = "discrete" if isinstance(issue, DiscreteIssue) else (
        "integer" if _is_integer_issue(issue) else "real")
    element = ElementTree.SubElement(parent, "issue", index=str(index), etype=kind, type=kind,
                                     vtype=kind, name=issue.id)
    if isinstance(issue, NumericIssue):
        element.set("lowerbound", _number(issue.min))
        element.set("upperbound", _number(issue.max))
        if kind == "real":
            element.set("discretization", str(round((issue.max - issue.min) / issue.step)))
        ElementTree.SubElement(element, "range", lowerbound=_number(issue.min),
                               upperbound=_number(issue.max))
    return element


def _text(root: ElementTree.Element) -> str:
    ElementTree.indent(root)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ElementTree.tostring(root, encoding="unicode") + "\n")


def domain_xml(scenario: Scenario) -> str:
    root = ElementTree.Element("negotiation_template")
    space = ElementTree.SubElement(root, "utility_space", number_of_issues=str(
        len(scenario.issues)))
    objective = _objective(space, scenario)
    for index, issue in enumerate(scenario.issues, start=1):
        assert not isinstance(issue, SplitIssue)
        element = _issue(objective, index, issue)
        element.set("description", issue.name)
        if isinstance(issue, DiscreteIssue):
            for n, option in enumerate(issue.options, start=1):
                ElementTree.SubElement(element, "item", index=str(n), value=option,
                                       description=issue.labels.get(option, ""))
    return _text(root)


def profile_xml(scenario: Scenario, space: OutcomeSpace, org: Organization) -> str:
    root = ElementTree.Element("utility_space")
    objective = _objective(root, scenario)
    parts = _profile_parts(scenario, space, org)
    for index, (issue, part) in enumerate(zip(scenario.issues, parts, strict=True), start=1):
        assert not isinstance(issue, SplitIssue)
        element = _issue(objective, index, issue)
        if isinstance(issue, DiscreteIssue):
            assert part.evaluations is not None
            for n, (option, evaluation) in enumerate(
                    zip(issue.options, part.evaluations, strict=True), start=1):
                ElementTree.SubElement(element, "item", index=str(n), value=option,
                                       evaluation=_number(float(evaluation)))
            continue
        assert part.line is not None
        intercept, slope = (part.scale * part.line[0], part.scale * part.line[1])
        if _is_integer_issue(issue):
            offset = intercept + slope * issue.min
            ElementTree.SubElement(element, "evaluator", ftype="linear",
                                   slope=_number(slope), offset=_number(offset))
        else:
            ElementTree.SubElement(element, "evaluator", ftype="linear",
                                   parameter0=_number(intercept), parameter1=_number(slope))
    for index, part in enumerate(parts, start=1):
        ElementTree.SubElement(objective, "weight", index=str(index), value=_number(part.weight))
    ElementTree.SubElement(root, "reservation",
                           value=_number(org.preferences.reservation_value))
    if org.preferences.discount < 1.0:
        ElementTree.SubElement(root, "discount_factor", value=_number(org.preferences.discount))
    return _text(root)


def export_scenario(scenario: Scenario, source: str = "<scenario>") -> Export:
    """The GENIUS files for ``scenario``; ``ExportRefused`` names what GENIUS cannot express
    (``source`` names the scenario in the message)."""
    try:
        return _export(scenario)
    except ExportRefused as refused:
        raise ExportRefused(f"{source}: cannot export to GENIUS: {refused}") from None


def _export(scenario: Scenario) -> Export:
    for k, issue in enumerate(scenario.issues):
        if isinstance(issue, SplitIssue):
            raise ExportRefused(
                f"issues[{k}] ({issue.id}): GENIUS has no split issues (shares of a pot among "
                "parties); model the shares as a numeric issue (e.g. one party's share, "
                "0–100) to export this scenario")
    if scenario.fixed:
        raise ExportRefused(f"fixed: GENIUS has no settled terms; remove 'fixed' "
                            f"({', '.join(scenario.fixed)}) or make them issues to export")
    space = OutcomeSpace.of(scenario)
    profiles = {f"{org.id}.xml": profile_xml(scenario, space, org)
                for org in scenario.organizations}
    # An organisation may be called '<scenario id>-domain': the domain file then takes a
    # name no profile can have (identifiers have no dots), never the profile's.
    domain = f"{scenario.id}-domain.xml"
    if domain in profiles:
        domain = f"{scenario.id}-domain.genius.xml"
    exported = {domain: domain_xml(scenario), **profiles}
    notes = [f"{org.id}: {len(org.preferences.red_lines)} red line(s) left out (GENIUS has no "
             "hard constraints)" for org in scenario.organizations if org.preferences.red_lines]
    return Export(exported, notes)


def write_export(export: Export, folder: Path) -> list[Path]:
    """Write the files into ``folder`` (created if needed); never overwrites a file."""
    folder.mkdir(parents=True, exist_ok=True)
    clashes = [name for name in export.files if (folder / name).exists()
               or (folder / name).is_symlink()]
    if clashes:
        raise ExportRefused(f"{folder}: {', '.join(clashes)} already exist(s); refusing to "
                            "overwrite: choose an empty folder")
    return [files.write_file(folder / name, text) for name, text in export.files.items()]
