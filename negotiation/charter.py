"""The partnership charter: a signed-off (or visibly pending) agreement in plain language.

Built from the transcript alone.  Markdown comes from a Jinja2 template; HTML is that
Markdown rendered by markdown-it-py, wrapped in one self-contained page with its style
sheet inline and the plots (offers in utility space, each party's utility of each offer by
round) embedded as data URIs.
"""

from __future__ import annotations

import base64
import html
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markdown_it import MarkdownIt

from negotiation import files
from negotiation.analysis import SpaceAnalysis
from negotiation.conversation import conversation
from negotiation.errors import RefusedError
from negotiation.lifecycle import Signature, Status, sign_offs, status_of
from negotiation.model import DiscreteIssue, SplitIssue
from negotiation.safe_text import for_markdown, plain
from negotiation.terms import format_value
from negotiation.transcript import embedded_scenario, negotiation_of, read_transcript

Format = Literal["md", "html"]


class CharterError(RefusedError):
    """A transcript that has no agreement to write a charter for."""


class _Markdown(str):
    """Text that is already Markdown: escaped data, a code span, a link target."""


def _as_data(value: object) -> object:
    """Every ``{{ value }}`` of the template is data, escaped, unless a filter already made
    it Markdown: a scenario or agent text can never add a heading, a link or raw HTML."""
    return value if isinstance(value, _Markdown) else for_markdown(value)


def _paragraphs(value: object) -> _Markdown:
    return _Markdown(for_markdown(value, multiline=True))


def _code(value: object) -> _Markdown:
    """A code span whose fence is longer than any run of backticks inside (CommonMark)."""
    text = " ".join(plain(value).splitlines())
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return _Markdown(f"{fence} {text} {fence}" if text.startswith("`") or text.endswith("`")
                     else f"{fence}{text}{fence}")


def _link(target: object) -> _Markdown:
    """A link target (the plot's file name or data URI) that cannot close the link early."""
    return _Markdown(quote(plain(target), safe=":/;,=+"))


_ENVIRONMENT = Environment(loader=PackageLoader("negotiation", "templates"),
                           undefined=StrictUndefined, keep_trailing_newline=True,
                           autoescape=False, finalize=_as_data)
_ENVIRONMENT.filters.update(paragraphs=_paragraphs, code=_code, link=_link)


def _signed_by(signatures: Sequence[Signature]) -> _Markdown:
    """``Ada for vendor (key `1a2b…`…), Kit for kestrel (…)``: each part escaped once."""
    return _Markdown(", ".join(
        for_markdown(s.signer) + (f" for {for_markdown(s.org)} (key "
                                  f"{_code(s.fingerprint[:16] if s.fingerprint else '')}…)"
                                  if s.org else "")
        for s in signatures))


def charter_context(path: Path, plot: str | None, conversation_section: bool = True,
                    time_plot: str | None = None) -> dict[str, Any]:
    events = read_transcript(path)
    header, status = negotiation_of(events, path), status_of(events)
    if status is Status.TAMPERED:
        raise CharterError(f"{path} has a sign-off that does not verify "
                           f"({sign_offs(events).problems[0]}); no charter is written for it. "
                           "Check it with negotiate verify")
    outcome = events.outcome
    if outcome is None or outcome.agreement is None:
        raise CharterError(f"{path} records no agreement (status: {status.value}); there is "
                           "no charter to write")
    if outcome.fairness is None or outcome.verdict is None or outcome.utilities is None:
        raise CharterError(f"{path} was written before the referee's fairness report existed; "
                           "re-run the negotiation to get a charter")
    scenario = embedded_scenario(header)
    issues = {issue.id: issue for issue in scenario.issues}
    agreed = outcome.agreement.terms
    terms = [{"name": issue.name, "value": format_value(issue, agreed[issue.id]),
              "description": issue.description} for issue in scenario.issues]
    governance = [t for t, issue in zip(terms, scenario.issues, strict=True)
                  if isinstance(issue, DiscreteIssue)]
    shares = []
    for issue_id, entry in outcome.fairness["shares"].items():
        issue = issues[issue_id]
        assert isinstance(issue, SplitIssue)
        for party, actual in entry["actual"].items():
            shares.append({"pot": issue.pot or issue.name, "party": party, "actual": actual,
                           "fair": f"{entry['fair'][party]:.0f}%"})
    reservations, achieved = outcome.reservation_values, outcome.utilities
    utilities = [{"name": org.name, "utility": achieved[org.id],
                  "reservation": reservations[org.id],
                  "gain": achieved[org.id] - reservations[org.id]}
                 for org in scenario.organizations]
    accountability = [{**row, "name": issues[row["issue"]].name,
                       "value": format_value(issues[row["issue"]], row["value"])}
                      for row in outcome.accountability or []]
    signed = sign_offs(events)
    return {
        "scenario": scenario, "header": header, "status": status.value,
        "agreement": outcome.agreement, "terms": terms, "governance": governance,
        "shares": shares, "utilities": utilities, "fairness": outcome.fairness,
        "verdict": outcome.verdict, "accountability": accountability,
        "signatures": signed.signatures, "attributable": signed.attributable,
        "signed_by": _signed_by(signed.signatures),
        "missing": signed.missing() if signed.decision is None else {},
        "transcript_name": path.name, "head_hash": events.head_hash,
        "plot": plot, "time_plot": time_plot,
        "conversation": conversation(scenario, events.events),
        "conversation_section": conversation_section,
    }


