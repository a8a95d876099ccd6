"""Reading GENIUS domain and profile XML files into plain, checked data.

A GENIUS domain folder (as in the ANAC repositories) holds one domain file, whose
``<objective>`` lists the issues, and two or more utility-space profiles, which repeat the
issues with an evaluator each, a ``<weight index=… value=…>`` per issue, and optionally
``<reservation value=…>`` and ``<discount_factor value=…>``.  Issue kinds:

- ``discrete``: ``<item index value [evaluation] [description]>`` children;
- ``integer``: ``lowerbound`` / ``upperbound`` (attributes or a ``<range>`` child) and, in a
  profile, ``<evaluator ftype="linear" slope=… offset=…>``: u(x) = offset + slope·(x − lowerbound);
- ``real``: a ``<range lowerbound upperbound>`` and ``<evaluator ftype="linear" parameter0=…
  parameter1=…>``: u(x) = parameter0 + parameter1·x.

Linear evaluations are clipped to [0, 1] as GENIUS's ``EvaluatorInteger`` and
``EvaluatorReal`` do.  XML is parsed with defusedxml: a file that declares entities or
reaches for external resources is refused, never expanded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from negotiation.errors import InputError
from negotiation.strict_yaml import MAX_FILE_BYTES

IssueKind = Literal["discrete", "integer", "real"]
KINDS: tuple[IssueKind, ...] = ("discrete", "integer", "real")


class GeniusError(InputError):
    """A GENIUS folder or file cannot be used: the message names the file, the element and
    the fix."""

    def __init__(self, source: str | Path, element: str, problem: str) -> None:
        self.source = str(source)
        self.element = element
        where = f"{self.source}: {element}" if element else self.source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class GeniusIssue:
    """One issue as the domain file declares it."""

    index: int
    name: str
    kind: IssueKind
    description: str = ""
    #: discrete: the item values, in file order, and each item's description.
    items: tuple[str, ...] = ()
    item_descriptions: tuple[str, ...] = ()
    lower: float = 0.0
    upper: float = 0.0
    #: real issues: how many equal steps the range is cut into (a non-GENIUS hint that
    #: ``negotiate export genius`` writes; GENIUS ignores it).
    discretization: int | None = None


@dataclass(frozen=True)
class LinearEvaluator:
    """u(x) = clip(intercept + slope · x, 0, 1), in the issue's own units."""

    intercept: float
    slope: float

    def __call__(self, x: float) -> float:
        return min(1.0, max(0.0, self.intercept + self.slope * x))


@dataclass
class GeniusProfile:
    """One party's utility space: raw GENIUS numbers, not yet normalised."""

    path: Path
    weights: dict[int, float] = field(default_factory=dict)
    #: discrete issues: item value → evaluation as written.
    evaluations: dict[int, dict[str, float]] = field(default_factory=dict)
    linear: dict[int, LinearEvaluator] = field(default_factory=dict)
    reservation_value: float = 0.0
    discount: float | None = None


