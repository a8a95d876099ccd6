"""Plain-language rendering of terms: one value, a full offer, and what changed between two."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from negotiation.model import DiscreteIssue, Issue, NumericIssue, TermValue

if TYPE_CHECKING:
    from negotiation.utility import OutcomeSpace


def format_value(issue: Issue, value: TermValue) -> str:
    if isinstance(value, dict):
        return " / ".join(f"{party} {share}%" for party, share in value.items())
    if isinstance(issue, DiscreteIssue):
        text = str(value)
        label = issue.labels.get(text)
        return label if label is not None else text.replace("_", " ")
    if isinstance(issue, NumericIssue) and issue.unit and isinstance(value, int | float):
        number = f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"
        return f"{number} {issue.unit}"
    return str(value)


def describe_terms(issues: Sequence[Issue], terms: Mapping[str, TermValue]) -> str:
    return "; ".join(f"{issue.name}: {format_value(issue, terms[issue.id])}"
                     for issue in issues if issue.id in terms)


def describe_change(issues: Sequence[Issue], before: Mapping[str, TermValue] | None,
                    after: Mapping[str, TermValue]) -> str:
    """``"moves on A (x → y), B (p → q)"`` or ``"repeats its offer"``."""
    if before is None:
        return "opens with the terms it prefers"
    if before is after:  # the same shared offer again: nothing to compare
        return "repeats its offer"
    changed = [
        f"{issue.name} ({format_value(issue, before[issue.id])} → "
        f"{format_value(issue, after[issue.id])})"
        for issue in issues
        if before.get(issue.id) != after.get(issue.id)
    ]
    if not changed:
        return "repeats its offer"
    return "moves on " + ", ".join(changed)


#: At most this many change texts are remembered per outcome space.
CHANGE_TEXTS_LIMIT = 65_536


def describe_outcome_change(space: OutcomeSpace, before: int | None, after: int) -> str:
    """:func:`describe_change` between two outcomes of ``space``, in the same words, read
    from the space's value texts (a rule-based agent describes every offer it makes).  The
    text of a pair depends on the space alone: it is remembered there, for every run."""
    if before is None:
        return "opens with the terms it prefers"
    if before == after:  # no digit differs: the loop's answer, without it
        return "repeats its offer"
    texts, key = space._change_texts, before * space.size + after
    text = texts.get(key)
    if text is None:
        if len(texts) >= CHANGE_TEXTS_LIMIT:
            texts.clear()
        text = texts[key] = _outcome_change(space, before, after)
    return text


def _outcome_change(space: OutcomeSpace, before: int, after: int) -> str:
    changed = []
    for issue, (name, stride, radix, texts) in enumerate(space.value_texts):
        old, new = before // stride % radix, after // stride % radix
        if old != new:
            changed.append(f"{name} ({texts.get(old) or space.value_text(issue, old)} → "
                           f"{texts.get(new) or space.value_text(issue, new)})")
    return "moves on " + ", ".join(changed)  # two outcomes differ in some issue