def _plot_pngs(path: Path) -> tuple[bytes, bytes]:
    """The offers in utility space and each party's utility of each offer by round."""
    # matplotlib loads only when a plot is drawn
    from negotiation.plots import plot_trace, plot_utility_over_time

    events = read_transcript(path)
    scenario = embedded_scenario(negotiation_of(events, path))
    outcome = events.outcome
    agreement = outcome.utilities if outcome is not None else None
    analysis = SpaceAnalysis(scenario)
    with tempfile.TemporaryDirectory() as folder:
        trace, over_time = Path(folder) / "plot.png", Path(folder) / "over-time.png"
        plot_trace(analysis, events.proposals, agreement, trace)
        plot_utility_over_time(analysis, events.proposals, agreement, over_time,
                               outcome.agreement.round
                               if outcome is not None and outcome.agreement else None)
        return trace.read_bytes(), over_time.read_bytes()


def render_markdown(path: Path, plot: str | None = None,
                    conversation_section: bool = True, time_plot: str | None = None) -> str:
    """The charter in Markdown; its last section replays the conversation unless
    ``conversation_section`` is off (the HTML page folds it into ``<details>`` instead)."""
    return _ENVIRONMENT.get_template("charter.md.j2").render(
        charter_context(path, plot, conversation_section, time_plot))


def _conversation_html(path: Path, render: MarkdownIt) -> str:
    """The conversation as a collapsed ``<details>`` block: the summary is ours, the turns
    are the same escaped Markdown as in the Markdown charter, rendered with raw HTML off."""
    context = charter_context(path, None)
    turns = context["conversation"]
    body = render.render(_ENVIRONMENT.get_template("conversation.md.j2").render(context))
    return (f'<h2>Conversation</h2>\n<details class="conversation">\n<summary>{len(turns)} '
            f"turns: each party's moves, messages and rationales, with the referee's marks"
            f"</summary>\n{body}</details>\n")


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1.5rem; color: #1d2733; line-height: 1.5; }
h1 { border-bottom: 3px solid #1f4e8c; padding-bottom: .3rem; }
h2 { color: #1f4e8c; margin-top: 2rem; }
table { border-collapse: collapse; margin: 1rem 0; width: 100%; font-size: .92rem; }
th, td { border: 1px solid #cfd8e3; padding: .35rem .6rem; text-align: left;
         vertical-align: top; }
th { background: #eef3f9; }
blockquote { margin: 1rem 0; padding: .8rem 1.2rem; font-size: 1.1rem;
             border: 3px solid #1f4e8c; border-radius: 6px; background: #f3f7fc; }
body.pending blockquote, body.rejected blockquote { border-color: #b3261e;
             background: #fdecea; color: #8c1d18; }
body.pending::before { content: "PENDING SIGN-OFF"; position: fixed; top: 40%; left: 8%;
             transform: rotate(-24deg); font-size: 5rem; font-weight: 800;
             color: rgba(179, 38, 30, .12); pointer-events: none; z-index: 10; }
img { max-width: 100%; }
code { background: #eef3f9; padding: 0 .25rem; border-radius: 3px; }
details.conversation summary { cursor: pointer; color: #1f4e8c; }
details.conversation li { margin: .3rem 0; }
"""


def render_html(path: Path) -> str:
    trace, over_time = (base64.b64encode(png).decode() for png in _plot_pngs(path))
    markdown = render_markdown(path, plot=f"data:image/png;base64,{trace}",
                               conversation_section=False,
                               time_plot=f"data:image/png;base64,{over_time}")
    # Raw HTML off, no linkify: what data could smuggle in is shown, never obeyed.
    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = renderer.render(markdown) + _conversation_html(path, renderer)
    status = status_of(read_transcript(path))
    css_class = {Status.RATIFIED: "ratified", Status.REJECTED: "rejected"}.get(status,
                                                                              "pending")
    title = html.escape(plain(charter_context(path, None)["scenario"].title))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>Partnership charter: {title}</title>\n<style>{_STYLE}</style>\n"
            f'</head>\n<body class="{css_class}">\n{body}</body>\n</html>\n')


def write_charter(path: Path, fmt: Format, out: Path | None = None) -> Path:
    """Write the charter of ``path`` next to it (or to ``out``); return the file written."""
    target = out or path.with_suffix(f".charter.{fmt}")
    # Each file is written whole and renamed into place: an earlier charter is replaced,
    # a symlink planted where one should go is refused (files.write_file).
    if fmt == "html":
        return files.write_file(target, render_html(path), replace=True)
    plot_file = target.with_suffix(".png")
    time_file = plot_file.with_name(f"{plot_file.stem}.over-time.png")
    files.refuse_symlink(target)  # before the plots are written: refuse the set up front
    trace, over_time = _plot_pngs(path)
    files.write_file(plot_file, trace, replace=True)
    files.write_file(time_file, over_time, replace=True)
    return files.write_file(target, render_markdown(path, plot=plot_file.name,
                                                    time_plot=time_file.name), replace=True)
