"""Rich rendering of a run as a conversation, and of what its LLM agents used.

Each turn is a row: round, party (a colour per party), move, then the terms, the party's
message, its rationale and the referee's marks, wrapped under one another.  A text the
injection check found instruction-like is marked ``⚠ flagged``; a move the referee did
not deliver is struck through and followed by ``✖ BLOCKED:`` and what the party was told.
Every recorded text reaches Rich as ``Text`` built from ``plain`` (never parsed as markup).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from negotiation.conversation import TEXT_AUTHOR, Utterance
from negotiation.safe_text import plain
from negotiation.usage import Usage, total_usage, usage_by_party

# Party colours stay clear of the green, red and yellow that mark accepts, walk-aways,
# blocks and flags.
PALETTE = ("cyan", "magenta", "blue", "bright_cyan", "bright_magenta", "bright_blue",
           "deep_sky_blue1", "orchid")
KIND_STYLE = {"propose": "bold", "accept": "bold green", "walk_away": "bold red",
              "text": "bold", "pass": "dim"}
_PARTY_WIDTH = 12  # wide enough for most ids; longer ones widen the column
#: A model may write pages; the console shows this much of each text, the transcript all.
SHOWN_CHARACTERS = 1200


class ConversationStyle:
    """A colour per party (in the scenario's order) and the column widths every turn
    shares, so turns printed one by one line up."""

    def __init__(self, parties: Sequence[str], visible: set[str] | None = None) -> None:
        self.colours = {party: PALETTE[index % len(PALETTE)]
                        for index, party in enumerate(parties)}
        self.colours[TEXT_AUTHOR] = "white"
        self.party_width = max([_PARTY_WIDTH, *(len(plain(p, one_line=True))
                                                for p in parties)])
        self.visible = visible

    def colour(self, party: str) -> str:
        return self.colours.get(party, "white")


def shortened(text: str) -> str:
    """``text`` cut to :data:`SHOWN_CHARACTERS`, saying how much more the transcript holds."""
    if len(text) <= SHOWN_CHARACTERS:
        return text
    return (f"{text[:SHOWN_CHARACTERS]}… (+{len(text) - SHOWN_CHARACTERS:,} characters: "
            "the transcript has them all)")


def _said(label: str, text: str, style: str, flagged: bool, blocked: bool) -> Text:
    line = Text()
    if flagged:
        line.append("⚠ flagged ", style="bold yellow")
        style = "yellow"
    line.append(label, style="dim")
    line.append(shortened(plain(text)), style=f"{style} strike" if blocked else style)
    return line


def spoken(turn: Utterance, colour: str = "") -> list[Text]:
    """What the party said: its message in quotes and its rationale after ``why:``, each
    marked ``⚠ flagged`` when instruction-like and struck through when blocked."""
    blocked = turn.blocked is not None
    lines = []
    if turn.message:
        lines.append(_said("“", turn.message, colour, "message" in turn.flagged, blocked))
        lines[-1].append("”", style="dim")
    if turn.rationale:
        lines.append(_said("why: ", turn.rationale, "italic dim",
                           "rationale" in turn.flagged, blocked))
    return lines


def turn_view(turn: Utterance, style: ConversationStyle) -> Table:
    """One turn of the conversation, wrapped to the console's width."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=4, no_wrap=True)
    grid.add_column(width=style.party_width, overflow="fold")
    grid.add_column(width=9, no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    colour = style.colour(turn.party)
    blocked = turn.blocked is not None
    lines: list[Text] = []
    if turn.terms is not None:
        terms = Text(plain(turn.terms), style="strike dim" if blocked else "")
        shown = {party: utility for party, utility in (turn.utilities or {}).items()
                 if style.visible is None or party in style.visible}
        if shown and not blocked:
            terms.append("  [" + " ".join(f"{plain(party, one_line=True)}={utility:.2f}"
                                          for party, utility in shown.items()) + "]",
                         style="dim")
        lines.append(terms)
    lines += spoken(turn, colour)
    if turn.note:
        lines.append(Text(plain(turn.note), style="dim italic"))
    lines += [Text(f"⚠ {plain(warning)}", style="yellow") for warning in turn.warnings]
    if turn.blocked is not None:
        lines.append(Text(f"✖ BLOCKED: {plain(turn.blocked)}", style="bold red"))
    grid.add_row(Text(f"R{turn.round + 1:>3}", style="dim"),
                 Text(plain(turn.party, one_line=True), style=f"bold {colour}"),
                 Text(plain(turn.kind, one_line=True), style=KIND_STYLE.get(turn.kind, "")),
                 Text("\n").join(lines) if lines else Text(""))
    return grid


def conversation_view(turns: Iterable[Utterance], style: ConversationStyle) -> Group:
    """A whole conversation (``negotiate report --conversation``)."""
    return Group(*(turn_view(turn, style) for turn in turns))


def cost_text(usage: Usage) -> str:
    """The cost in US dollars, saying when some or all of it is unknown (no price)."""
    if usage.calls and usage.unpriced_calls == usage.calls:
        return "unknown (no price)"
    cost = usage.cost_usd
    shown = f"${cost:,.2f}" if cost >= 1 else f"${cost:.6f}"  # small runs cost fractions
    return shown if usage.cost_known else f"≥ {shown} ({usage.unpriced_calls} unpriced)"


def usage_view(by_party: Mapping[str, Usage], agents: Mapping[str, str]) -> Table | None:
    """Model calls, HTTP attempts, tokens in/out and cost per party and in total; ``None``
    when no LLM agent made a call (rule-based runs show nothing)."""
    if not by_party:
        return None
    table = Table(title="LLM use", title_justify="left", show_edge=False)
    for column in ("Party", "Agent", "Calls", "Attempts", "Tokens in", "Tokens out",
                   "Cost (USD)"):
        table.add_column(column, justify="left" if column in {"Party", "Agent"} else "right",
                         overflow="fold")

    def cells(usage: Usage) -> list[str]:
        return [f"{usage.calls:,}", f"{usage.attempts:,}", f"{usage.tokens_in:,}",
                f"{usage.tokens_out:,}", cost_text(usage)]

    for party, usage in by_party.items():
        table.add_row(Text(plain(party, one_line=True), style="bold"),
                      Text(plain(agents.get(party, ""), one_line=True)), *cells(usage))
    table.add_section()
    table.add_row(Text("Total", style="bold"), "", *cells(total_usage(by_party)),
                  style="bold")
    return table


def usage_of_run(events: Iterable[object], agents: Mapping[str, str]) -> Table | None:
    """:func:`usage_view` of a run's events (``None`` when it made no LLM call)."""
    return usage_view(usage_by_party(events), agents)
