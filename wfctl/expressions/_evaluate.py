"""After an evaluation: results as plain data, and failures as one-line ExpressionErrors."""

from __future__ import annotations

import json
import re
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from itertools import islice
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.runtime import Undefined

from wfctl.expressions._errors import ExpressionError, ExpressionKind, LimitExceeded
from wfctl.expressions._limits import MAX_SEQUENCE_LENGTH, limit
from wfctl.expressions._tree import const_key, find
from wfctl.expressions._undefined import suggest

__all__ = ["evaluation_error", "finish"]


_SCALARS = (str, int, float, bool, type(None))


def _to_data(value: Any, budget: list[int]) -> Any:
    """Turn an evaluation result into plain data: lists for tuples/generators/views, and
    an error for undefined values hidden inside containers or for stray callables."""
    budget[0] -= 1
    if budget[0] < 0:
        limit("result size", MAX_SEQUENCE_LENGTH)
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Mapping):  # dicts, and read-only views such as the engine's `steps`
        return {_to_data(k, budget): _to_data(v, budget) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_data(v, budget) for v in value]
    return _other_to_data(value, budget)


_LAZY = (Iterator, range, KeysView, ValuesView, ItemsView, set, frozenset)


def _other_to_data(value: Any, budget: list[int]) -> Any:
    if callable(value):
        raise TypeError(
            f"the result is a {type(value).__name__}, not a value (missing '()' after a "
            "method name?)"
        )
    if isinstance(value, _LAZY):
        # generators from map/select, dict views, range objects
        return [_to_data(v, budget) for v in islice(value, budget[0] + 1)]
    return value


def finish(value: Any, deep: bool) -> Any:
    """An expression's result as plain data (walked only when `deep`: it may hide
    undefined values or generators)."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if not deep and isinstance(value, (dict, list)):
        return value  # context data, returned as is
    return _to_data(value, [MAX_SEQUENCE_LENGTH])


def _node_path(node: nodes.Node) -> str | None:
    """Source text of a Name / attribute / constant-subscript chain, for messages."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        base = _node_path(node.node)
        return None if base is None else f"{base}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = _node_path(node.node)
        return None if base is None else f"{base}[{node.arg.value!r}]"
    return None


def _friendly_undefined(message: str, tree: nodes.Node | None, context: Mapping[str, Any]) -> str:
    """Replace "'dict object' has no attribute 'x'" by "inputs has no attribute 'x'"."""
    match = re.match(r"^'(.+)' is undefined$", message)
    if match:
        return message + suggest(match.group(1), [*context.keys(), "range"])
    if tree is None:
        return message
    accesses: list[tuple[nodes.Node, Any]] = [(n.node, n.attr) for n in find(tree, nodes.Getattr)]
    accesses += [(n.node, const_key(n)) for n in find(tree, nodes.Getitem)]
    found: dict[str, int] = {}  # path -> where its marker starts in the message
    for base, key in accesses:
        for marker in (f" has no attribute {key!r}", f" has no item {key!r}"):
            at = message.find(marker)
            path = _node_path(base)
            if at > 0 and path is not None:
                found[path] = at
    if len(found) != 1:
        return message  # ambiguous (a.x or b.x): keep the object type Jinja names
    ((path, at),) = found.items()
    return path + message[at:]


def _mask_secrets(message: str, context: Mapping[str, Any]) -> str:
    """Defence in depth: error text can quote values (`x.index(secret)`), mask secrets.

    Raw, JSON-escaped and repr-escaped forms are masked (PITFALLS, "Secrets").
    """
    secrets = context.get("secrets")
    if not isinstance(secrets, Mapping):
        return message
    for value in secrets.values():
        if isinstance(value, str) and value:
            variants = {value, json.dumps(value)[1:-1], repr(value)[1:-1]}
            for variant in sorted(variants, key=len, reverse=True):
                message = message.replace(variant, "***")
    return message


def _kind_of(exc: BaseException) -> ExpressionKind:
    if isinstance(exc, (LimitExceeded, OverflowError, MemoryError, RecursionError)):
        return "limit"
    if isinstance(exc, SecurityError):
        return "security"
    if isinstance(exc, UndefinedError):
        return "undefined"
    return "type"


def evaluation_error(
    exc: Exception, source: str, tree: nodes.Node | None, context: Mapping[str, Any]
) -> ExpressionError:
    """What went wrong, in one line, secrets masked."""
    kind = _kind_of(exc)
    detail = str(exc).strip()
    if isinstance(exc, TemplateError):
        text = exc.message or type(exc).__name__
    elif isinstance(exc, LimitExceeded):
        text = detail
    elif isinstance(exc, RecursionError):
        text = "value is nested too deeply"
    elif isinstance(exc, json.JSONDecodeError):
        text = f"invalid JSON: {detail}"
    elif type(exc) in (TypeError, ValueError, ZeroDivisionError) and detail:
        text = detail  # Python's own wording is clear: "division by zero", "'<' not ..."
    else:
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    if kind == "undefined":
        text = _friendly_undefined(text, tree, context)
    text = " ".join(text.split())  # one line
    return ExpressionError(_mask_secrets(text, context), expression=source, kind=kind)
