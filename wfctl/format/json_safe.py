"""Values that JSON, SQLite and the checkpointer can all hold: 64-bit integers and finite
floats. A Python int >= 2**63 breaks SQLite and msgpack, and `1e999` becomes `Infinity`,
which strict JSON parsers reject (PITFALLS.md): check at the boundary where a value
enters a run (step outputs, output_mapping, vars) and say where it is.

Pure: no I/O, nothing of the engine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Final

__all__ = ["INT_MAX", "INT_MIN", "json_problem", "json_safe_copy"]

INT_MAX: Final = 2**63 - 1
INT_MIN: Final = -(2**63)


def _int_problem(value: int) -> str | None:
    if INT_MIN <= value <= INT_MAX:
        return None
    digits = len(str(abs(value))) if abs(value) < 10**100 else None
    shown = str(value) if digits is not None else f"an integer of about {value.bit_length()} bits"
    return f"{shown} does not fit in 64 bits (at most {INT_MAX}); make it a string"


def _float_problem(value: float) -> str | None:
    if math.isfinite(value):
        return None
    return f"{value!r} is not a finite number (JSON has no NaN/Infinity)"


def _scalar_problem(value: Any) -> str | None:
    # bool is an int subclass and always fits.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _int_problem(value)
    if isinstance(value, float):
        return _float_problem(value)
    return None


def _children(value: Any, where: str) -> Iterator[tuple[Any, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield item, f"{where}.{key}"
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield item, f"{where}[{index}]"


def json_problem(value: Any, where: str) -> str | None:
    """The first place in `value` that JSON/SQLite cannot hold, as "<path>: <why>"; None
    when every number fits. Iterative, so a deeply nested value cannot overflow the stack."""
    if not value or type(value) is str:
        # Most outputs and vars updates (None, "", {}, a string): checked on every step.
        return None
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        problem = _scalar_problem(item)
        if problem is not None:
            return f"{path}: {problem}"
        children = list(_children(item, path))
        stack.extend(reversed(children))
    return None


def _safe_scalar(value: Any) -> Any:
    return value if _scalar_problem(value) is None else repr(value)


def json_safe_copy(value: Any) -> Any:
    """`value` with every number JSON/SQLite cannot hold replaced by its text (for a report
    that must be written whatever a step produced)."""
    if isinstance(value, dict):
        return {k: json_safe_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe_copy(v) for v in value]
    return _safe_scalar(value)
