"""The loader's limits: file size, nesting depth, alias uses and alias expansion.

Aliases are counted while the events stream in, before any expanded data exists: a
340-byte alias bomb would otherwise expand to a tree jsonschema spends minutes on.
"""

from __future__ import annotations

from typing import Final

from wfctl.document._errors import diag
from wfctl.format.diagnostics import Diagnostic

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_DIAGNOSTICS",
    "MAX_EXPANDED_NODES",
    "MAX_FILE_BYTES",
    "alias_problem",
    "nesting_exceeds",
    "oversized",
    "too_large",
]

MAX_FILE_BYTES: Final = 8 * 1024 * 1024
MAX_DEPTH: Final = 64
MAX_ALIASES: Final = 1000
MAX_EXPANDED_NODES: Final = 200_000
# A file with thousands of `- yes` lines should not produce thousands of messages.
MAX_DIAGNOSTICS: Final = 100


def nesting_exceeds(value: object, limit: int = MAX_DEPTH) -> bool:
    """Is plain data (lists and dicts) nested deeper than `limit` levels? (Iterative: data
    too deep for Python's recursion is the case it must answer.)"""
    todo: list[tuple[object, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth >= limit:
                return True
            todo.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


def too_large(file: str, size: int) -> Diagnostic:
    """The diagnostic for a file over MAX_FILE_BYTES."""
    return diag(
        file,
        1,
        1,
        "too-large",
        f"file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes",
        hint="split the workflow or move large data out of it",
    )


def oversized(text: str | bytes, file: str) -> Diagnostic | None:
    """`too_large` if the text's UTF-8 size is over the limit, else None."""
    if isinstance(text, bytes):
        size = len(text)
    elif len(text) * 4 > MAX_FILE_BYTES:
        # A str holds up to 4 UTF-8 bytes per character: only measure when it matters.
        size = len(text.encode("utf-8", "surrogatepass"))
    else:
        return None
    return too_large(file, size) if size > MAX_FILE_BYTES else None


def alias_problem(
    name: str, aliases: int, expanded: int, depth: int
) -> tuple[str, str, str | None] | None:
    """(code, message, hint) when one more alias use breaks a limit, else None.

    `aliases` and `expanded` are the counts including this use, `depth` the nesting the
    alias's target reaches where it is used.
    """
    if aliases > MAX_ALIASES:
        return "alias-limit", f"more than {MAX_ALIASES} aliases", None
    if expanded > MAX_EXPANDED_NODES:
        return (
            "alias-limit",
            f"aliases expand to more than {MAX_EXPANDED_NODES} nodes",
            "this looks like an alias bomb; write the data out instead",
        )
    if depth > MAX_DEPTH:
        return "too-deep", f"alias *{name} makes nesting deeper than {MAX_DEPTH} levels", None
    return None
