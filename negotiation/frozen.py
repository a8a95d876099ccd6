"""Frozen slotted dataclasses that are cheap to build, for the values made on every turn.

A frozen dataclass's generated ``__init__`` sets each field with ``object.__setattr__``,
which makes a bound method on every call: for the view, the protocol state and the move
that every turn builds, that was about a tenth of a turn's instructions.  :func:`quick_init`
gives such a class an ``__init__`` with the same signature that sets each slot through its
descriptor's ``__set__``, bound once.  Nothing else changes: assignment still raises
``FrozenInstanceError``, and equality, hashing, ``repr`` and ``dataclasses.replace`` are the
dataclass's own.  (``dataclasses`` writes its ``__init__`` the same way, as source.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_PREFIX = "_quick_"


def quick_init(cls: type[T]) -> type[T]:
    """Replace the ``__init__`` of ``cls``, a ``@dataclass(frozen=True, slots=True)`` whose
    fields are plain (positional or keyword, a default value or none), with a quick one."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__ \
            or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: quick_init takes a frozen, slotted dataclass "
                        "without __post_init__")
    namespace: dict[str, Any] = {}
    arguments, body = [], []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = field.name
        if (not field.init or field.kw_only is True or name.startswith(_PREFIX)
                or field.default_factory is not dataclasses.MISSING):
            raise TypeError(f"{cls.__name__}.{name}: quick_init takes plain fields only")
        namespace[f"{_PREFIX}set_{name}"] = cls.__dict__[name].__set__
        if field.default is dataclasses.MISSING:
            arguments.append(name)
        else:
            namespace[f"{_PREFIX}default_{name}"] = field.default
            arguments.append(f"{name}={_PREFIX}default_{name}")
        body.append(f"    {_PREFIX}set_{name}(self, {name})\n")
    exec(f"def __init__(self, {', '.join(arguments)}):\n{''.join(body) or '    pass'}\n",
         namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    type.__setattr__(cls, "__init__", init)
    return cls


class ReadOnlyDict(dict[Any, Any]):
    """A ``dict`` that refuses every change: for values shared by every party and every run
    (the offers and split values an outcome space remembers), which an agent may be handed
    but must not edit.  Reading, equality, copying (``dict(...)``, ``.copy()``: a plain,
    writable dict) and pickling are a dict's."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("these values are shared and read-only: copy them (dict(...)) to "
                        "make changes")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[type[ReadOnlyDict], tuple[dict[Any, Any]]]:
        return type(self), (dict(self),)


class ReadOnlyList(list[Any]):
    """A ``list`` that refuses every change, as :class:`ReadOnlyDict` for lists."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("these values are shared and read-only: copy them (list(...)) to "
                        "make changes")

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = clear = extend = insert = pop = remove = reverse = sort = _refuse

    def __reduce__(self) -> tuple[type[ReadOnlyList], tuple[list[Any]]]:
        return type(self), (list(self),)


def read_only_copy(value: T) -> T:
    """A copy of ``value`` (a pydantic model, and the dicts and lists in it) that refuses
    changes: for a brief or a public scenario that every run of a scenario hands its agents,
    so that an agent editing what it is shown edits nothing of the next run's.  Models are
    frozen already; their containers become :class:`ReadOnlyDict` and
    :class:`ReadOnlyList`."""
    kind = type(value)
    if kind in _LEAVES:
        return value  # nearly every value: answered before any isinstance
    copy: Any = value
    if isinstance(value, BaseModel):
        copy = _model_copy(value)
    elif isinstance(value, dict):
        items = value.values()
        copy = ReadOnlyDict(value if _all_leaves(items) else
                            {key: read_only_copy(item) for key, item in value.items()})
    elif isinstance(value, list):
        copy = ReadOnlyList(value if _all_leaves(value) else map(read_only_copy, value))
    elif isinstance(value, tuple):
        copy = tuple(read_only_copy(item) for item in value)
    return copy  # type: ignore[no-any-return]


#: Immutable values that need no copy.
_LEAVES = frozenset({str, int, float, bool, type(None), bytes})


def _all_leaves(items: Iterable[object]) -> bool:
    """Whether every item needs no copy (a list of options, a table of scores): then the
    container is copied whole, without a call per item."""
    return _LEAVES.issuperset(map(type, items))


_object_setattr = object.__setattr__


def built(kind: type[M], fields: dict[str, Any], fields_set: set[str] | None = None) -> M:
    """A ``kind`` of ``fields`` that the engine itself has just computed, each of its field's
    type: made as pydantic makes a validated model (a ``__dict__`` of the fields, in their
    order, and the set of explicitly set fields: ``fields_set``, or every field given),
    without validating again what cannot fail (~0.3 us instead of ~1 us for a finding;
    an agreement is judged with some eight).  Only for models without extra or private
    attributes or a ``model_post_init``; values read from a file or a plugin are
    validated."""
    made = kind.__new__(kind)
    _object_setattr(made, "__dict__", fields)
    _object_setattr(made, "__pydantic_fields_set__",
                    set(fields) if fields_set is None else fields_set)
    _object_setattr(made, "__pydantic_extra__", None)
    _object_setattr(made, "__pydantic_private__", None)
    return made


def _model_copy(value: BaseModel) -> BaseModel:
    """``model_construct`` of ``value``'s fields, copied read-only, with ``value``'s set of
    explicitly set fields: built as pydantic's ``model_construct`` builds it (a ``__dict__``
    of the fields and the three pydantic slots), without its per-field search for aliases
    and defaults, which the copy of a valid model does not need (a brief and a public
    scenario are copied in every cold run: that search was most of their cost)."""
    kind = type(value)
    if kind.__pydantic_post_init__ or kind.__pydantic_root_model__ \
            or value.__pydantic_extra__ is not None or value.__pydantic_private__ is not None:
        fields = {name: read_only_copy(getattr(value, name)) for name in kind.model_fields}
        return kind.model_construct(_fields_set=set(value.model_fields_set), **fields)
    state = value.__dict__
    return built(kind, {name: read_only_copy(state[name]) for name in kind.__pydantic_fields__},
                 set(value.__pydantic_fields_set__))


__all__ = ["ReadOnlyDict", "ReadOnlyList", "built", "quick_init", "read_only_copy"]
