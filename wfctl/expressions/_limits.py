"""Resource limits and the bounded helpers that enforce them.

The Jinja sandbox stops attribute escapes but bounds no resources (PITFALLS.md, "Jinja2
sandbox"): ``'a' * 10**9`` took 1.9 GB and ``7 ** 10000000`` seconds of CPU that no signal
could interrupt. Every operator and filter that can make a result much bigger than its
operands goes through a check here first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

from jinja2.exceptions import SecurityError

from wfctl.expressions._errors import LimitExceeded

__all__ = [
    "BINOPS",
    "MAX_INT_BITS",
    "MAX_JSON_INDENT",
    "MAX_LOOP_ITERATIONS",
    "MAX_RANGE",
    "MAX_RENDER_LENGTH",
    "MAX_ROUND_PRECISION",
    "MAX_SEQUENCE_LENGTH",
    "MAX_SOURCE_LENGTH",
    "SCALAR_TYPES",
    "bounded_range",
    "check_size",
    "checked_binop",
    "limit",
    "to_str",
]

# Chosen so that any single evaluation stays in the low megabytes and well under a
# second, while being far above what a real workflow needs.

#: Longest string / list / tuple an operator or filter may produce (also the budget for
#: walking a result: a structure of shared references counts every reference).
MAX_SEQUENCE_LENGTH = 1_000_000
#: Longest string a template render (or ``~`` concatenation, ``tojson``...) may produce.
MAX_RENDER_LENGTH = 1_000_000
#: Largest integer ``*`` and ``**`` may produce, in bits (about 3000 decimal digits).
MAX_INT_BITS = 10_000
#: Largest ``range()``.
MAX_RANGE = 10_000
#: Total ``{% for %}`` iterations in one template render (nested loops multiply).
MAX_LOOP_ITERATIONS = 100_000
#: Longest expression or template source accepted.
MAX_SOURCE_LENGTH = 100_000
#: Largest ``round`` precision: ``round(5, -10**20)`` computes 10**(10**20) otherwise.
MAX_ROUND_PRECISION = 100
#: Largest ``tojson`` indent.
MAX_JSON_INDENT = 16

SCALAR_TYPES: Final = frozenset({str, int, float, bool, type(None)})
_SEQUENCES: Final = (str, list, tuple)


def limit(what: str, bound: int) -> NoReturn:
    """Stop the evaluation: `what` would exceed `bound`."""
    raise LimitExceeded(f"{what} would exceed the limit of {bound:,}")


def check_size(value: Any, bound: int, what: str) -> None:
    """Raise if ``value`` is bigger than ``bound`` (elements plus string characters).

    The walk stops as soon as the budget is spent, so a structure of shared references
    (``[[1] * 10**6] * 10**6``) cannot make the walk, or the ``str()`` after it, explode.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif type(item) in SCALAR_TYPES:  # skip the slow Mapping ABC check for numbers
            total += 1
        elif isinstance(item, (list, tuple)):
            total += len(item) + 1
            if total <= bound:
                stack.extend(item)
        elif isinstance(item, Mapping):
            total += 2 * len(item) + 1
            if total <= bound:
                stack.extend(item.keys())
                stack.extend(item.values())
        else:
            total += 1
        if total > bound:
            limit(what, bound)


def to_str(value: Any) -> str:
    """str() for output, after checking containers cannot expand into a huge string."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        check_size(value, MAX_RENDER_LENGTH, "string conversion")
    return str(value)


def _int_bits(value: int) -> int:
    return abs(value).bit_length()


def _both_ints(left: Any, right: Any) -> bool:
    return isinstance(left, int) and isinstance(right, int)


def _add(left: Any, right: Any) -> Any:
    if (
        isinstance(left, _SEQUENCES)
        and isinstance(right, _SEQUENCES)
        and len(left) + len(right) > MAX_SEQUENCE_LENGTH
    ):
        limit("concatenation length", MAX_SEQUENCE_LENGTH)
    return left + right


def _multiply(left: Any, right: Any) -> Any:
    seq, count = (left, right) if isinstance(left, _SEQUENCES) else (right, left)
    if isinstance(seq, _SEQUENCES) and isinstance(count, int):
        if len(seq) * max(count, 0) > MAX_SEQUENCE_LENGTH:
            limit("repetition length", MAX_SEQUENCE_LENGTH)
        if count > 1 and not isinstance(seq, str):
            _check_repeated(seq, count)
    elif _both_ints(left, right) and _int_bits(left) + _int_bits(right) > MAX_INT_BITS:
        limit("integer size in bits", MAX_INT_BITS)
    return left * right


_REPEATED_SIZE: Final = 4 * MAX_SEQUENCE_LENGTH


def _check_repeated(seq: list[Any] | tuple[Any, ...], count: int) -> None:
    """`[long_string] * 10**6` is a million references, but every later `map('upper')`,
    `join` or copy pays for a million long strings: bound what the repetition stands for
    (items and characters, shared ones counted each time)."""
    # check_size counts a list and each of its items: allow for that overhead.
    bound = _REPEATED_SIZE // count
    try:
        check_size(seq, bound, "repetition size")
    except LimitExceeded:
        limit("repetition size (items and characters, repeats counted)", _REPEATED_SIZE)


def _power(left: Any, right: Any) -> Any:
    if (
        _both_ints(left, right)
        and right > 0
        and abs(left) > 1
        and right * math.log2(abs(left)) > MAX_INT_BITS
    ):
        limit("integer size in bits", MAX_INT_BITS)
    return left**right


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        # printf-style widths and precisions ('%999999999s') allocate without bound.
        raise SecurityError("the % string formatting operator is not allowed; use ~")
    return left % right


# The operators whose result can be much bigger than their operands (the environment
# intercepts exactly these).
BINOPS: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "+": _add,
    "*": _multiply,
    "**": _power,
    "%": _modulo,
}


def checked_binop(operator: str, left: Any, right: Any) -> Any:
    """Apply an arithmetic operator after checking the result stays small."""
    apply = BINOPS.get(operator)
    if apply is None:  # pragma: no cover - the environment intercepts only BINOPS
        raise SecurityError(f"operator {operator!r} is not allowed")
    return apply(left, right)


def bounded_range(*args: int) -> range:
    """range(), refused beyond MAX_RANGE items."""
    try:
        rng = range(*args)
        size = len(rng)
    except OverflowError:
        limit("range size", MAX_RANGE)
    if size > MAX_RANGE:
        limit("range size", MAX_RANGE)
    return rng
