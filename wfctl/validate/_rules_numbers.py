"""The rule on numbers: an integer outside 64 bits loads (YAML has no limit) but cannot be
stored (SQLite, the checkpointer): say so at its line instead of failing the run later."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from wfctl.document.sourcemap import Path_
from wfctl.format.json_safe import INT_MAX, INT_MIN
from wfctl.validate._context import Context

__all__ = ["check_numbers"]


def _ints(data: Any) -> Iterator[tuple[Path_, int]]:
    """(path, value) of every integer in `data` (iterative: nesting cannot overflow)."""
    stack: list[tuple[Path_, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            yield path, value


def check_numbers(ctx: Context) -> None:
    """Every integer fits in 64 bits (what SQLite and the checkpointer hold)."""
    bad = [(path, v) for path, v in _ints(ctx.doc.data) if not INT_MIN <= v <= INT_MAX]
    for path, value in sorted(bad, key=lambda pv: ctx.doc.source_map.value_pos(pv[0])):
        ctx.report(
            path,
            "number-too-large",
            f"integer of {value.bit_length()} bits does not fit in 64 bits",
            hint="quote it to keep it as a string",
        )
