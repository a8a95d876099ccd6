"""A person at the terminal takes one organisation's seat.

They see their own confidential brief, the public history, the standing offer and what it
is worth to them; they accept, counter (guided issue by issue, with validation and their
utility shown before they confirm) or walk away.  The referee applies to them as to any
agent.  Ctrl-C propagates as ``KeyboardInterrupt``; the driver then closes the transcript
with an ``aborted`` event.
"""

from __future__ import annotations

import math
import signal

from rich.console import Console, Group
from rich.panel import Panel
from rich.prompt import Confirm, Prompt
from rich.table import Table
from rich.text import Text

from agents.base import (
    IDLE_PASS,
    STAND_IN_FAILED,
    StandInFailed,
    TurnPassed,
    View,
    claims_stand_in,
)
from negotiation.model import (
    ACTION,
    Accept,
    Action,
    DiscreteIssue,
    Issue,
    NumericIssue,
    Offer,
    Propose,
    SplitIssue,
    TermValue,
    WalkAway,
)
from negotiation.safe_text import for_terminal, plain
from negotiation.terms import describe_terms, format_value
from negotiation.utility import InvalidOfferError

#: How many earlier moves are shown before each turn.
HISTORY_SHOWN = 6


class HumanAgent:
    """Prompts a person for each move of one organisation."""

    #: A resumed run takes this agent's earlier moves from the transcript.
    replay_from_transcript = True

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, emoji=False)
        self._briefed = False

    async def act(self, view: View) -> Action:
        return self.prompt(view)

    def prompt(self, view: View) -> Action:
        """Ask the person for this turn's move."""
        # The event loop's own SIGINT handler only cancels tasks, which cannot interrupt a
        # blocking read from the terminal; while we wait for the person, Ctrl-C must raise.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return self._turn(view)
        finally:
            signal.signal(signal.SIGINT, previous)

    def _turn(self, view: View) -> Action:
        out = self.console
        if not self._briefed:
            out.print(self._brief(view))
            self._briefed = True
        out.rule(f"Your turn — round {view.state.round + 1} of {view.state.max_rounds}")
        self._show_history(view)
        if view.feedback is not None:
            out.print(f"[bold red]{for_terminal(view.feedback.message)}[/]")
        standing = view.standing_offer
        if standing is not None:
            value = view.utility(standing)
            out.print(f"Standing offer from [bold]{for_terminal(view.state.standing_proposer)}[/]: "
                      f"{for_terminal(describe_terms(view.scenario.issues, standing.terms))}")
            out.print(f"  worth [bold]{value:.3f}[/] to you (your reservation value is "
                      f"{view.preferences.reservation_value:.3f})")
        choices = [c for c in ("accept", "counter", "walk") if c != "accept"
                   or "accept" in view.legal]
        default = "accept" if "accept" in choices and standing is not None and \
            view.utility(standing) >= view.preferences.reservation_value else "counter"
        while True:
            choice = Prompt.ask("Your move", choices=choices, default=default, console=out)
            if choice == "accept":
                reason = self._rationale("Why do you accept?")
                return Accept(rationale=reason)
            if choice == "walk":
                if Confirm.ask("Walk away and end the negotiation without a deal?",
                               default=False, console=out):
                    return WalkAway(rationale=self._rationale("Why do you walk away?"))
                continue
            offer = self._counter(view)
            if offer is not None:
                return Propose(offer=offer, rationale=self._rationale("Why this offer?"))

    def _brief(self, view: View) -> Panel:
        prefs = view.preferences
        table = Table(show_edge=False, box=None)
        table.add_column("Issue", style="bold")
        table.add_column("Weight", justify="right")
        table.add_column("What you value")
        for issue in view.scenario.issues:
            fn = prefs.values.get(issue.id)
            if fn is None:
                wanted = "—"
            elif fn.scores is not None:
                wanted = ", ".join(f"{format_value(issue, o)} {s:g}"
                                   for o, s in sorted(fn.scores.items(), key=lambda i: -i[1]))
            elif fn.points is not None:
                wanted = " · ".join(f"{x:g}→{u:g}" for x, u in fn.points)
            else:
                wanted = f"the {'higher' if fn.prefer == 'high' else 'lower'} the better"
            table.add_row(for_terminal(issue.name), f"{prefs.weights.get(issue.id, 0):.2f}",
                          for_terminal(wanted))
        lines = [f"Reservation value: {prefs.reservation_value:.2f}"
                 + (f" — without a deal: {prefs.batna}" if prefs.batna else "")]
        lines += [f"Red line: {r.issue} {r.op} {r.value}"
                  + (f" ({r.party})" if r.party else "") + (f" — {r.reason}" if r.reason else "")
                  for r in prefs.red_lines]
        return Panel(Group(table, Text(plain("\n".join(lines)))),
                     title=f"Confidential brief: you are {for_terminal(view.party)}",
                     border_style="magenta")

    def _show_history(self, view: View) -> None:
        for move in list(view.history)[-HISTORY_SHOWN:]:
            action = move.action
            text = describe_terms(view.scenario.issues, action.offer.terms) \
                if isinstance(action, Propose) else action.rationale
            self.console.print(f"  R{move.round + 1} {for_terminal(move.party)} {action.kind}: "
                               f"[dim]{for_terminal(text, one_line=True)}[/]")

    def _rationale(self, question: str) -> str:
        while True:
            text = Prompt.ask(question, console=self.console).strip()
            if claims_stand_in(text):
                self.console.print("[red]Say it in your own words: this is how the idle "
                                   "strategy's moves are marked, and this move is yours.[/]")
                continue
            if text:
                return text
            self.console.print("[red]A short reason is required: every move is recorded "
                               "with who made it and why.[/]")

    def _counter(self, view: View) -> Offer | None:
        standing = view.standing_offer
        terms: dict[str, TermValue] = {}
        for issue in view.scenario.issues:
            current = standing.terms[issue.id] if standing is not None else None
            terms[issue.id] = self._ask_value(issue, current)
        try:
            value = view.utility(terms)
        except InvalidOfferError as error:
            self.console.print(f"[red]{for_terminal(str(error))}[/]")
            return None
        summary = describe_terms(view.scenario.issues, terms)
        self.console.print(f"Your counter-offer: {for_terminal(summary)}")
        self.console.print(f"  worth [bold]{value:.3f}[/] to you (reservation "
                           f"{view.preferences.reservation_value:.3f})")
        if Confirm.ask("Send this offer?", default=True, console=self.console):
            return Offer(terms=terms)
        return None

    def _ask_value(self, issue: Issue, current: TermValue | None) -> TermValue:
        out = self.console
        if isinstance(issue, DiscreteIssue):
            for number, option in enumerate(issue.options, start=1):
                out.print(f"  {number}. {for_terminal(format_value(issue, option))}")
            default = str(issue.options.index(str(current)) + 1) if current is not None else "1"
            choices = [str(n) for n in range(1, len(issue.options) + 1)]
            picked = Prompt.ask(for_terminal(issue.name), choices=choices, default=default,
                                console=out)
            return issue.options[int(picked) - 1]
        if isinstance(issue, NumericIssue):
            while True:
                raw = Prompt.ask(for_terminal(f"{issue.name} ({issue.min:g}–{issue.max:g} in "
                                              f"steps of {issue.step:g} {issue.unit})".strip()),
                                 default=None if current is None else str(current),
                                 console=out)
                try:
                    amount = float(raw or "")
                except ValueError:
                    out.print("[red]Please type a number.[/]")
                    continue
                steps = (amount - issue.min) / issue.step
                if issue.min <= amount <= issue.max and abs(steps - round(steps)) < 1e-9:
                    return int(amount) if amount.is_integer() else amount
                out.print(f"[red]{amount:g} is not on the grid {issue.min:g}, "
                          f"{issue.min + issue.step:g}, … {issue.max:g}.[/]")
        assert isinstance(issue, SplitIssue)
        return self._ask_split(issue, current)

    def _ask_split(self, issue: SplitIssue, current: TermValue | None) -> dict[str, int]:
        out = self.console
        while True:
            shares: dict[str, int] = {}
            remaining = 100
            for party in issue.parties[:-1]:
                default = str(current[party]) if isinstance(current, dict) else None
                raw = Prompt.ask(for_terminal(f"{issue.name}: share of {party} "
                                              f"(%, steps of {issue.step})"),
                                 default=default, console=out)
                try:
                    shares[party] = int(raw or "")
                except ValueError:
                    shares[party] = -1
                remaining -= shares[party]
            shares[issue.parties[-1]] = remaining
            if all(0 <= v <= 100 and v % issue.step == 0 for v in shares.values()):
                out.print(f"  → {for_terminal(format_value(issue, shares))}")
                return shares
            out.print(f"[red]Shares must be whole multiples of {issue.step} between 0 and 100 "
                      f"that sum to 100 (the last party, {for_terminal(issue.parties[-1])}, "
                      "gets the rest).[/]")


class InterruptingHuman:
    """A person's seat in a durable (LangGraph) run: each turn pauses the graph with an
    interrupt; whoever resumes it (this terminal, or a later ``negotiate resume``) supplies
    the move, which is validated like any other."""

    replay_from_transcript = True

    async def act(self, view: View) -> Action:
        from langgraph.types import interrupt

        answer = interrupt({"kind": "human_turn", "party": view.party,
                            "round": view.state.round})
        if isinstance(answer, dict) and answer.get("kind") == IDLE_PASS:
            timeout = answer.get("timeout")  # the driver's pass, saved before a crash
            if isinstance(timeout, int | float) and 0 <= timeout < math.inf:
                raise TurnPassed(float(timeout))
        if isinstance(answer, dict) and answer.get("kind") == STAND_IN_FAILED:
            raise StandInFailed(str(answer.get("error")))
        return ACTION.validate_python(answer)