def parse_xml(path: Path) -> Element:
    """The root element of an XML file, parsed without entities or external resources."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise GeniusError(path, "", f"cannot read the file: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise GeniusError(path, "", f"larger than {MAX_FILE_BYTES // 1024 // 1024} MiB; "
                                    "GENIUS domain and profile files are a few KiB")
    try:
        root: Element = SafeElementTree.fromstring(data)
    except DefusedXmlException as error:
        raise GeniusError(path, "", f"refused: the XML declares entities or external "
                                    f"resources ({type(error).__name__}); GENIUS files never "
                                    "need them: remove the <!DOCTYPE …> / <!ENTITY …> "
                                    "declarations") from None
    except ParseError as error:
        line, column = getattr(error, "position", (0, 0))
        raise GeniusError(path, "", f"not well-formed XML at line {line}, column {column + 1}; "
                                    "fix the syntax there") from None
    return root


def is_profile(root: Element) -> bool:
    """Whether a parsed file is a utility-space profile (it weighs or evaluates issues)."""
    return any(True for _ in root.iter("weight")) or any(
        "evaluation" in item.attrib for item in root.iter("item"))


def _number(path: Path, element: str, text: str | None, what: str, fix: str) -> float:
    if text is None:
        raise GeniusError(path, element, f"no {what}; {fix}")
    try:
        value = float(text)
    except ValueError:
        raise GeniusError(path, element, f"{what} {text!r} is not a number; {fix}") from None
    if not math.isfinite(value):
        raise GeniusError(path, element, f"{what} {text!r} is not a finite number; {fix}")
    return value


def _tag(element: Element) -> str:
    shown = " ".join(f'{key}="{element.attrib[key]}"' for key in ("index", "name", "value")
                     if key in element.attrib)
    return f"<{element.tag}{' ' + shown if shown else ''}>"


def _objective(path: Path, root: Element) -> Element:
    objective = root if root.tag == "objective" else root.find(".//objective")
    if objective is None:
        raise GeniusError(path, f"<{root.tag}>", "no <objective> element; a GENIUS domain "
                                                 "lists its issues inside <utility_space>"
                                                 "<objective>")
    nested = objective.find("objective")
    if nested is not None:
        raise GeniusError(path, _tag(nested), "nested objectives are not supported; flatten "
                                              "the issues into the root <objective>")
    return objective


def _issue_kind(path: Path, issue: Element) -> IssueKind:
    kind = (issue.get("vtype") or issue.get("type") or issue.get("etype") or "discrete").lower()
    if kind not in KINDS:
        raise GeniusError(path, _tag(issue), f"unknown issue type {kind!r}; use one of "
                                             f"{', '.join(KINDS)}")
    return kind


def _bounds(path: Path, issue: Element) -> tuple[float, float]:
    holder = issue.find("range")
    source = holder if holder is not None else issue
    fix = "give lowerbound and upperbound (attributes of the issue or of its <range>)"
    low = _number(path, _tag(issue), source.get("lowerbound"), "lowerbound", fix)
    high = _number(path, _tag(issue), source.get("upperbound"), "upperbound", fix)
    if high <= low:
        raise GeniusError(path, _tag(issue), f"upperbound {high:g} is not above lowerbound "
                                             f"{low:g}; swap or widen them")
    return low, high


def _index(path: Path, element: Element) -> int:
    text = element.get("index")
    try:
        return int(text or "")
    except ValueError:
        raise GeniusError(path, _tag(element), f"index {text!r} is not a whole number; number "
                                               "the issues 1, 2, 3 …") from None


def read_domain(path: Path, root: Element) -> list[GeniusIssue]:
    """The issues a domain file declares, in file order."""
    issues: list[GeniusIssue] = []
    for element in _objective(path, root).findall("issue"):
        index, kind = _index(path, element), _issue_kind(path, element)
        name = element.get("name") or ""
        if not name.strip():
            raise GeniusError(path, _tag(element), "the issue has no name; add name=\"…\"")
        if any(issue.index == index for issue in issues):
            raise GeniusError(path, _tag(element), f"issue index {index} is used twice; give "
                                                   "every issue its own index")
        base = GeniusIssue(index=index, name=name, kind=kind,
                           description=element.get("description") or "")
        if kind == "discrete":
            items = element.findall("item")
            values = tuple(item.get("value") or "" for item in items)
            if len(items) < 2 or any(not value.strip() for value in values):
                raise GeniusError(path, _tag(element), "a discrete issue needs two or more "
                                                       "<item value=\"…\"> children")
            if len(set(values)) != len(values):
                raise GeniusError(path, _tag(element), "two items have the same value; give "
                                                       "each item its own value")
            descriptions = tuple(item.get("description") or "" for item in items)
            issues.append(replace(base, items=values, item_descriptions=descriptions))
            continue
        low, high = _bounds(path, element)
        if kind == "integer" and not (low.is_integer() and high.is_integer()):
            raise GeniusError(path, _tag(element), "an integer issue needs whole-number bounds")
        steps = element.get("discretization")
        issues.append(replace(base, lower=low, upper=high, discretization=None if steps is None
                              else _steps(path, _tag(element), steps)))
    if not issues:
        raise GeniusError(path, "<objective>", "no <issue> elements; a domain needs at least "
                                               "one issue")
    return issues


def _steps(path: Path, element: str, text: str) -> int:
    steps = _number(path, element, text, "discretization", "give a whole number of steps")
    if not steps.is_integer() or not 1 <= steps <= 10_000:
        raise GeniusError(path, element, f"discretization {text!r} is not a whole number of "
                                         "steps from 1 to 10000; fix it or remove it")
    return int(steps)


def read_profile(path: Path, root: Element, domain: list[GeniusIssue],
                 domain_path: Path) -> GeniusProfile:
    """One profile, checked against the domain's issues."""
    profile = GeniusProfile(path)
    by_index = {issue.index: issue for issue in domain}
    objective = _objective(path, root)
    seen: set[int] = set()
    for element in objective.findall("issue"):
        index = _index(path, element)
        issue = by_index.get(index)
        if issue is None or (element.get("name") or "") != issue.name:
            raise GeniusError(path, _tag(element), (
                f"this issue is not in the domain {domain_path.name} (its issues: "
                f"{', '.join(f'{i.index}={i.name!r}' for i in domain)}); the profile belongs to "
                "another domain: keep one domain and its profiles per folder"))
        seen.add(index)
        if issue.kind == "discrete":
            profile.evaluations[index] = _item_evaluations(path, element, issue, domain_path)
        else:
            _same_bounds(path, element, issue, domain_path)
            profile.linear[index] = _linear(path, element, issue)
    missing = [issue for issue in domain if issue.index not in seen]
    if missing:
        raise GeniusError(path, "<objective>", (
            f"no evaluator for issue(s) {', '.join(repr(i.name) for i in missing)} of the "
            f"domain {domain_path.name}; add them, or check that this profile belongs to it"))
    for element in objective.findall("weight"):
        index = _index(path, element)
        if index not in by_index:
            raise GeniusError(path, _tag(element), (
                f"weight for issue index {index}, which the domain does not have (indexes: "
                f"{', '.join(str(i) for i in by_index)}); remove it or fix the index"))
        weight = _number(path, _tag(element), element.get("value"), "weight value",
                         "give a number of 0 or more")
        if weight < 0:
            raise GeniusError(path, _tag(element), f"negative weight {weight:g}; weights are "
                                                   "0 or more")
        profile.weights[index] = weight
    unweighted = [issue.name for issue in domain if issue.index not in profile.weights]
    if unweighted:
        raise GeniusError(path, "<objective>", f"no <weight> for issue(s) {unweighted}; add "
                                               "<weight index=\"N\" value=\"…\"/> for each")
    if sum(profile.weights.values()) <= 0:
        raise GeniusError(path, "<objective>", "every weight is 0; give at least one issue a "
                                               "positive weight")
    profile.reservation_value = _reservation(path, root)
    profile.discount = _discount(path, root)
    return profile


