"""The stacked alternating-offers protocol: invariants as hypothesis property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from negotiation.model import Accept, Action, Offer, Propose, WalkAway
from protocols import AlternatingOffers, IllegalActionError, ProtocolState

PROTOCOL = AlternatingOffers()


def offer(n: int) -> Offer:
    return Offer(terms={"x": n})


def make(kind: str, n: int) -> Action:
    if kind == "propose":
        return Propose(offer=offer(n), rationale="test")
    if kind == "accept":
        return Accept(rationale="test")
    return WalkAway(rationale="test")


@st.composite
def games(draw: st.DrawFn) -> tuple[int, int, list[tuple[str, int]]]:
    parties = draw(st.integers(2, 5))
    rounds = draw(st.integers(1, 6))
    moves = draw(st.lists(st.tuples(st.sampled_from(["propose", "accept", "accept", "walk_away"]),
                                    st.integers(0, 3)), max_size=60))
    return parties, rounds, moves


def play(parties: int, rounds: int, moves: list[tuple[str, int]]
         ) -> tuple[ProtocolState, list[tuple[str, Action]]]:
    """Apply the legal moves among ``moves`` until the protocol ends or moves run out."""
    state = PROTOCOL.start([f"p{i}" for i in range(parties)], rounds)
    applied: list[tuple[str, Action]] = []
    for kind, n in moves:
        if state.done:
            break
        party = state.current_party
        if kind not in PROTOCOL.legal_actions(state, party):
            continue
        action = make(kind, n)
        state = PROTOCOL.apply(state, party, action)
        applied.append((party, action))
    return state, applied


@given(games())
def test_agreement_only_when_all_others_accepted_the_same_offer(game) -> None:
    state, applied = play(*game)
    if state.status != "agreement":
        return
    last_proposal = max(i for i, (_, a) in enumerate(applied) if isinstance(a, Propose))
    proposer, proposal = applied[last_proposal]
    accepters = {party for party, a in applied[last_proposal + 1:] if isinstance(a, Accept)}
    assert all(isinstance(a, Accept) for _, a in applied[last_proposal + 1:])
    assert accepters == set(state.parties) - {proposer}
    assert isinstance(proposal, Propose) and state.standing_offer == proposal.offer


@given(games())
def test_every_run_ends_by_the_deadline(game) -> None:
    parties, rounds, _ = game
    # Proposals only: nobody ever accepts, so only the deadline can end the run.
    state, applied = play(parties, rounds, [("propose", i) for i in range(parties * rounds + 5)])
    assert state.status == "no_agreement"
    assert state.reason.startswith("deadline")
    assert len(applied) == parties * rounds


@given(games())
def test_no_run_outlives_its_deadline(game) -> None:
    state, applied = play(*game)
    parties, rounds, _ = game
    assert len(applied) <= parties * rounds
    if not state.done:
        assert state.round < rounds


@given(games(), st.sampled_from(["propose", "accept", "walk_away"]))
def test_illegal_actions_raise_and_leave_state_unchanged(game, kind) -> None:
    state, _ = play(*game)
    others = [p for p in state.parties if state.done or p != state.current_party]
    for party in others:
        with pytest.raises(IllegalActionError):
            PROTOCOL.apply(state, party, make(kind, 0))
    if not state.done and kind not in PROTOCOL.legal_actions(state, state.current_party):
        with pytest.raises(IllegalActionError):
            PROTOCOL.apply(state, state.current_party, make(kind, 0))


def test_accepting_with_no_offer_on_the_table_is_refused() -> None:
    state = PROTOCOL.start(["a", "b"], 3)
    with pytest.raises(IllegalActionError, match="no offer on the table"):
        PROTOCOL.apply(state, "a", Accept(rationale="x"))


def test_walking_away_ends_without_agreement_and_names_who_left() -> None:
    state = PROTOCOL.start(["a", "b", "c"], 3)
    state = PROTOCOL.apply(state, "a", make("propose", 1))
    state = PROTOCOL.apply(state, "b", make("walk_away", 0))
    assert state.status == "no_agreement"
    assert state.reason == "b walked away"


def test_a_counter_offer_clears_earlier_acceptances() -> None:
    state = PROTOCOL.start(["a", "b", "c"], 3)
    state = PROTOCOL.apply(state, "a", make("propose", 1))
    state = PROTOCOL.apply(state, "b", make("accept", 0))
    state = PROTOCOL.apply(state, "c", make("propose", 2))
    assert state.accepted_by == frozenset()
    state = PROTOCOL.apply(state, "a", make("accept", 0))
    assert state.status == "running"
    state = PROTOCOL.apply(state, "b", make("accept", 0))
    assert state.status == "agreement"
    assert state.standing_offer == offer(2) and state.standing_proposer == "c"


def test_a_party_cannot_accept_its_own_offer_after_a_passed_turn() -> None:
    state = PROTOCOL.start(["a", "b", "c"], 3)
    state = PROTOCOL.apply(state, "a", make("propose", 1))
    state = PROTOCOL.pass_turn(state)
    state = PROTOCOL.apply(state, "c", make("accept", 0))
    assert "accept" not in PROTOCOL.legal_actions(state, "a")
    with pytest.raises(IllegalActionError, match="its own offer"):
        PROTOCOL.apply(state, "a", make("accept", 0))


@pytest.mark.parametrize("parties, rounds", [(["solo"], 3), (["a", "a"], 3), (["a", "b"], 0)])
def test_bad_starts_are_refused(parties: list[str], rounds: int) -> None:
    with pytest.raises(ValueError):
        PROTOCOL.start(parties, rounds)
