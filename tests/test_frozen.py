"""quick_init: a frozen dataclass built faster behaves exactly like the dataclass it was."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import FrozenInstanceError, dataclass, field

import pytest

from agents.base import Move, View
from negotiation.frozen import quick_init
from negotiation.model import Accept
from protocols.base import ProtocolState


@dataclass(frozen=True, slots=True)
class Plain:
    name: str
    count: int
    tags: tuple[str, ...] = ()
    note: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Quick:
    name: str
    count: int
    tags: tuple[str, ...] = ()
    note: str | None = None


def as_plain(value: Quick) -> Plain:
    return Plain(**{f.name: getattr(value, f.name) for f in dataclasses.fields(value)})


@pytest.mark.parametrize("args, kwargs", [
    (("a", 1), {}), (("a",), {"count": 2}), ((), {"name": "b", "count": 3, "note": "n"}),
    (("c", 4, ("x", "y"), "n"), {}), (("d", 5), {"tags": ("z",)}),
])
def test_a_quick_init_takes_the_same_arguments_and_makes_the_same_value(
        args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    quick, plain = Quick(*args, **kwargs), Plain(*args, **kwargs)  # type: ignore[arg-type]
    assert as_plain(quick) == plain
    assert repr(quick) == repr(plain).replace("Plain(", "Quick(")
    assert quick == Quick(*args, **kwargs) and hash(quick) == hash(Quick(*args, **kwargs))  # type: ignore[arg-type]
    assert dataclasses.replace(quick, count=9) == Quick(quick.name, 9, quick.tags, quick.note)
    assert pickle.loads(pickle.dumps(quick)) == quick


@pytest.mark.parametrize("args, kwargs", [
    ((), {}), (("a",), {}), (("a", 1), {"name": "b"}), (("a", 1), {"colour": "red"}),
    (("a", 1, (), None, "extra"), {}),
])
def test_a_quick_init_refuses_what_the_dataclass_refuses(
        args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        Plain(*args, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Quick(*args, **kwargs)  # type: ignore[arg-type]


def test_values_built_every_turn_stay_frozen() -> None:
    move = Move(0, "a", Accept(rationale="fine"))
    state = ProtocolState(("a", "b"), 3, 0, 0, "running", None, None, frozenset(), "")
    for value, name in ((move, "party"), (state, "round")):
        with pytest.raises(FrozenInstanceError):
            setattr(value, name, "changed")
        with pytest.raises(AttributeError):
            value.__dict__  # noqa: B018  (slotted: no dictionary to write into)
    assert move.flagged == () and state.extra is None
    for cls, first in ((Move, "round"), (View, "party"), (ProtocolState, "parties")):
        assert f"_quick_set_{first}" in cls.__init__.__globals__  # built by quick_init
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


def test_quick_init_refuses_a_class_it_would_change() -> None:
    @dataclass(slots=True)
    class Mutable:
        name: str

    @dataclass(frozen=True, slots=True)
    class Listed:
        names: list[str] = field(default_factory=list)

    @dataclass(frozen=True)
    class Unslotted:
        name: str

    for cls in (Mutable, Listed, Unslotted):
        with pytest.raises(TypeError):
            quick_init(cls)
