"""Rich rendering of runs, outcomes and scenarios, kept apart from the data it shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from negotiation.conversation import pass_note, terms_line, utterance
from negotiation.events import Blocked, Move, Outcome, Passed, Transcript, VerdictRecord
from negotiation.model import Scenario
from negotiation.render_conversation import KIND_STYLE, spoken
from negotiation.safe_text import for_terminal, plain
from negotiation.terms import format_value

if TYPE_CHECKING:  # numpy and the analysis load only where a space is analysed
    from negotiation.analysis import SpaceAnalysis
    from negotiation.lifecycle import SignOffs


def scenario_panel(scenario: Scenario, agents: Mapping[str, str], seed: int,
                   rounds: int) -> Panel:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_column(style="dim")
    for org in scenario.organizations:
        table.add_row(for_terminal(org.name), f"[magenta]{for_terminal(agents[org.id])}[/]",
                      for_terminal(org.mission))
    issues = ", ".join(plain(issue.name) for issue in scenario.issues)
    body = Group(Text(plain(scenario.title), style="bold"),
                 Text(f"Issues: {issues}", style="dim"), Text(""), table)
    return Panel(body, title=for_terminal(f"{scenario.id} · seed {seed} · {rounds} rounds"),
                 title_align="left", border_style="blue")


def short_terms(scenario: Scenario, terms: Mapping[str, Any]) -> str:
    """The terms on one line, as plain text (``for_terminal`` it where Rich parses markup)."""
    return plain(terms_line(scenario, terms), one_line=True)


def verdict_view(verdict: VerdictRecord) -> Table:
    """The referee's findings on an agreement, one row per check."""
    table = Table(title=f"Referee: {for_terminal(verdict.level.upper())}",
                  title_justify="left",
                  show_edge=False)
    table.add_column("Check", style="bold")
    table.add_column("Result")
    table.add_column("Finding")
    styles = {"pass": "green", "warn": "yellow", "block": "bold red"}
    for finding in verdict.findings:
        table.add_row(for_terminal(finding["check"].replace("_", " ")),
                      Text(plain(finding["level"]), style=styles.get(finding["level"], "")),
                      for_terminal(finding["message"]))
    return table


def outcome_view(scenario: Scenario, outcome: Outcome, agents: Mapping[str, str]) -> Group:
    parts: list[Any] = []
    if outcome.agreement is not None:
        terms_table = Table(title="Agreed terms", title_justify="left", show_edge=False)
        terms_table.add_column("Issue", style="bold")
        terms_table.add_column("Agreed")
        terms = outcome.agreement.terms
        for issue in scenario.issues:
            terms_table.add_row(for_terminal(issue.name),
                                for_terminal(format_value(issue, terms[issue.id])))
        parts += [Text(f"Agreement in round {outcome.agreement.round + 1}",
                       style="bold green"), terms_table]
    else:
        parts.append(Text(f"No agreement: {plain(outcome.reason)}", style="bold red"))

    parties = Table(title="Parties", title_justify="left", show_edge=False)
    for column in ("Organisation", "Agent", "Utility", "Reservation", "Gain"):
        parties.add_column(column, justify="right" if column in
                           {"Utility", "Reservation", "Gain"} else "left")
    utilities = outcome.utilities or {}
    for org in scenario.organizations:
        reservation = outcome.reservation_values[org.id]
        utility = utilities.get(org.id)
        name, agent = for_terminal(org.name), for_terminal(agents[org.id])
        if utility is None:
            parties.add_row(name, agent, "—", f"{reservation:.3f}", "—")
            continue
        gain = utility - reservation
        style = "green" if gain >= 0 else "red"
        parties.add_row(name, agent, f"{utility:.3f}", f"{reservation:.3f}",
                        Text(f"{gain:+.3f}", style=style))
    parts.append(parties)
    discount = (outcome.fairness or {}).get("discount")
    if isinstance(discount, Mapping):
        parts.append(Text(f"Discounted: {plain(str(discount.get('note', '')))}", style="italic"))
    if outcome.zopa is not None and not outcome.zopa.get("justified", True):
        reasons = "".join(f"\n  - {plain(str(reason))}"
                          for reason in outcome.zopa.get("reasons", []))
        parts.append(Text("Partnership not justified: no outcome met every reservation value; "
                          f"the run went ahead anyway.{reasons}", style="yellow"))
    if outcome.verdict is not None:
        parts.append(verdict_view(outcome.verdict))
    return Group(*parts)


