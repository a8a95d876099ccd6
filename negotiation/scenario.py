"""Reading scenario files: YAML in, a validated ``Scenario`` out, or one clear error.

Every problem is reported with the file, the field path (``organizations[1].preferences.
weights``) and what to do about it, so a person can fix a scenario without reading code.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from negotiation.errors import InputError
from negotiation.model import MAX_OUTCOMES, DiscreteIssue, NumericIssue, Scenario, SplitIssue
from negotiation.strict_yaml import StrictYamlError, load_yaml, read_data_file
from negotiation.utility import InvalidOfferError, settled_value

#: Weights may be written with a few decimals; they must sum to 1 within this tolerance.
WEIGHT_TOLERANCE = 1e-6
#: Outcomes × organisations: a run tables each organisation's utility of every outcome and
#: each rule-based agent ranks them, about 30 bytes per pair at peak, so 2·10^7 (two parties
#: at ``MAX_OUTCOMES``) keeps ``negotiate run`` and ``analyze`` under 1 GiB.
MAX_UTILITIES = 2 * 10**7


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(top level)'}: {self.message}"


class ScenarioError(InputError):
    """A scenario file cannot be used.  The message names the file, each field and the fix."""

    what = "scenario"

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: invalid {self.what} ({len(problems)} problem(s))"]
        lines += [f"  - {problem}" for problem in problems]
        super().__init__("\n".join(lines))


def shipped_scenarios_dir() -> Path:
    """The folder of scenarios that come with the package (repository or installed wheel)."""
    packaged = Path(__file__).parent / "_shipped_scenarios"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "scenarios"


def shipped_scenarios() -> list[Path]:
    return sorted(shipped_scenarios_dir().glob("*.yaml"))


def resolve_scenario_path(name_or_path: str | Path, folder: Path | None = None) -> Path:
    """The file a scenario argument means.  A bare name (``platform-app-vendor``: no folder,
    no ``.yaml``) is a shipped scenario; anything else is a path, relative to ``folder``
    (default: the current one).  A bare name that is both a shipped scenario and a file in
    ``folder`` is refused, so a planted file cannot pass for the shipped one."""
    text = str(name_or_path)
    path = Path(text) if folder is None else folder / text
    if Path(text).name != text or path.suffix in {".yaml", ".yml"} or text in {".", ".."}:
        return path
    shipped = next((p for p in shipped_scenarios() if p.stem == text), None)
    if shipped is None:
        return path
    if path.exists():
        raise ScenarioError(text, [Problem("", (
            f"'{text}' is both a shipped scenario ({shipped}) and a file here "
            f"({path.resolve()}); write ./{text} for the file, or rename the file to use "
            "the shipped scenario"))])
    return shipped


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raise ``ScenarioError`` on any problem."""
    path = resolve_scenario_path(path)
    source = str(path)
    try:
        text = read_data_file(path)
    except StrictYamlError as error:
        raise ScenarioError(source, [Problem("", error.reason)]) from None
    except FileNotFoundError:
        hint = ", ".join(p.stem for p in shipped_scenarios())
        raise ScenarioError(
            source,
            [Problem("", f"file not found; give a path or a shipped scenario name ({hint})")],
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(
            source, [Problem("", f"cannot read the file as UTF-8 text: {error}")]
        ) from None
    return parse_scenario(text, source)


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario YAML text; ``source`` names it in error messages."""
    data = yaml_mapping(text, source, ScenarioError, "id, title, issues, organizations…")
    return scenario_from_data(data, source)


def yaml_mapping(text: str, source: str, error: type[ScenarioError], fields: str
                 ) -> dict[str, Any]:
    """YAML text that must hold a mapping (of ``fields``), read by the strict loader;
    ``error`` names the line of a syntax error or a refused construct, or what was found
    instead of a mapping."""
    try:
        data = load_yaml(text, source)
    except StrictYamlError as refused:
        raise error(source, [Problem(refused.where, refused.reason)]) from None
    except yaml.YAMLError as problem_error:
        where = ""
        mark = getattr(problem_error, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(problem_error, "problem", None) or str(problem_error).splitlines()[0]
        raise error(
            source, [Problem("", f"not valid YAML{where}: {problem}; fix the syntax there")]
        ) from None
    if not isinstance(data, dict):
        raise error(source, [Problem("", f"expected a mapping of fields ({fields}), "
                                         f"found {type(data).__name__}")])
    return data


def scenario_from_data(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(source, list(validation_problems(error))) from None
    problems = list(semantic_problems(scenario))
    if not problems:
        from negotiation.registry import extension_problems  # loads agents and protocols

        problems = list(extension_problems(scenario))
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def scenario_digest(scenario: Scenario) -> str:
    """sha256 of the scenario's canonical JSON: identifies exactly what was negotiated."""
    canonical = json.dumps(
        scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _format_loc(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"discrete", "numeric", "split"}:
            continue  # pydantic's tag for the union member; not a field the user wrote
        else:
            path += f".{part}" if path else str(part)
    return path


_FIXES = {
    "missing": "add this field",
    "extra_forbidden": "remove this field or check its spelling",
    "union_tag_invalid": "set kind to one of: discrete, numeric, split",
    "union_tag_not_found": "add 'kind: discrete | numeric | split'",
    "finite_number": "give a finite number",
}


def validation_problems(error: ValidationError) -> Iterator[Problem]:
    """pydantic's errors as problems with a field path and, where known, the fix."""
    for detail in error.errors(include_url=False):
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "string_pattern_mismatch":
            message = (f"{detail['input']!r} is not a valid id; use lower-case letters, digits, "
                       "'_' or '-', starting with a letter")
        fix = _FIXES.get(detail["type"])
        if fix:
            message = f"{message}; {fix}"
        yield Problem(_format_loc(detail["loc"]), message)


def outcome_space_size(scenario: Scenario) -> int:
    size = 1
    for issue in scenario.issues:
        if issue.id in scenario.fixed:
            continue
        if isinstance(issue, DiscreteIssue):
            size *= len(issue.options)
        elif isinstance(issue, NumericIssue):
            size *= round((issue.max - issue.min) / issue.step) + 1
        else:
            slots = 100 // issue.step
            size *= math.comb(slots + len(issue.parties) - 1, len(issue.parties) - 1)
    return size


def semantic_problems(scenario: Scenario) -> Iterator[Problem]:
    """Rules that relate one part of a scenario to another."""
    issue_ids = [issue.id for issue in scenario.issues]
    org_ids = [org.id for org in scenario.organizations]
    yield from _duplicates("issues", issue_ids)
    yield from _duplicates("organizations", org_ids)
    issues = {issue.id: issue for issue in scenario.issues}

    for i, issue in enumerate(scenario.issues):
        if isinstance(issue, SplitIssue):
            for j, party in enumerate(issue.parties):
                if party not in org_ids:
                    yield Problem(
                        f"issues[{i}].parties[{j}]",
                        f"'{party}' is not an organisation; use one of {org_ids}",
                    )
            yield from _duplicates(f"issues[{i}].parties", issue.parties)
        if isinstance(issue, DiscreteIssue):
            yield from _duplicates(f"issues[{i}].options", issue.options)

    for issue_id, value in scenario.fixed.items():
        if issue_id not in issues:
            yield Problem(f"fixed.{issue_id}", f"'{issue_id}' is not an issue; use one of "
                                               f"{list(issues)}")
            continue
        try:
            settled_value(issues[issue_id], value)
        except InvalidOfferError as error:
            yield Problem(f"fixed.{issue_id}", f"{error}; give one of the issue's values")

    for i, org in enumerate(scenario.organizations):
        yield from _preference_problems(f"organizations[{i}].preferences", org, issues, org_ids)

    for i, coalition in enumerate(scenario.coalition_values):
        for j, member in enumerate(coalition.members):
            if member not in org_ids:
                yield Problem(f"coalition_values[{i}].members[{j}]",
                              f"'{member}' is not an organisation; use one of {org_ids}")

    if scenario.ecosystem is not None:
        actor_ids = [actor.id for actor in scenario.ecosystem.actors]
        yield from _duplicates("ecosystem.actors", actor_ids)
        for i, coalition in enumerate(scenario.ecosystem.coalition_values):
            for j, member in enumerate(coalition.members):
                if member not in actor_ids:
                    yield Problem(f"ecosystem.coalition_values[{i}].members[{j}]",
                                  f"'{member}' is not an actor; use one of {actor_ids}")

    yield from _signatory_problems(scenario, org_ids)

    size = outcome_space_size(scenario)
    if size > MAX_OUTCOMES:
        yield Problem(
            "issues",
            f"the issues allow {size:,} different agreements, more than {MAX_OUTCOMES:,}; "
            "use coarser steps or fewer options",
        )
    elif size * len(org_ids) > MAX_UTILITIES:
        yield Problem(
            "issues",
            f"the issues allow {size:,} different agreements for {len(org_ids)} "
            f"organisations, more than {MAX_UTILITIES // len(org_ids):,} (runs keep every "
            f"organisation's utility of every agreement, at most {MAX_UTILITIES:,} in all, "
            "to stay within 1 GiB of memory); use coarser steps or fewer options",
        )


def _signatory_problems(scenario: Scenario, org_ids: list[str]) -> Iterator[Problem]:
    """Signatories name known organisations, every organisation has some once any has, and
    a quorum that its keys can reach."""
    if not scenario.signatories:
        return
    for org_id, declared in scenario.signatories.items():
        where = f"signatories.{org_id}"
        if org_id not in org_ids:
            yield Problem(where, f"'{org_id}' is not an organisation; use one of {org_ids}")
            continue
        if declared.quorum > len(declared.keys):
            yield Problem(f"{where}.quorum", f"{declared.quorum} signatures needed but only "
                                             f"{len(declared.keys)} key(s) declared; lower the "
                                             "quorum or add keys")
        keys = [key.public_key for key in declared.keys]
        yield from _duplicates(f"{where}.keys", keys)
    owners: dict[str, str] = {}
    for org_id, declared in scenario.signatories.items():
        for index, key in enumerate(declared.keys):
            other = owners.setdefault(key.public_key, org_id)
            if other != org_id:
                yield Problem(f"signatories.{org_id}.keys[{index}]",
                              f"this key already signs for {other}; a key signs for one "
                              "organisation only (make another with 'negotiate keys new')")
    missing = [org_id for org_id in org_ids if org_id not in scenario.signatories]
    if missing:
        yield Problem("signatories", f"no signatories for {missing}; once one organisation "
                                     "declares signatories every organisation must (make "
                                     "keys with 'negotiate keys new --org ORG --name NAME')")


def _duplicates(path: str, ids: list[str]) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, item in enumerate(ids):
        if item in seen:
            yield Problem(f"{path}[{index}]", f"duplicate id '{item}'; ids must be unique")
        seen.add(item)


def _preference_problems(
    path: str, org: Any, issues: dict[str, Any], org_ids: list[str]
) -> Iterator[Problem]:
    prefs = org.preferences
    for issue_id in prefs.weights:
        if issue_id not in issues:
            yield Problem(f"{path}.weights.{issue_id}", f"unknown issue; use one of {list(issues)}")
    missing = [issue_id for issue_id in issues if issue_id not in prefs.weights]
    if missing:
        yield Problem(f"{path}.weights", f"no weight for {missing}; give every issue a weight")
    total = sum(prefs.weights.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        yield Problem(f"{path}.weights", f"weights sum to {total:g}, not 1; rescale them")

    for issue_id, value_fn in prefs.values.items():
        where = f"{path}.values.{issue_id}"
        issue = issues.get(issue_id)
        if issue is None:
            yield Problem(where, f"unknown issue; use one of {list(issues)}")
            continue
        yield from _value_function_problems(where, org.id, issue, value_fn)
    for issue_id in issues:
        if issue_id not in prefs.values and prefs.weights.get(issue_id, 0.0) > 0:
            yield Problem(
                f"{path}.values",
                f"no value function for weighted issue '{issue_id}'; add one or set its weight 0",
            )

    for k, red_line in enumerate(prefs.red_lines):
        yield from _red_line_problems(f"{path}.red_lines[{k}]", red_line, issues)


def _value_function_problems(
    where: str, org_id: str, issue: Any, value_fn: Any
) -> Iterator[Problem]:
    if isinstance(issue, DiscreteIssue):
        if value_fn.scores is None:
            yield Problem(where, "a discrete issue needs 'scores: {option: score, …}'")
            return
        for option in value_fn.scores:
            if option not in issue.options:
                yield Problem(
                    f"{where}.scores.{option}", f"unknown option; use one of {issue.options}"
                )
        unscored = [option for option in issue.options if option not in value_fn.scores]
        if unscored:
            yield Problem(f"{where}.scores", f"no score for options {unscored}; score every option")
        return
    if value_fn.scores is not None:
        yield Problem(where, f"a {issue.kind} issue takes 'points' or 'prefer', not 'scores'")
        return
    if isinstance(issue, SplitIssue):
        share_of = value_fn.share_of or org_id
        if share_of not in issue.parties:
            yield Problem(
                f"{where}.share_of",
                f"'{share_of}' has no share in this split; set share_of to one of {issue.parties}",
            )
    elif value_fn.share_of is not None:
        yield Problem(f"{where}.share_of", "share_of only applies to split issues; remove it")


def _red_line_problems(where: str, red_line: Any, issues: dict[str, Any]) -> Iterator[Problem]:
    issue = issues.get(red_line.issue)
    if issue is None:
        yield Problem(f"{where}.issue", f"unknown issue '{red_line.issue}'; use one of "
                                        f"{list(issues)}")
        return
    if isinstance(issue, DiscreteIssue):
        if red_line.op not in {"==", "!=", "in", "not_in"}:
            yield Problem(f"{where}.op", "options are compared with ==, !=, in or not_in")
        values = red_line.value if isinstance(red_line.value, list) else [red_line.value]
        for value in values:
            if value not in issue.options:
                yield Problem(f"{where}.value", f"'{value}' is not an option of "
                                                f"'{issue.id}'; use one of {issue.options}")
        return
    if isinstance(red_line.value, list | str) or red_line.op in {"in", "not_in"}:
        yield Problem(f"{where}.value", f"'{issue.id}' is numeric: compare it to a number "
                                        "with ==, !=, <, <=, > or >=")
    if isinstance(issue, SplitIssue):
        if red_line.party not in issue.parties:
            yield Problem(f"{where}.party", f"name whose share is constrained: one of "
                                            f"{issue.parties}")
    elif red_line.party is not None:
        yield Problem(f"{where}.party", "party only applies to split issues; remove it")
