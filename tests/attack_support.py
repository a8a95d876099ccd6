"""What hostile hooks and agents do in the attack tests, written once."""

from __future__ import annotations

import contextlib
from typing import Any


def vandalise(value: Any, seen: set[int] | None = None) -> None:
    """Edit every dictionary and list in ``value`` that can be edited: numbers become -999,
    a key and an item are added (read-only ones refuse, and are left as they are)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, dict):
        for item in list(value.values()):
            vandalise(item, seen)
        with contextlib.suppress(TypeError):
            for key, item in list(value.items()):
                if isinstance(item, int | float) and not isinstance(item, bool):
                    value[key] = -999
            value["vandal"] = 1
    elif isinstance(value, list):
        for item in list(value):
            vandalise(item, seen)
        with contextlib.suppress(TypeError):
            value.append("vandal")