def analysis_view(analysis: SpaceAnalysis) -> Group:
    """Size of the space, the zone of possible agreement and the bargaining solutions."""
    scenario = analysis.scenario
    size = analysis.space.size
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("Outcome space", f"{size:,} possible agreements ({analysis.method})")
    facts.add_row("Feasible", f"{int(analysis.feasible.sum()):,} keep every red line")
    zopa = analysis.zopa_size
    share = zopa / max(len(analysis.outcomes), 1)
    facts.add_row("Zone of possible agreement",
                  f"{zopa:,} outcomes ({share:.1%}) beat every party's reservation value")
    facts.add_row("Pareto frontier", f"{len(analysis.frontier):,} outcomes")
    parts: list[Any] = [Text(plain(scenario.title), style="bold"), facts]
    if zopa == 0:
        lines = "\n".join(f"  - {plain(reason)}" for reason in analysis.blockers().values())
        parts.append(Panel(
            Text("No zone of possible agreement: a partnership on these terms is not "
                 f"justified for these parties.\n{lines}", style="bold red"),
            border_style="red"))
        return Group(*parts)
    points = Table(title="Bargaining solutions", title_justify="left", show_edge=False)
    points.add_column("Solution", style="bold")
    for org in scenario.organizations:
        points.add_column(for_terminal(org.id), justify="right")
    points.add_column("Terms")
    for point in analysis.special_points():
        points.add_row(point.name, *(f"{point.utilities[p]:.3f}" for p in analysis.parties),
                       for_terminal(short_terms(scenario, point.terms)))
    reservation = [f"{r:.3f}" for r in analysis.reservation]
    points.add_row(Text("reservation", style="dim"), *reservation, Text("walk away",
                                                                        style="dim"))
    parts.append(points)
    return Group(*parts)


def profiles_view(scenario: Scenario) -> Table:
    table = Table(title="Parties", title_justify="left", show_lines=True)
    for column in ("Organisation", "Mission", "Capabilities", "Needs", "Contribution"):
        table.add_column(column)
    for org in scenario.organizations:
        table.add_row(Text(plain(org.name), style="bold"), for_terminal(org.mission),
                      for_terminal("\n".join(org.capabilities)),
                      for_terminal("\n".join(org.needs)),
                      for_terminal(f"{org.contribution.value:g}: "
                                   f"{org.contribution.description}"))
    return table


def timeline_view(scenario: Scenario, transcript: Transcript) -> Table:
    """Every move: round, proposer, terms, message, rationale (flagged text marked) and
    the referee's verdict."""
    table = Table(title="Timeline", title_justify="left", show_lines=False)
    table.add_column("Round", justify="right")
    table.add_column("Party", style="bold")
    table.add_column("Move")
    table.add_column("Terms / message / rationale")
    table.add_column("Referee")
    styles = {"pass": "green", "warn": "yellow", "block": "bold red"}
    for event in transcript.events:
        if isinstance(event, Passed):  # the seat stayed idle: no move, no verdict
            table.add_row(for_terminal(event.round + 1), for_terminal(event.party),
                          Text("pass", style=KIND_STYLE["pass"]),
                          Text(pass_note(event.timeout), style="dim italic"), "")
            continue
        if not isinstance(event, Move | Blocked):
            continue
        action = event.action
        lines = [Text(short_terms(scenario, event.terms))] if event.terms is not None else []
        detail = Text("\n").join(lines + spoken(utterance(scenario, event)))
        verdict = event.verdict
        level = "blocked" if isinstance(event, Blocked) else verdict.level if verdict else ""
        table.add_row(for_terminal(event.round + 1), for_terminal(event.party),
                      Text(plain(action.kind), style=KIND_STYLE.get(action.kind, "")),
                      detail,
                      Text(level, style=styles.get(verdict.level if verdict else "", "")))
    return table


def fairness_view(report: Mapping[str, Any]) -> Table:
    table = Table(title=f"Fairness report ({report['method']})", title_justify="left",
                  show_edge=False)
    table.add_column("Measure", style="bold")
    table.add_column("Value", justify="right")

    def shown(value: Any) -> str:
        return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) \
            else str(value)

    table.add_row("Nash product / best possible", shown(report["nash_ratio"]))
    table.add_row("Distance to Kalai–Smorodinsky point", shown(report["ks_distance"]))
    table.add_row("Lowest gain over reservation", shown(report["lowest_gain"]))
    table.add_row("Welfare (sum of utilities)", shown(report["welfare"]))
    table.add_row("Distance to Pareto frontier", shown(report["pareto_distance"]))
    table.add_row("Pareto-dominated", "yes" if report["pareto_dominated"] else "no")
    for issue_id, entry in report["shares"].items():
        table.add_row(for_terminal(f"{issue_id}: gap to {entry['basis']} share"),
                      f"{entry['deviation']:.0f} points")
    return table


