"""What an expression or template reads, without compiling it to Python: validation's view.

Validation needs what compiling an expression finds (syntax errors, forbidden constructs,
unknown filters) and what it tells (the names, step ids, ``workflow`` attributes and
secrets it reads), but not the Python code Jinja generates, which is 80% of the cost of a
compile (about 0.6 ms per expression; most of ``wfctl validate`` on a directory).
:func:`analyse` follows the steps of :func:`~wfctl.expressions.compile_expression` and
:func:`~wfctl.expressions.compile_template` up to code generation, with the same parser
and checks (``_parse``, ``_tree``), and adds the checks that only code generation would
make. Trees too deep to judge so go through the real compiler. tests/validate/test_semantic.py
checks on many sources that both accept and reject alike.

The ``*_offset`` functions say where in the source a name or reference is written, for
diagnostics that point at it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from jinja2 import nodes

from wfctl.expressions._compiled import (
    compile_expression,
    compile_template,
    is_template,
    template_names,
)
from wfctl.expressions._environment import SandboxEnvironment, environment
from wfctl.expressions._errors import ExpressionError, unexpected_compile_error
from wfctl.expressions._parse import check_source, parse_bare, parse_template, single_expression
from wfctl.expressions._static import constant_limits
from wfctl.expressions._tree import attrs_of, check_tree, find, load_names, step_refs

__all__ = [
    "Analysis",
    "analyse",
    "line_offset",
    "name_offset",
    "step_ref_offset",
    "workflow_attr_offset",
]

# Deeper trees go through the real compiler (Python's own compiler has nesting limits).
_MAX_ANALYSED_DEPTH: Final = 40


@dataclass(frozen=True)
class Analysis:
    """What an expression reads."""

    names: frozenset[str]  # top-level names (`steps`, `inputs`, a typo...)
    steps: frozenset[str]  # step ids named statically (steps.a, steps['a'], steps.get('a'))
    workflow_attrs: frozenset[str] = frozenset()  # workflow.<attr> read statically
    secrets: frozenset[str] = frozenset()  # secrets.<name> read statically
    limits: tuple[str, ...] = ()  # resource limits its constants alone exceed


_NOTHING: Final = Analysis(frozenset(), frozenset())


def analyse(source: str, bare: bool) -> Analysis:
    """What an expression (`bare`) or a template string reads (cached by source).

    Raises ExpressionError exactly where compiling it would.
    """
    return _analyse_cached(source, bare)


class _TooDeep(Exception):
    """The tree is deep enough that only the real compiler can tell."""


@functools.lru_cache(maxsize=8192)
def _analyse_cached(source: str, bare: bool) -> Analysis:
    source = check_source(source)
    try:
        return _analyse_expression(source) if bare else _analyse_template(source)
    except ExpressionError:
        raise
    except _TooDeep:
        return _compile_fully(source, bare)
    except Exception as exc:  # as compile_*: nothing unforeseen escapes
        raise unexpected_compile_error(exc, source) from None


def _compile_fully(source: str, bare: bool) -> Analysis:
    compiled = compile_expression(source) if bare else compile_template(source)
    compiled.prepare()  # what is too deep to judge, the code generator judges now
    return Analysis(frozenset(compiled.names()), frozenset(compiled.step_refs()))


def _analyse_expression(source: str) -> Analysis:
    env = environment()
    return _of_expression(env, parse_bare(env, source), source)


def _analyse_template(source: str) -> Analysis:
    if not is_template(source):
        return _NOTHING
    env = environment()
    tree = parse_template(env, source)
    single = single_expression(tree)
    if single is not None:
        return _of_expression(env, single, source)
    _check_generated(tree, source)
    check_tree(tree, source)
    return _of_tree(tree, template_names(env, tree))


def _of_expression(env: SandboxEnvironment, expr: nodes.Expr, source: str) -> Analysis:
    _check_generated(expr, source)
    check_tree(expr, source)
    return _of_tree(expr, load_names(expr) - set(env.globals))


def _of_tree(tree: nodes.Node, names: set[str]) -> Analysis:
    return Analysis(
        frozenset(names),
        step_refs(tree),
        attrs_of(tree, "workflow"),
        attrs_of(tree, "secrets"),
        constant_limits(tree),
    )


def _generator_problem(node: nodes.Node) -> str | None:
    """What Jinja's code generator (or Python's compiler) would refuse in this node."""
    if isinstance(node, nodes.For) and any(n.name == "loop" for n in find(node.target, nodes.Name)):
        return "Can't assign to special loop variable in for-loop target"
    if isinstance(node, nodes.Call | nodes.Filter | nodes.Test):
        keys = [k.key for k in node.kwargs]
        if len(keys) != len(set(keys)):
            return "keyword argument repeated"
    return None


def _check_generated(tree: nodes.Node, source: str) -> None:
    """The checks Jinja's code generator (and Python's compiler) would make."""
    todo = [(tree, 1)]
    while todo:
        node, level = todo.pop()
        if level > _MAX_ANALYSED_DEPTH:
            raise _TooDeep
        problem = _generator_problem(node)
        if problem is not None:
            raise unexpected_compile_error(Exception(problem), source)
        todo.extend((child, level + 1) for child in node.iter_child_nodes())


# ---------------------------------------------------------------------------- positions


def line_offset(source: str, lineno: int) -> int | None:
    """Offset of the first non-blank character of line `lineno` (1-based) of `source`."""
    start = 0
    for _ in range(lineno - 1):
        start = source.find("\n", start) + 1
        if start == 0:
            return None
    end = source.find("\n", start)
    line = source[start : end if end >= 0 else len(source)]
    return start + len(line) - len(line.lstrip())


def _code_start(source: str) -> int:
    """Where the code of a template starts (its first `{{`/`{%`); 0 for an expression."""
    starts = [i for i in (source.find("{{"), source.find("{%")) if i >= 0]
    return min(starts) if starts else 0


def name_offset(source: str, name: str) -> int | None:
    """Where top-level `name` is first read in `source`, or None."""
    match = re.compile(rf"(?<![\w.'\"]){re.escape(name)}(?!\w)").search(source, _code_start(source))
    return match.start() if match else None


def step_ref_offset(source: str, ref: str) -> int | None:
    """Where step `ref` is first named (steps.ref, steps['ref'], steps.get('ref')), or None."""
    quoted = re.escape(ref)
    match = re.compile(
        rf"(?<![\w.])steps\s*(?:\.\s*{quoted}(?!\w)|\[\s*['\"]{quoted}['\"]|\.\s*get\(\s*['\"]{quoted}['\"])"
    ).search(source, _code_start(source))
    return match.start() if match else None


def workflow_attr_offset(source: str, attr: str) -> int | None:
    """Where `workflow.attr` (or `workflow['attr']`) is read, else `workflow` itself."""
    a = re.escape(attr)
    found = re.search(rf"\bworkflow\s*(?:\.\s*{a}\b|\[\s*(['\"]){a}\1\s*\])", source)
    return found.start() if found else name_offset(source, "workflow")
