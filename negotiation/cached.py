"""A cached property without the lock of Python 3.11's ``functools.cached_property``.

Python 3.11's ``cached_property`` takes a lock for every first read of a property on every
instance (Python 3.12 dropped it: it serialised unrelated instances and did not make the
computation run once per instance anyway).  A cold run's analysis computes some thirty such
values once each, and the lock was ~1 µs of each.  This is 3.12's behaviour: the first read
computes the value and stores it in the instance's ``__dict__``, where every later read
finds it without calling the descriptor; two threads reading it first at once may both
compute it (the values computed here are pure functions of the instance).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class cached_property(Generic[T]):
    """``functools.cached_property`` as of Python 3.12: no lock."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.attrname: str | None = None
        self.__doc__ = func.__doc__
        self.__module__ = func.__module__

    def __set_name__(self, owner: type, name: str) -> None:
        if self.attrname is None:
            self.attrname = name
        elif name != self.attrname:
            raise TypeError("Cannot assign the same cached_property to two different names "
                            f"({self.attrname!r} and {name!r}).")

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached_property[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None
                ) -> T | cached_property[T]:
        if instance is None:
            return self
        if self.attrname is None:
            raise TypeError("Cannot use cached_property instance without calling "
                            "__set_name__ on it.")
        value = self.func(instance)
        instance.__dict__[self.attrname] = value
        return value


__all__ = ["cached_property"]
