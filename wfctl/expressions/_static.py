"""Resource limits an expression exceeds on its constants alone, found without running it.

``range(10**9)``, ``'a' * 10**9`` or ``7 ** 10**7`` fail every time they run; validation
says so with a line number instead (issue 15). Only constant operands are judged, with
the same checks evaluation makes (``_limits``), so nothing here can be slower than them.
"""

from __future__ import annotations

from typing import Any, Final

from jinja2 import nodes

from wfctl.expressions._errors import LimitExceeded
from wfctl.expressions._limits import bounded_range, checked_binop
from wfctl.expressions._tree import find

__all__ = ["constant_limits"]

_OPERATORS: Final[dict[type[nodes.Node], str]] = {
    nodes.Mul: "*",
    nodes.Pow: "**",
    nodes.Add: "+",
}


class _NotConstant(Exception):
    """The operand depends on the context (or on something not judged here)."""


def _value(node: nodes.Node) -> Any:
    """The value of a constant subtree, computed with the evaluation's checks."""
    if isinstance(node, nodes.Const) and isinstance(node.value, int | float | str):
        return node.value
    operator = _OPERATORS.get(type(node))
    if operator is None or not isinstance(node, nodes.BinExpr):
        raise _NotConstant
    return checked_binop(operator, _value(node.left), _value(node.right))


def _problem(node: nodes.Node) -> str | None:
    try:
        if isinstance(node, nodes.Call):
            args = [_value(arg) for arg in node.args]
            if node.kwargs or node.dyn_args or node.dyn_kwargs:
                return None
            bounded_range(*args)
        else:
            _value(node)
    except LimitExceeded as exc:
        return str(exc)
    except (_NotConstant, TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return None


def _is_range_call(node: nodes.Call) -> bool:
    return isinstance(node.node, nodes.Name) and node.node.name == "range"


def constant_limits(tree: nodes.Node) -> tuple[str, ...]:
    """Why evaluating `tree` would exceed a resource limit whatever the context."""
    found: list[str] = []
    candidates: list[nodes.Node] = [c for c in find(tree, nodes.Call) if _is_range_call(c)]
    candidates += find(tree, (nodes.Mul, nodes.Pow, nodes.Add))
    for node in candidates:
        problem = _problem(node)
        if problem is not None and problem not in found:
            found.append(problem)
    return tuple(found)
