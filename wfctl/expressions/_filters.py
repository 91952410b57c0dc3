"""The allow-lists: filters, tests and methods an expression may call.

Jinja filters are allowed only when their cost is linear in their input and their output
is no bigger than it; the others are replaced by bounded versions (``join``, ``replace``,
``sum``, ``round``, ``tojson``, ``string``).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, cast

import jinja2
from jinja2.filters import FILTERS as _JINJA_FILTERS
from jinja2.filters import make_attrgetter
from jinja2.runtime import LoopContext, Undefined
from jinja2.tests import TESTS as _JINJA_TESTS
from jinja2.utils import pass_environment

from wfctl.expressions._errors import LimitExceeded
from wfctl.expressions._limits import (
    MAX_JSON_INDENT,
    MAX_RENDER_LENGTH,
    MAX_ROUND_PRECISION,
    MAX_SEQUENCE_LENGTH,
    check_size,
    limit,
    to_str,
)

__all__ = ["FILTERS", "SAFE_METHODS", "TESTS"]


@pass_environment
def _filter_join(
    env: jinja2.Environment, value: Iterable[Any], d: str = "", attribute: Any = None
) -> str:
    items: Iterable[Any] = value
    if attribute is not None:
        items = map(make_attrgetter(env, attribute), items)
    sep = to_str(d)
    parts: list[str] = []
    total = 0
    for item in items:
        text = to_str(item)
        total += len(text) + len(sep)
        if total > MAX_RENDER_LENGTH:
            limit("join result length", MAX_RENDER_LENGTH)
        parts.append(text)
    return sep.join(parts)


def _filter_replace(s: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old_s, new_s = to_str(s), to_str(old), to_str(new)
    # Chained replaces blew up memory in PITFALLS: compute the result length first.
    occurrences = text.count(old_s) if old_s else len(text) + 1
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    if len(text) + occurrences * (len(new_s) - len(old_s)) > MAX_RENDER_LENGTH:
        limit("replace result length", MAX_RENDER_LENGTH)
    return text.replace(old_s, new_s, -1 if count is None else count)


@pass_environment
def _filter_sum(
    env: jinja2.Environment, iterable: Iterable[Any], attribute: Any = None, start: Any = 0
) -> Any:
    items: Iterable[Any] = iterable
    if attribute is not None:
        items = map(make_attrgetter(env, attribute), items)
    if isinstance(start, (list, tuple)):
        # sum(start=[]) flattens lists; extend in place (builtin sum would copy
        # quadratically) and keep the total length bounded.
        acc = list(start)
        for item in items:
            if not isinstance(item, (list, tuple)):
                raise TypeError(f"can only add lists to a list, not {type(item).__name__}")
            if len(acc) + len(item) > MAX_SEQUENCE_LENGTH:
                limit("sum result length", MAX_SEQUENCE_LENGTH)
            acc.extend(item)
        return acc
    # Numbers: a sum of n values grows by at most log2(n) bits, no check needed.
    return sum(items, start)


def _filter_round(value: Any, precision: int = 0, method: str = "common") -> Any:
    if not isinstance(precision, int) or abs(precision) > MAX_ROUND_PRECISION:
        raise LimitExceeded(f"round precision must be an integer within ±{MAX_ROUND_PRECISION}")
    return _JINJA_FILTERS["round"](value, precision, method)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Undefined):
        obj._fail_with_undefined_error()
    if isinstance(obj, (tuple, set, frozenset, range, Iterator)):
        return list(islice(obj, MAX_SEQUENCE_LENGTH + 1))
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _filter_tojson(value: Any, indent: int | None = None) -> str:
    # Plain JSON (Jinja's tojson HTML-escapes < > & ' for <script> tags: wrong for us).
    if indent is not None and not 0 <= indent <= MAX_JSON_INDENT:
        raise LimitExceeded(f"tojson indent must be between 0 and {MAX_JSON_INDENT}")
    check_size(value, MAX_RENDER_LENGTH, "tojson input size")
    text = json.dumps(value, indent=indent, ensure_ascii=False, default=_json_default)
    if len(text) > MAX_RENDER_LENGTH:
        limit("tojson result length", MAX_RENDER_LENGTH)
    return text


def _filter_fromjson(value: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError(f"fromjson expects a string, got {type(value).__name__}")
    return json.loads(value)


def _filter_basename(value: Any) -> str:
    return posixpath.basename(to_str(value))


def _filter_dirname(value: Any) -> str:
    return posixpath.dirname(to_str(value))


# Jinja filters whose cost is linear in their input and whose output is no bigger than it.
_SAFE_JINJA_FILTERS = (
    "abs", "capitalize", "count", "d", "default", "dictsort", "first", "float", "int",
    "items", "last", "length", "list", "lower", "map", "max", "min", "reject",
    "rejectattr", "reverse", "select", "selectattr", "sort", "title", "trim", "truncate",
    "unique", "upper",
)  # fmt: skip

FILTERS: dict[str, Callable[..., Any]] = {
    **{name: _JINJA_FILTERS[name] for name in _SAFE_JINJA_FILTERS},
    "join": _filter_join,
    "replace": _filter_replace,
    "round": _filter_round,
    "string": to_str,
    "sum": _filter_sum,
    "tojson": _filter_tojson,
    "fromjson": _filter_fromjson,
    "basename": _filter_basename,
    "dirname": _filter_dirname,
}

TESTS: dict[str, Callable[..., Any]] = {
    name: cast("Callable[..., Any]", _JINJA_TESTS[name])
    for name in (
        "defined", "undefined", "none", "number", "string", "mapping", "sequence",
        "boolean", "true", "false", "integer", "float",
        "eq", "equalto", "ne", "lt", "gt", "le", "ge", "==", "!=", "<", ">", "<=", ">=",
        "in", "divisibleby", "even", "odd",
    )
}  # fmt: skip

# Methods callable from expressions.  Everything else that is callable (str.format,
# str.ljust(10**9), int.to_bytes(10**9), dict.update, ...) is refused by the sandbox.
SAFE_METHODS: tuple[tuple[type, frozenset[str]], ...] = (
    (
        str,
        frozenset({
            "capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha",
            "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "lower",
            "lstrip", "partition", "removeprefix", "removesuffix", "rfind", "rpartition",
            "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
            "title", "upper",
        }),
    ),
    (Mapping, frozenset({"get", "items", "keys", "values"})),
    (list, frozenset({"count", "index"})),
    (tuple, frozenset({"count", "index"})),
    (LoopContext, frozenset({"changed", "cycle"})),
)  # fmt: skip
