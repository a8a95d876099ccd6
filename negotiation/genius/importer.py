"""GENIUS domain folder → scenario: GENIUS's semantics, written as our scenario fields.

For each profile (one organisation, its id from the file name):

    U(o) = Σ_i ŵ_i · e_i(o_i),   ŵ_i = w_i / Σ_j w_j,

with e_i a discrete item's evaluation divided by the largest evaluation of its issue, and
for integer and real issues GENIUS's linear evaluator clipped to [0, 1].  A clipped line
is written as ``points`` at the range ends and where the line crosses 0 or 1, so the
piecewise-linear value function equals it at every value of the issue.  A real issue
becomes a numeric issue on ``discretization`` (default :data:`REAL_STEPS`) equal steps.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from negotiation.genius.reader import (
    GeniusError,
    GeniusIssue,
    GeniusProfile,
    LinearEvaluator,
    is_profile,
    parse_xml,
    read_domain,
    read_profile,
)
from negotiation.model import Scenario
from negotiation.scenario import ScenarioError, scenario_from_data

#: Equal steps a real issue's range is cut into, unless the domain file says otherwise.
REAL_STEPS = 20
IMPORTED = ("Imported from the GENIUS profile {file}; GENIUS profiles carry no public "
            "description of the party.")


def slug(text: str, taken: set[str]) -> str:
    """A valid identifier for ``text``, unique among ``taken`` (which it joins)."""
    base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "x"
    if not base[0].isalpha():
        base = f"v_{base}"[:60]
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def read_folder(folder: Path) -> tuple[Path, list[GeniusIssue], list[GeniusProfile]]:
    """The domain file, its issues and its profiles (sorted by file name)."""
    if not folder.is_dir():
        raise GeniusError(folder, "", "not a folder; give the folder that holds the GENIUS "
                                      "domain XML and its profile XML files")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
    parsed = [(path, parse_xml(path)) for path in paths]
    domains = [(path, root) for path, root in parsed if not is_profile(root)]
    if not domains:
        raise GeniusError(folder, "", "no domain file (an XML file whose <objective> lists "
                                      "issues without weights or evaluations); add the "
                                      "domain XML next to the profiles")
    if len(domains) > 1:
        raise GeniusError(folder, "", f"{len(domains)} domain files "
                                      f"({', '.join(p.name for p, _ in domains)}); keep one "
                                      "domain and its profiles per folder")
    domain_path, domain_root = domains[0]
    issues = read_domain(domain_path, domain_root)
    profiles = [read_profile(path, root, issues, domain_path)
                for path, root in parsed if is_profile(root)]
    if len(profiles) < 2:
        raise GeniusError(folder, "", f"{len(profiles)} profile file(s); a negotiation needs "
                                      "two or more utility-space XML files next to the domain")
    return domain_path, issues, profiles


def clipped_points(line: LinearEvaluator, low: float, high: float) -> list[list[float]]:
    """``[[x, u], …]`` whose linear interpolation is ``line`` clipped to [0, 1] on
    [low, high]: the ends and the points where the line crosses 0 or 1."""
    xs = {low, high}
    if line.slope != 0:
        for level in (0.0, 1.0):
            crossing = (level - line.intercept) / line.slope
            if low < crossing < high:
                xs.add(crossing)
    return [[x, line(x)] for x in sorted(xs)]


def _issue_data(issue: GeniusIssue, issue_id: str, option_ids: list[str],
                real_steps: int) -> dict[str, Any]:
    data: dict[str, Any] = {"id": issue_id, "name": issue.description or issue.name}
    if issue.kind == "discrete":
        labels = {}
        for option, value, description in zip(option_ids, issue.items,
                                               issue.item_descriptions, strict=True):
            text = description if description and description != value else (
                value if value != option else "")
            if text:
                labels[option] = text
        data.update(kind="discrete", options=option_ids)
        if labels:
            data["labels"] = labels
        return data
    steps = 1.0 if issue.kind == "integer" else (
        (issue.upper - issue.lower) / (issue.discretization or real_steps))
    data.update(kind="numeric", min=_plain(issue.lower), max=_plain(issue.upper),
                step=_plain(steps))
    return data


def _plain(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def _preferences(profile: GeniusProfile, issues: list[GeniusIssue], issue_ids: list[str],
                 option_ids: list[list[str]]) -> dict[str, Any]:
    total = sum(profile.weights.values())
    values: dict[str, Any] = {}
    for issue, issue_id, options in zip(issues, issue_ids, option_ids, strict=True):
        if issue.kind == "discrete":
            raw = profile.evaluations[issue.index]
            best = max(raw.values())
            values[issue_id] = {"scores": {
                option: raw[value] / best if best > 0 else 0.0
                for option, value in zip(options, issue.items, strict=True)}}
        else:
            values[issue_id] = {"points": clipped_points(profile.linear[issue.index],
                                                         issue.lower, issue.upper)}
    preferences: dict[str, Any] = {
        "reservation_value": profile.reservation_value,
        "weights": {issue_id: profile.weights[issue.index] / total
                    for issue, issue_id in zip(issues, issue_ids, strict=True)},
        "values": values,
    }
    if profile.discount is not None:
        preferences["discount"] = profile.discount
    return preferences


def import_folder(folder: Path, *, real_steps: int = REAL_STEPS) -> dict[str, Any]:
    """Scenario data (plain, ready for YAML) for a GENIUS domain folder."""
    domain_path, issues, profiles = read_folder(folder)
    issue_taken: set[str] = set()
    issue_ids = [slug(issue.name, issue_taken) for issue in issues]
    option_ids: list[list[str]] = []
    for issue in issues:
        taken: set[str] = set()
        option_ids.append([slug(value, taken) for value in issue.items])
    org_taken: set[str] = set()
    organizations = []
    for profile in profiles:
        org_id = slug(profile.path.stem, org_taken)
        organizations.append({
            "id": org_id,
            "name": profile.path.stem,
            "mission": IMPORTED.format(file=profile.path.name),
            "preferences": _preferences(profile, issues, issue_ids, option_ids),
        })
    name = folder.resolve().name or "genius"
    return {
        "id": slug(name, set()),
        "title": f"{name} (imported from GENIUS)",
        "description": f"Imported from the GENIUS domain {domain_path.name} and "
                       f"{len(profiles)} profiles in {name}.",
        "issues": [_issue_data(issue, issue_id, options, real_steps) for issue, issue_id, options
                   in zip(issues, issue_ids, option_ids, strict=True)],
        "organizations": organizations,
    }


def import_genius(folder: Path, *, real_steps: int = REAL_STEPS) -> tuple[Scenario, dict[str, Any]]:
    """The validated scenario of a GENIUS folder and its plain data (for writing YAML)."""
    data = import_folder(folder, real_steps=real_steps)
    try:
        return scenario_from_data(data, f"{folder} (imported)"), data
    except ScenarioError as error:
        raise GeniusError(folder, "", f"the imported scenario is not valid:\n{error}") from None
