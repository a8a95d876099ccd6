"""quick_init: a frozen dataclass built faster behaves exactly like the dataclass it was;
read_only_copy: a model copied read-only is the same model and refuses edits."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import FrozenInstanceError, dataclass, field
from pathlib import Path

import pytest
from pydantic import BaseModel

from agents.base import Move, View
from negotiation.frozen import ReadOnlyDict, ReadOnlyList, quick_init, read_only_copy
from negotiation.model import Accept
from negotiation.scenario import load_scenario
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


def _containers(value: object) -> list[object]:
    """Every dict and list inside ``value`` (a model, recursively)."""
    if isinstance(value, BaseModel):
        return [found for name in type(value).model_fields
                for found in _containers(getattr(value, name))]
    if isinstance(value, dict):
        return [value, *(found for item in value.values() for found in _containers(item))]
    if isinstance(value, list | tuple):
        inner = [found for item in value for found in _containers(item)]
        return [value, *inner] if isinstance(value, list) else inner
    return []


@pytest.mark.parametrize("name", ["platform-app-vendor", "park-redevelopment",
                                  "species-reintroduction", "rd-joint-venture"])
def test_a_read_only_copy_is_the_same_model_and_refuses_every_edit(name: str) -> None:
    scenario = load_scenario(Path("scenarios") / f"{name}.yaml")
    for original in (scenario.public(), *(org.preferences for org in scenario.organizations)):
        before = original.model_dump(mode="json")
        copy = read_only_copy(original)
        assert copy is not original and type(copy) is type(original)
        assert copy == original and copy.model_dump(mode="json") == before
        assert copy.model_fields_set == original.model_fields_set
        assert copy.model_dump(exclude_unset=True) == original.model_dump(exclude_unset=True)
        containers = _containers(copy)
        assert containers and all(isinstance(c, ReadOnlyDict | ReadOnlyList) for c in containers)
        for container in containers:
            with pytest.raises(TypeError):
                container.clear()  # type: ignore[attr-defined]
        assert original.model_dump(mode="json") == before
        assert not {id(c) for c in containers} & {id(c) for c in _containers(original)}
