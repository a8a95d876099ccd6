"""NegMAS negotiators as seats: ``negmas:NAME`` plays an organisation's turns.

A seat hosts one NegMAS SAO negotiator (Mohammad & Nakadai's NegMAS library) inside our
stacked alternating-offers protocol, under our referee and transcript.  On its first turn the
seat builds the negotiator's world from the party's own ``View`` only: the outcome space and
its organisation's utility function, reservation value and red lines
(:mod:`agents.negmas_domain`).  Each turn it shows the negotiator the ``SAOState`` that
NegMAS's ``SAOMechanism`` would show at that point — step = our round (both count a round as
one turn per party, so there is no round offset), relative time ``(round + 1) / (rounds + 1)``,
the standing offer and who made it — replays the other parties' moves since its last turn
through ``on_partner_proposal`` / ``on_partner_response``, and translates the answer:

    ACCEPT_OFFER → accept;  REJECT_OFFER with an outcome → propose it;
    REJECT_OFFER without one, END_NEGOTIATION, LEAVE → walk away.

NAME resolves only among NegMAS's own SAO negotiator classes (:func:`negotiator_classes`),
never as an import path.  NegMAS's negotiators draw from Python's global ``random``; a seat
swaps in its own stream, seeded from the run's seed and the party, for the length of each
call, so a run is repeatable and nothing else's randomness is touched.
"""

from __future__ import annotations

import functools
import inspect
import random
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from agents import StrategyError
from agents.base import View, derive_seed
from negotiation.model import Accept, Action, Offer, Propose, WalkAway
from negotiation.terms import describe_change

if TYPE_CHECKING:
    from agents.negmas_domain import Domain, Table

PREFIX = "negmas:"
INSTALL = "pip install 'partnership-negotiation[negmas]' (or: pip install 'negmas>=0.11')"

