"""Text from scenario files, transcripts and agents made safe to show: on a terminal, in Markdown.

Every such text is data, never markup.  ``plain`` removes what a terminal would obey rather
than print: control characters (C0 except newline and tab, DEL, C1), whole escape sequences
(CSI such as ``ESC [2J``, OSC such as a window title ``ESC ]0;…BEL``, DCS/APC/PM/SOS
strings, two-character escapes) and the Unicode bidi overrides and isolates that reorder
what a reader sees (U+202A–U+202E, U+2066–U+2069, the "Trojan Source" characters).
``for_terminal`` also escapes Rich markup, for text placed in a string Rich parses;
``for_markdown`` escapes HTML and the Markdown characters that could open a heading, a
link, an image, emphasis, code, a table cell or a raw HTML block; ``for_mermaid`` keeps a
label inside its quotes; ``for_plot`` keeps matplotlib from reading ``$…$`` as a formula.
"""

from __future__ import annotations

import html
import re

# Escape sequences first (whole), then any control character left, e.g. a lone ESC.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"                      # CSI: cursor, erase, colours
    r"|(?:\x1b[]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # OSC…
    r"|\x1b[ -/]*[0-~]"                                      # two-character escapes
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile(r"[\n\t]+")
_BACKSLASHES = re.compile(r"(\\+)(?=\[(?![a-z#/@][^\[]*?\]))")  # before a "[" that is no tag

# Markdown: characters active anywhere in a line, and block markers at a line's start
# (a heading, a list item, a thematic break or setext underline); ``>`` and ``<`` become
# HTML entities, which never open a block quote or an HTML block.
_INLINE = re.compile(r"([\\`*_\[\]|~])")
_LINE_START = re.compile(r"^(#+|[-+=]+|\d+[.)])(?=[ \t]|$)", re.MULTILINE)


def plain(text: object, *, one_line: bool = False) -> str:
    """``text`` without control characters, escape sequences or bidi overrides (for
    ``rich.text.Text`` or any output that is not markup).  ``one_line`` also turns line
    breaks and tabs into spaces, where a second line could pass for the program's own."""
    cleaned = _CONTROL.sub("", _SEQUENCE.sub("", str(text)))
    return _BREAKS.sub(" ", cleaned) if one_line else cleaned


def for_terminal(text: object, *, one_line: bool = False) -> str:
    """``text`` safe inside a string that Rich parses as markup: controls stripped and
    ``[tags]`` escaped, so ``[/]`` or ``[bold]`` print literally."""
    from rich.markup import escape  # only the commands that print need rich

    # Rich escapes "[" only where it opens a tag, yet reads "\\[" as "[" everywhere: a
    # backslash before any other "[" needs one more to stay visible.  Trailing backslashes
    # are doubled so that the tag written after this text still closes.
    cleaned = plain(text, one_line=one_line)
    body = cleaned.rstrip("\\")
    trailing = "\\" * (2 * (len(cleaned) - len(body)))
    return _BACKSLASHES.sub(r"\1\\", escape(body)) + trailing


def for_markdown(text: object, *, multiline: bool = False) -> str:
    """``text`` as literal Markdown: HTML escaped, Markdown-active characters
    backslash-escaped, leading block markers (``#``, ``-``, ``1.`` …) neutralised.  One
    line unless ``multiline``, which keeps the line breaks (and so the paragraphs)."""
    lines = [line.strip() for line in plain(text).split("\n")]
    joined = "\n".join(lines).strip() if multiline else " ".join(filter(None, lines))
    escaped = html.escape(_INLINE.sub(r"\\\1", joined), quote=False)
    return _LINE_START.sub(_escape_marker, escaped)


def _escape_marker(match: re.Match[str]) -> str:
    marker = match.group(1)
    if marker[0].isdigit():
        return f"{marker[:-1]}\\{marker[-1]}"
    return f"\\{marker}"


def for_mermaid(text: object) -> str:
    """``text`` for a quoted Mermaid label (``id["…"]``, ``-- "…" -->``): one line, with the
    characters that could end the label or open markup written as Mermaid entity codes."""
    codes = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "`": "#96;"}
    return "".join(codes.get(character, character) for character in plain(text, one_line=True))


def for_plot(text: object) -> str:
    """``text`` as a literal matplotlib label: ``$`` escaped, since a bad formula between two
    dollar signs would fail the whole figure."""
    return plain(text).replace("$", r"\$")