def _item_evaluations(path: Path, element: Element, issue: GeniusIssue,
                      domain_path: Path) -> dict[str, float]:
    evaluations: dict[str, float] = {}
    for item in element.findall("item"):
        value = item.get("value") or ""
        if value not in issue.items:
            raise GeniusError(path, _tag(item), (
                f"item {value!r} is not a value of issue {issue.name!r} in the domain "
                f"{domain_path.name} ({', '.join(issue.items)}); the profile belongs to "
                "another domain, or fix the item"))
        evaluation = _number(path, _tag(item), item.get("evaluation"), "evaluation",
                             "give each item evaluation=\"number ≥ 0\"")
        if evaluation < 0:
            raise GeniusError(path, _tag(item), f"negative evaluation {evaluation:g}; "
                                                "evaluations are 0 or more")
        evaluations[value] = evaluation
    unevaluated = [value for value in issue.items if value not in evaluations]
    if unevaluated:
        raise GeniusError(path, _tag(element), f"no evaluation for item(s) {unevaluated}; "
                                               "add an <item value=… evaluation=…> for each")
    return evaluations


def _same_bounds(path: Path, element: Element, issue: GeniusIssue, domain_path: Path) -> None:
    holder = element.find("range")
    source = holder if holder is not None else element
    if source.get("lowerbound") is None and source.get("upperbound") is None:
        return
    low, high = _bounds(path, element)
    if (low, high) != (issue.lower, issue.upper):
        raise GeniusError(path, _tag(element), (
            f"range {low:g}…{high:g} differs from the domain {domain_path.name} "
            f"({issue.lower:g}…{issue.upper:g}); the profile belongs to another domain, or "
            "make the bounds equal"))


def _linear(path: Path, element: Element, issue: GeniusIssue) -> LinearEvaluator:
    evaluator = element.find("evaluator")
    if evaluator is None:
        raise GeniusError(path, _tag(element), "no <evaluator>; add <evaluator "
                                               "ftype=\"linear\" …> to the issue")
    ftype = (evaluator.get("ftype") or "").lower()
    where = f"{_tag(element)} <evaluator ftype=\"{ftype}\">"
    if ftype != "linear":
        raise GeniusError(path, where, f"evaluator type {ftype!r} is not supported; use "
                                       "ftype=\"linear\" (the form GENIUS writes)")
    if issue.kind == "integer":
        fix = "an integer issue's linear evaluator has slope=… and offset=…"
        slope = _number(path, where, evaluator.get("slope"), "slope", fix)
        offset = _number(path, where, evaluator.get("offset"), "offset", fix)
        return LinearEvaluator(intercept=offset - slope * issue.lower, slope=slope)
    fix = "a real issue's linear evaluator has parameter0=… (intercept) and parameter1=… (slope)"
    return LinearEvaluator(
        intercept=_number(path, where, evaluator.get("parameter0"), "parameter0", fix),
        slope=_number(path, where, evaluator.get("parameter1"), "parameter1", fix))


def _reservation(path: Path, root: Element) -> float:
    element = root.find("reservation")
    if element is None:
        return 0.0
    value = _number(path, _tag(element), element.get("value"), "reservation value",
                    "give a number from 0 to 1")
    if not 0.0 <= value <= 1.0:
        raise GeniusError(path, _tag(element), f"reservation value {value:g} is outside "
                                               "[0, 1]; give a utility from 0 to 1")
    return value


def _discount(path: Path, root: Element) -> float | None:
    """GENIUS's discount factor; 0 and 1 mean no discounting, as in GENIUS."""
    element = root.find("discount_factor")
    if element is None:
        return None
    value = _number(path, _tag(element), element.get("value"), "discount factor",
                    "give a number in (0, 1], or 0 / 1 for no discounting")
    if not 0.0 <= value <= 1.0:
        raise GeniusError(path, _tag(element), f"discount factor {value:g} is outside [0, 1]; "
                                               "give a number in (0, 1], or 0 / 1 for none")
    return None if value in (0.0, 1.0) else value