#: Base classes and negotiators that need other negotiators or a controller to work: never
#: seated on their own.
_NOT_SEATS = frozenset({"SAONegotiator", "SAOPRNegotiator", "SAOCallNegotiator",
                        "UtilBasedNegotiator", "ControlledSAONegotiator"})
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: NegMAS responses that end an SAO negotiation for this seat (by name: ``LEAVE`` is newer
#: than NegMAS 0.11); an accept with nothing to accept and a rejection without a
#: counter-offer end it too, as ``SAOMechanism`` rules.
_ENDS = frozenset({"END_NEGOTIATION", "LEAVE", "ACCEPT_OFFER", "REJECT_OFFER"})


class NegMASSeatError(StrategyError):
    """A ``negmas:NAME`` seat that cannot be made: NegMAS missing, or an unknown NAME."""


def is_negmas(spec: str) -> bool:
    return spec.strip().startswith(PREFIX)


def _negmas_missing() -> NegMASSeatError:
    return NegMASSeatError(f"NegMAS is not installed, and a 'negmas:' seat needs it: {INSTALL}")


@functools.cache
def negotiator_classes() -> dict[str, type]:
    """The allow-list: NegMAS's own SAO negotiators that can sit alone, by class name."""
    try:
        import negmas.sao.negotiators as sao_negotiators
        from negmas.gb.negotiators.base import GBNegotiator
    except ImportError:
        raise _negmas_missing() from None
    classes: dict[str, type] = {}
    for name in sao_negotiators.__all__:
        candidate = getattr(sao_negotiators, name, None)
        if (inspect.isclass(candidate) and issubclass(candidate, GBNegotiator)
                and not inspect.isabstract(candidate) and name not in _NOT_SEATS
                and "Meta" not in name and candidate.__module__.startswith("negmas.")):
            classes[name] = candidate
    return dict(sorted(classes.items()))


def negmas_version() -> str | None:
    """The installed NegMAS version, or ``None`` when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("negmas")
    except PackageNotFoundError:
        return None


def negmas_agent(spec: str, *, party: str, seed: int) -> NegMASSeat:
    """The seat named by ``negmas:NAME``; ``NegMASSeatError`` (exit 2) for anything else."""
    name = spec.strip()[len(PREFIX):].strip()
    if not _NAME.fullmatch(name):
        raise NegMASSeatError(f"'{spec}': write negmas:NAME with NAME one of NegMAS's "
                              "negotiator classes (see 'negotiate agents list'); import paths "
                              "are not accepted")
    classes = negotiator_classes()
    if name not in classes:
        raise NegMASSeatError(f"'{spec}': NegMAS has no seatable negotiator named '{name}'; "
                              f"choose one of {', '.join(classes)}")
    return NegMASSeat(name, classes[name], seed=derive_seed(seed, party))


def describe(cls: type) -> str:
    """The first paragraph of a negotiator class's docstring, on one line."""
    paragraph = (inspect.getdoc(cls) or "").split("\n\n")[0]
    return " ".join(paragraph.split()) or cls.__name__


def catalogue_rows() -> list[tuple[str, str, str]]:
    """``agents list`` rows: each seatable NegMAS negotiator, or how to install NegMAS."""
    try:
        classes = negotiator_classes()
    except NegMASSeatError:
        return [(f"{PREFIX}NAME", "not installed", f"NegMAS's negotiators as seats: {INSTALL}")]
    return [(f"{PREFIX}{name}", f"NegMAS {negmas_version()}", describe(cls))
            for name, cls in classes.items()]


class NegMASSeat:
    """One organisation's seat played by a NegMAS SAO negotiator."""

    def __init__(self, name: str, negotiator_class: type, *, seed: int = 0) -> None:
        self.name = name
        self.negotiator_class = negotiator_class
        self._random = random.Random(seed)
        self._negotiator: Any = None
        self._domain: Domain | None = None
        self._table: Table | None = None
        self._seen = 0
        self._round: int | None = None
        self._last_offer: Offer | None = None
        #: Our last move's offer when that move was a proposal (the one a block refers to).
        self._proposed: Offer | None = None

    @property
    def negotiator(self) -> Any:
        """The NegMAS negotiator (``None`` before the first turn)."""
        return self._negotiator

    async def act(self, view: View) -> Action:
        if not view.legal <= {"propose", "accept", "walk_away"}:
            raise NegMASSeatError(f"a NegMAS SAO negotiator cannot make the moves "
                                  f"{sorted(view.legal)}: seat it in alternating_offers")
        with self._own_randomness():
            if self._negotiator is None:
                self._sit_down(view)
            if view.feedback is not None:
                self._learn(view)
            state = self._state(view)
            self._catch_up(view, state)
            response = self._negotiator(state)
        action = self._translate(view, response)
        self._proposed = action.offer if isinstance(action, Propose) else None
        return action

    @contextmanager
    def _own_randomness(self) -> Iterator[None]:
        saved = random.getstate()
        random.setstate(self._random.getstate())
        try:
            yield
        finally:
            self._random.setstate(random.getstate())
            random.setstate(saved)

    def _sit_down(self, view: View) -> None:
        from agents.negmas_domain import Domain, Table, Valuation, utility_function

        self._domain = Domain.of(view.space, view.scenario.id)
        ufun = utility_function(self._domain,
                                Valuation(self._domain, view.utility, view.preferences))
        self._negotiator = self.negotiator_class(id=view.party, name=view.party)
        self._table = Table(self._domain, view.state.parties, view.party, self._negotiator,
                            ufun, n_steps=view.state.max_rounds)
        self._negotiator._on_negotiation_start(self._state(view))

    def _learn(self, view: View) -> None:
        """The referee blocked our last proposal: from now on it and every outcome crossing
        the red lines the referee disclosed are worth nothing to the negotiator.  It gets a
        new utility function object (``set_preferences``): negotiators that cache their
        ranking of outcomes re-rank only for a new one, although NegMAS 0.16 calls the swap
        deprecated (a warning this call silences)."""
        from agents.negmas_domain import utility_function

        assert self._domain is not None and view.feedback is not None
        valuation = self._negotiator.ufun.mapping
        valuation.forbid(view.feedback.red_lines,
                         [] if self._proposed is None else [self._domain.outcome(self._proposed)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self._negotiator.set_preferences(utility_function(self._domain, valuation))

    def _state(self, view: View) -> Any:
        from agents.negmas_domain import mechanism_state

        assert self._domain is not None and self._table is not None
        state = view.state
        # Our own offer still standing (the other side's move was blocked) is nothing to
        # respond to: the negotiator is asked for a proposal, as at the opening.
        standing = state.standing_offer if state.standing_proposer != view.party else None
        this_round = [m for m in view.history if m.round == state.round]
        offers = [(m.party, self._domain.outcome(m.action.offer)) for m in this_round
                  if isinstance(m.action, Propose)]
        shown = mechanism_state(
            step=state.round, n_steps=state.max_rounds, n_negotiators=len(state.parties),
            current_offer=None if standing is None else self._domain.outcome(standing),
            current_proposer=None if standing is None else state.standing_proposer,
            n_acceptances=0 if standing is None else len(state.accepted_by) + 1,
            new_offers=offers, last_negotiator=view.history[-1].party if view.history else None)
        self._table.shown = shown
        return shown

    def _catch_up(self, view: View, state: Any) -> None:
        """Tell the negotiator what the others did since its last turn, as ``SAOMechanism``
        does: a response to the offer then standing, then the counter-offer if any."""
        from agents.negmas_domain import ResponseType

        assert self._domain is not None
        standing: Offer | None = None
        for move in view.history[:self._seen]:
            if isinstance(move.action, Propose):
                standing = move.action.offer
        for move in view.history[self._seen:]:
            self._round_starts(move.round, state)
            action = move.action
            if move.party != view.party:
                if standing is not None:
                    response = ResponseType.ACCEPT_OFFER if isinstance(action, Accept) \
                        else ResponseType.REJECT_OFFER if isinstance(action, Propose) \
                        else ResponseType.END_NEGOTIATION
                    self._negotiator.on_partner_response(
                        state=state, partner_id=move.party,
                        outcome=self._domain.outcome(standing), response=response)
                if isinstance(action, Propose):
                    self._negotiator.on_partner_proposal(
                        state=state, partner_id=move.party,
                        offer=self._domain.outcome(action.offer))
            if isinstance(action, Propose):
                standing = action.offer
        self._seen = len(view.history)
        self._round_starts(state.step, state)

    def _round_starts(self, step: int, state: Any) -> None:
        if self._round is None or self._round < step:
            self._round = step
            self._negotiator.on_round_start(state)

    def _translate(self, view: View, response: Any) -> Action:
        from agents.negmas_domain import ResponseType

        assert self._domain is not None
        kind, outcome = response.response, response.outcome
        label = f"NegMAS {self.name}"
        if kind == ResponseType.ACCEPT_OFFER and "accept" in view.legal:
            return Accept(rationale=f"{label} accepts the standing offer.")
        if kind == ResponseType.REJECT_OFFER and outcome is not None:
            offer = self._domain.offer(outcome)
            change = describe_change(view.scenario.issues,
                                     None if self._last_offer is None
                                     else self._last_offer.terms, offer.terms)
            self._last_offer = offer
            return Propose(offer=offer, rationale=f"{label}: {change}.")
        if kind.name in _ENDS:
            return WalkAway(rationale=f"{label} ends the negotiation.")
        raise NegMASSeatError(f"{label} answered {kind.name}, which alternating offers "
                              "cannot express (a turn is an accept, an offer or a walk-away)")
