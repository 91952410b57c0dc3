"""Reading a parsed Jinja tree: the checks Jinja does not make, and what the tree reads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final, TypeVar

from jinja2 import nodes

from wfctl.expressions._errors import ExpressionError
from wfctl.expressions._filters import FILTERS, TESTS

__all__ = [
    "FORBIDDEN_STATEMENTS",
    "attrs_of",
    "check_tree",
    "const_key",
    "find",
    "load_names",
    "needs_deep_check",
    "step_refs",
]

# Statements that allow unbounded recursion (macros), output buffered out of sight of the
# render-length check (set/filter blocks), or loading other templates.
FORBIDDEN_STATEMENTS: Final[dict[type[nodes.Node], str]] = {
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.FilterBlock: "{% filter %}",
    nodes.AssignBlock: "{% set %}...{% endset %} blocks",
    nodes.Block: "{% block %}",
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.EvalContextModifier: "{% autoescape %}",
    nodes.ScopedEvalContextModifier: "{% autoescape %}",
}

# Methods of `steps` itself: steps.get('x') reads step x, steps.keys() reads none.
_STEPS_METHODS: Final = frozenset({"get", "keys", "values", "items"})

_N = TypeVar("_N", bound=nodes.Node)


# The nodes of the tree walked last. The checks and readers here each look at every node
# of the same tree in turn (ten walks an expression, twice: in validation and in the
# model); walking it once made loading a 40k-step workflow 1.5x faster (issue 15). A
# parsed tree never changes (the code generator rewrites a copy), so the list stays true.
_last_walk: tuple[nodes.Node | None, list[nodes.Node]] = (None, [])


def _nodes(tree: nodes.Node) -> list[nodes.Node]:
    global _last_walk  # a one-entry cache, replaced whole: safe across threads
    root, found = _last_walk
    if root is not tree:
        found = [tree, *tree.find_all(nodes.Node)]
        _last_walk = (tree, found)
    return found


def find(tree: nodes.Node, kind: type[_N] | tuple[type[_N], ...]) -> Iterator[_N]:
    """Like Node.find_all, but including ``tree`` itself (find_all skips it)."""
    for node in _nodes(tree):
        if isinstance(node, kind):
            yield node


def _problem(node: nodes.Node) -> str | None:
    """Why a node is refused in wfctl expressions, or None."""
    kind = type(node)
    if kind in FORBIDDEN_STATEMENTS:
        return f"{FORBIDDEN_STATEMENTS[kind]} is not supported in wfctl templates"
    if isinstance(node, nodes.For) and node.recursive:
        return "recursive loops are not supported in wfctl templates"
    if isinstance(node, nodes.Filter):
        return _filter_problem(node)
    if isinstance(node, nodes.Test) and node.name not in TESTS:
        return _unknown("test", node.name, TESTS)
    return None


def _unknown(what: str, name: Any, known: Mapping[str, Any]) -> str:
    return f"unknown {what} {name!r} (available: {', '.join(sorted(known))})"


def _filter_problem(node: nodes.Filter) -> str | None:
    if node.name not in FILTERS:
        return _unknown("filter", node.name, FILTERS)
    # select('odd'), selectattr('x', 'equalto', 1): a test named by a string is looked up
    # only at run time; check the names written as constants now. (`map('upper')` is left
    # to run time, where an unknown filter is a type error: tests pin that.)
    named = _NAMED_BY_STRING.get(node.name)
    if named is None or len(node.args) <= named[0]:
        return None
    position, what, known = named
    arg = node.args[position]
    if isinstance(arg, nodes.Const) and isinstance(arg.value, str) and arg.value not in known:
        return _unknown(what, arg.value, known)
    return None


# filter -> (position of the argument that names a test, what it names, the allowed names)
_NAMED_BY_STRING: Final[Mapping[str, tuple[int, str, Mapping[str, Any]]]] = {
    "select": (0, "test", TESTS),
    "reject": (0, "test", TESTS),
    "selectattr": (1, "test", TESTS),
    "rejectattr": (1, "test", TESTS),
}


def check_tree(tree: nodes.Node, source: str) -> None:
    """Compile-time checks Jinja does not do (or defers to runtime inside `if`)."""
    for node in find(tree, nodes.Node):
        problem = _problem(node)
        if problem is not None:
            raise ExpressionError(problem, expression=source, kind="syntax", lineno=node.lineno)


def _is_name(node: nodes.Node, name: str) -> bool:
    return isinstance(node, nodes.Name) and node.name == name and node.ctx == "load"


def const_key(node: nodes.Getitem) -> Any:
    """The constant subscript of x['key'] / x[0], or None."""
    return node.arg.value if isinstance(node.arg, nodes.Const) else None


def _steps_method_calls(tree: nodes.Node) -> tuple[set[int], set[str]]:
    """(ids of the `steps.<method>` nodes that are calls, step ids read by steps.get('x'))."""
    targets: set[int] = set()
    refs: set[str] = set()
    for call in find(tree, nodes.Call):
        target = call.node
        if (
            isinstance(target, nodes.Getattr)
            and isinstance(target.node, nodes.Name)
            and target.node.name == "steps"
            and target.attr in _STEPS_METHODS
        ):
            # steps.get('x') is a method call (unless a step is literally named "get",
            # which getattr would then prefer: count it as a reference too).
            targets.add(id(target))
            first = call.args[0] if call.args else None
            key = first.value if isinstance(first, nodes.Const) else None
            if target.attr == "get" and isinstance(key, str):
                refs.add(key)
    return targets, refs


def step_refs(tree: nodes.Node) -> frozenset[str]:
    """Step ids named statically: steps.<id>, steps['<id>'], steps.get('<id>')."""
    method_targets, refs = _steps_method_calls(tree)
    for attr in find(tree, nodes.Getattr):
        if _is_steps(attr.node) and id(attr) not in method_targets:
            refs.add(attr.attr)
    for item in find(tree, nodes.Getitem):
        key = const_key(item)
        if _is_steps(item.node) and isinstance(key, str):
            refs.add(key)
    return frozenset(refs)


def _is_steps(node: nodes.Node) -> bool:
    # Any context: the compiler always counted `steps` however it was read.
    return isinstance(node, nodes.Name) and node.name == "steps"


def attrs_of(tree: nodes.Node, name: str) -> frozenset[str]:
    """The attributes of top-level `name` read statically: name.x and name['x']."""
    attrs = {n.attr for n in find(tree, nodes.Getattr) if _is_name(n.node, name)}
    for item in find(tree, nodes.Getitem):
        if _is_name(item.node, name) and isinstance(item.arg, nodes.Const):
            attrs.add(str(item.arg.value))
    return frozenset(attrs)


def load_names(tree: nodes.Node) -> set[str]:
    """The names the tree reads (not the ones it assigns)."""
    return {n.name for n in find(tree, nodes.Name) if n.ctx == "load"}


def needs_deep_check(tree: nodes.Node) -> bool:
    """Can the result be a container holding undefined values or generators?

    Only literals, filters and calls build containers; a plain path into the context
    (steps.a.output) returns context data as is, with no need to walk it.
    """
    for _ in find(tree, (nodes.List, nodes.Dict, nodes.Tuple, nodes.Filter, nodes.Call)):
        return True
    return False
