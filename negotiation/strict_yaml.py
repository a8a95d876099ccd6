"""Reading untrusted YAML: the one loader of every data file (scenarios, tournaments,
campaigns, price tables).

Data files come from strangers, so the loader accepts plain data only and refuses, with the
line, the field and the fix:

- files larger than ``MAX_FILE_BYTES`` (2 MiB: the largest shipped scenario is ~10 KiB);
- nesting deeper than ``MAX_DEPTH`` (32 levels: a scenario needs about 8);
- aliases (``*name``): they let a few lines expand to gigabytes once validated (the
  "billion laughs" attack), and data files never need them;
- duplicate keys, which PyYAML would silently resolve to the last one;
- tags other than YAML's plain types (``!!python/object``, ``!!binary``, ``!custom``, merge
  keys ``<<``): nothing in a data file may name code or an exotic type;
- NaN and infinities (``.nan``, ``.inf``, ``1e999``) and integers beyond ±2^53, which no
  negotiation needs and which break arithmetic and JSON downstream.

Parsing uses libyaml (``yaml.CSafeLoader``) when available: it is fast and limits flow
nesting itself; the checks run on the composed node graph before anything is constructed,
so an alias bomb is refused before it can expand.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from negotiation.errors import InputError

#: Data files larger than this are refused before they are parsed.
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Deepest nesting of mappings and lists a data file may use.
MAX_DEPTH = 32
#: Largest integer magnitude accepted: every integer up to it is exact as a float and in JSON.
MAX_INTEGER = 2**53

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_YAML + name for name in ("str", "int", "float", "bool", "null", "timestamp")}
_TAG_FIXES = {
    _YAML + "merge": "merge keys (<<) are not allowed; write the fields out",
    _YAML + "value": "a bare '=' is not allowed; put it in quotes ('=')",
}


class StrictYamlError(InputError):
    """A data file that the strict loader refuses; ``where`` gives its line and field."""

    def __init__(self, source: str, reason: str, node: Node | None = None,
                 field: str = "") -> None:
        self.source = source
        self.reason = reason
        self.field = field
        self.line = node.start_mark.line + 1 if node is not None else None
        self.column = node.start_mark.column + 1 if node is not None else None
        super().__init__(f"{source}: {self.where}: {reason}" if self.where
                         else f"{source}: {reason}")

    @property
    def where(self) -> str:
        """``field (line L, column C)``, or the part of it that is known."""
        position = f"line {self.line}, column {self.column}" if self.line is not None else ""
        if self.field and position:
            return f"{self.field} ({position})"
        return self.field or position


def read_data_file(path: Path) -> str:
    """The text of a data file, refused when it is larger than ``MAX_FILE_BYTES`` (without
    reading more than that); ``OSError`` and ``UnicodeDecodeError`` as ``open`` raises them."""
    with path.open("rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise StrictYamlError(str(path), _too_large())
    return data.decode("utf-8")


def load_yaml(text: str, source: str) -> Any:
    """Plain data from YAML ``text`` (``source`` names it in errors).

    Raises ``StrictYamlError`` for what the module docstring lists and ``yaml.YAMLError``
    for a syntax error (its ``problem_mark`` gives the line).
    """
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise StrictYamlError(source, _too_large())
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check(loader, root, source)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _too_large() -> str:
    return (f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, the limit for data files; "
            "shorten it (long texts belong in a separate document)")


def _check(loader: yaml.SafeLoader, root: Node, source: str) -> None:
    """Refuse aliases, unknown tags, excessive depth, complex or duplicate keys and
    out-of-range numbers anywhere under ``root`` (iteratively: depth is not trusted)."""
    seen: set[int] = set()
    stack: list[tuple[Node, int, str]] = [(root, 0, "")]
    while stack:
        node, depth, field = stack.pop()
        if id(node) in seen:
            raise _alias(source, node, field)
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            _check_scalar(loader, node, source, field)
            continue
        if node.tag not in {_YAML + "seq", _YAML + "map"}:
            raise StrictYamlError(source, _tag_fix(node.tag), node, field)
        if depth >= MAX_DEPTH:
            raise StrictYamlError(source, f"nested more than {MAX_DEPTH} levels deep; "
                                          "flatten the structure", node, field)
        if isinstance(node, SequenceNode):
            stack.extend(reversed([(child, depth + 1, f"{field}[{index}]")
                                   for index, child in enumerate(node.value)]))
            continue
        assert isinstance(node, MappingNode)
        first_line: dict[Any, int] = {}
        children: list[tuple[Node, int, str]] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise StrictYamlError(source, "a key must be a plain value (text or a "
                                              "number); write it as one", key_node, field)
            if id(key_node) in seen:
                raise _alias(source, key_node, field)
            seen.add(id(key_node))
            key = _check_scalar(loader, key_node, source, field)
            name = f"{field}.{key}" if field else str(key)
            if key in first_line:
                raise StrictYamlError(source, f"duplicate key {str(key)!r} (first at line "
                                              f"{first_line[key]}); remove one of them",
                                      key_node, name)
            first_line[key] = key_node.start_mark.line + 1
            children.append((value_node, depth + 1, name))
        stack.extend(reversed(children))  # popped in document order: the first alias is named


def _alias(source: str, node: Node, field: str) -> StrictYamlError:
    # An alias is the anchored node itself, so only the anchor's line is known.
    return StrictYamlError(source, f"repeats the value anchored at line "
                                   f"{node.start_mark.line + 1} with an alias (*name); aliases "
                                   "are not allowed in data files, write the value out in full",
                           field=field or "(top level)")


def _tag_fix(tag: str) -> str:
    return _TAG_FIXES.get(tag, f"the tag {tag.removeprefix(_YAML)!r} is not allowed in data "
                               "files; remove it and write a plain value")


def _check_scalar(loader: yaml.SafeLoader, node: ScalarNode, source: str, field: str) -> Any:
    """The value of a scalar node, once its tag and number range are known to be allowed."""
    if node.tag not in _SCALAR_TAGS:
        raise StrictYamlError(source, _tag_fix(node.tag), node, field)
    if node.tag == _YAML + "str":
        return node.value
    try:
        value = loader.construct_object(node)
    except (ValueError, OverflowError, yaml.YAMLError):
        kind = ("a date" if node.tag == _YAML + "timestamp" else
                "a number (at most 2^53 in magnitude)")
        raise StrictYamlError(source, f"{_preview(node.value)} cannot be read as {kind}; "
                                      "correct it, or put it in quotes if it is text",
                              node, field) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise StrictYamlError(source, f"{_preview(node.value)} is not a finite number (NaN "
                                      "and infinity are not allowed); give a finite number",
                              node, field)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        raise StrictYamlError(source, f"{_preview(node.value)} is larger than 2^53 in "
                                      "magnitude; use a smaller number", node, field)
    return value


def _preview(text: str) -> str:
    return repr(text if len(text) <= 40 else f"{text[:37]}...")


class _PlainDumper(yaml.SafeDumper):
    """Writes shared objects out in full: the strict loader refuses aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any) -> str:
    """YAML text the strict loader reads back: plain types, no aliases, keys in order."""
    return yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True)