def _term(value: Any) -> str:
    if isinstance(value, Mapping):
        return plain(" · ".join(f"{party} {share}" for party, share in value.items()))
    return plain(value)


def campaign_view(manifest: Mapping[str, Any]) -> Group:
    """A campaign's stages, how the terms in force evolved, and each party's value and
    trust after every stage (from ``campaign.json``)."""
    stages = manifest["stages"]
    overview = Table(title=for_terminal(f"{manifest['title']} · seed {manifest['seed']}"),
                     title_justify="left")
    for column in ("#", "Stage", "Kind", "Outcome", "Rounds", "Transcript"):
        overview.add_column(column, overflow="fold")
    styles = {"agreement": "bold green", "evaluated": "cyan", "no_agreement": "red"}
    for stage in stages:
        overview.add_row(for_terminal(stage["index"] + 1), for_terminal(stage["id"]),
                         for_terminal(stage["kind"]),
                         Text(plain(stage["reason"]), style=styles.get(stage["status"], "")),
                         "" if stage["rounds"] is None else for_terminal(stage["rounds"]),
                         for_terminal(stage["transcript"]))
    parts: list[Any] = [overview]
    negotiated = [stage for stage in stages if stage["kind"] == "negotiate"]
    if negotiated:
        terms = Table(title="Terms in force after each negotiation", title_justify="left")
        terms.add_column("Issue", style="bold")
        issues: dict[str, None] = {}
        for stage in negotiated:
            terms.add_column(for_terminal(stage["id"]), overflow="fold")
            issues.update(dict.fromkeys(stage["terms"] or {}))
        for issue in issues:
            row, previous = [], None
            for stage in negotiated:
                value = (stage["terms"] or {}).get(issue)
                text = "—" if value is None else _term(value)
                row.append(Text(text, style="dim" if text == previous else ""))
                previous = text
            terms.add_row(for_terminal(issue), *row)
        parts.append(terms)
    values = Table(title="Value of the agreement in force (realised, after an evaluation) "
                         "and mean trust in partners τ", title_justify="left")
    values.add_column("Party", style="bold")
    parties: dict[str, None] = {}
    for stage in stages:
        values.add_column(for_terminal(stage["id"]), justify="right")
        parties.update(dict.fromkeys(stage["parties"]))
    for party in parties:
        cells = []
        for stage in stages:
            value = stage["values"].get(party)
            trust = stage["trust"].get(party) or {}
            tau = sum(trust.values()) / len(trust) if trust else None
            cells.append("" if value is None and tau is None else
                         f"{'—' if value is None else f'{value:.2f}'}"
                         f"{'' if tau is None else f'  τ {tau:.2f}'}")
        values.add_row(for_terminal(party), *cells)
    parts.append(values)
    if manifest.get("stopped"):
        parts.append(Text(plain(manifest["stopped"]), style="bold red"))
    return Group(*parts)


def signoff_view(signed: SignOffs) -> Table:
    """Who signed for each organisation (with key fingerprints) and who is still missing;
    unsigned sign-offs say plainly that they are not attributable."""
    if signed.attributable:
        title = "Sign-off: Ed25519 signatures of the declared signatories"
    else:
        title = ("Sign-off: [bold yellow]unsigned (not attributable)[/]: the scenario "
                 "declares no signatories, so anyone could have written these")
    table = Table(title=title, title_justify="left")
    for column in ("Organisation", "Decision", "Signed by", "Key", "Event", "Comment"):
        table.add_column(column, overflow="fold")
    for signature in signed.signatures:
        style = "green" if signature.decision == "approve" else "red"
        table.add_row(Text(plain(signature.org or "—")),
                      Text(f"{signature.decision}d", style=style),
                      Text(plain(signature.signer)),
                      signature.fingerprint[:16] + "…" if signature.fingerprint else "unsigned",
                      str(signature.seq), Text(plain(signature.comment or "—")))
    for org, needed in signed.missing().items():
        if signed.decision is None:
            table.add_row(Text(plain(org)), Text("missing", style="yellow"),
                          f"{needed} more signature(s) needed", "", "", "")
    if not signed.signatures and not signed.required:
        table.add_row("—", Text("missing", style="yellow"), "no sign-off yet", "", "", "")
    for problem in signed.problems:
        table.add_row(Text("INVALID", style="bold red"), "", Text(plain(problem)), "", "", "")
    return table
