"""Text from a workflow, made safe to print on a terminal.

A workflow's name, its keys and step ids, and what steps print reach the terminal through
`run`, `validate`, `show` and the live table. Escape sequences in them were printed raw
(issue 15): a key holding ``\\r\\x1b[K1 file valid`` made an invalid file look valid.
Every such text goes through :func:`printable` before it is shown: control characters
(C0, DEL, C1) and the bidirectional overrides that reorder what a line seems to say are
written as visible escapes (``\\x1b``, ``\\u202e``) instead.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["printable", "without_colours"]

# Select Graphic Rendition (colours, bold): styling only, so a log may drop it; every other
# escape sequence (cursor moves, erasing, titles) is left for `printable` to show escaped.
_SGR: Final = re.compile(r"\x1b\[[0-9;:]*m")

_CONTROLS: Final = [*range(0x20), 0x7F, *range(0x80, 0xA0)]
_BIDI: Final = [0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]

_ESCAPES: Final[dict[int, str]] = {
    **{code: f"\\x{code:02x}" for code in _CONTROLS},
    **{code: f"\\u{code:04x}" for code in _BIDI},
}
# Multi-line messages keep their line breaks (and tabs); nothing else.
_ESCAPES_KEEP_LINES: Final[dict[int, str]] = {
    code: text for code, text in _ESCAPES.items() if code not in (0x09, 0x0A)
}


def printable(text: str, *, lines: bool = False) -> str:
    """`text` with control characters and bidi overrides escaped (`lines`: keep \\n, \\t)."""
    if text.isprintable():  # the common case, checked in C
        return text
    return text.translate(_ESCAPES_KEEP_LINES if lines else _ESCAPES)


def without_colours(text: str) -> str:
    """`text` without colour codes (a step's coloured error, for a plain log), then
    :func:`printable`: nothing else is dropped, and nothing raw reaches the terminal."""
    return printable(_SGR.sub("", text) if "\x1b" in text else text)
