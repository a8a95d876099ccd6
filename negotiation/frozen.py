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
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")

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


__all__ = ["ReadOnlyDict", "quick_init"]
