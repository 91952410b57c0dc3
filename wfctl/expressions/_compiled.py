"""Compiling expressions and templates once, into objects evaluated many times."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.runtime import Undefined
from jinja2.visitor import NodeTransformer

from wfctl.expressions import _budget as budget
from wfctl.expressions._environment import SandboxEnvironment, environment, render_context
from wfctl.expressions._errors import ExpressionError, unexpected_compile_error
from wfctl.expressions._evaluate import evaluation_error, finish
from wfctl.expressions._limits import MAX_RENDER_LENGTH, limit
from wfctl.expressions._parse import (
    check_source,
    parse_bare,
    parse_template,
    single_expression,
    syntax_error,
)
from wfctl.expressions._tree import check_tree, find, load_names, needs_deep_check, step_refs

__all__ = [
    "Expression",
    "Template",
    "compile_expression",
    "compile_template",
    "is_template",
    "template_names",
    "truthy",
]


class _Rewriter(NodeTransformer):
    """Routes `~` and `{% for %}` iterables through the bounded environment helpers."""

    def visit_Concat(self, node: nodes.Concat, *args: Any, **kwargs: Any) -> nodes.Node:
        self.generic_visit(node)
        func = nodes.EnvironmentAttribute("wf_concat", lineno=node.lineno)
        return nodes.Call(func, list(node.nodes), [], None, None, lineno=node.lineno)

    def visit_For(self, node: nodes.For, *args: Any, **kwargs: Any) -> nodes.Node:
        self.generic_visit(node)
        func = nodes.EnvironmentAttribute("wf_loop", lineno=node.lineno)
        node.iter = nodes.Call(func, [node.iter], [], None, None, lineno=node.lineno)
        return node


def _build(env: SandboxEnvironment, tree: nodes.Template, source: str) -> jinja2.Template:
    """Rewrite, then generate and compile the Python code for a checked tree."""
    check_tree(tree, source)
    tree = _Rewriter().visit(tree)
    tree.set_environment(env)
    try:
        return env.from_string(tree)
    except TemplateSyntaxError as exc:  # TemplateAssertionError from the code generator
        raise syntax_error(exc, source, bare=False) from None
    except (RecursionError, MemoryError, SyntaxError) as exc:
        raise ExpressionError(
            f"expression is too complex to compile ({type(exc).__name__})",
            expression=source,
            kind="limit",
        ) from None


@dataclass(frozen=True)
class Expression:
    """A compiled bare expression (``steps.a.output.total > 100``)."""

    source: str
    _template: jinja2.Template = field(repr=False, compare=False)
    _tree: nodes.Expr = field(repr=False, compare=False)
    _names: frozenset[str] = field(repr=False, compare=False)
    _step_refs: frozenset[str] = field(repr=False, compare=False)
    _deep: bool = field(repr=False, compare=False)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The value of the expression in ``context``; raises :class:`ExpressionError`."""
        template = self._template
        budget.start()
        try:
            ctx = render_context(template, context)
            for _ in template.root_render_func(ctx):
                pass
            return finish(ctx.vars["result"], self._deep)
        except Exception as exc:
            # `from None`: the chained Jinja exception may quote values (secrets).
            raise evaluation_error(exc, self.source, self._tree, context) from None
        finally:
            budget.end()

    def names(self) -> frozenset[str]:
        """Top-level names the expression reads (``{"steps", "inputs"}``)."""
        return self._names

    def step_refs(self) -> frozenset[str]:
        """Step ids referenced statically as ``steps.<id>`` or ``steps['<id>']``."""
        return self._step_refs


@dataclass(frozen=True)
class Template:
    """A compiled templated string.

    A string without ``{{`` or ``{%`` is a constant.  A string that is exactly one
    ``{{ expr }}`` renders to the native value of ``expr`` (an int stays an int, a list a
    list); anything else renders to a ``str``.
    """

    source: str
    is_constant: bool
    _expression: Expression | None = field(default=None, repr=False, compare=False)
    _template: jinja2.Template | None = field(default=None, repr=False, compare=False)
    _tree: nodes.Template | None = field(default=None, repr=False, compare=False)
    _names: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    _step_refs: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def render(self, context: Mapping[str, Any]) -> Any:
        if self._expression is not None:
            return self._expression.evaluate(context)
        template = self._template
        if template is None:
            return self.source
        budget.start()
        try:
            parts: list[str] = []
            total = 0
            for chunk in template.root_render_func(render_context(template, context)):
                total += len(chunk)
                if total > MAX_RENDER_LENGTH:
                    limit("rendered length", MAX_RENDER_LENGTH)
                parts.append(chunk)
            return "".join(parts)
        except Exception as exc:
            raise evaluation_error(exc, self.source, self._tree, context) from None
        finally:
            budget.end()

    def names(self) -> frozenset[str]:
        return self._names

    def step_refs(self) -> frozenset[str]:
        return self._step_refs


def is_template(value: str) -> bool:
    """True when the string contains ``{{`` or ``{%`` (and so is rendered, not copied)."""
    return "{{" in value or "{%" in value


def _expression_from_node(env: SandboxEnvironment, expr: nodes.Expr, source: str) -> Expression:
    names = frozenset(load_names(expr) - set(env.globals))
    refs = step_refs(expr)
    deep = needs_deep_check(expr)
    # Evaluate as a one-assignment template (what Environment.compile_expression does,
    # minus its undefined_to_none=True default, which would hide typos).
    body: list[nodes.Node] = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
    template = _build(env, nodes.Template(body, lineno=1), source)
    return Expression(source, template, expr, names, refs, deep)


@functools.lru_cache(maxsize=4096)
def _compile_expression_cached(source: str) -> Expression:
    env = environment()
    return _expression_from_node(env, parse_bare(env, source), source)


def compile_expression(source: str) -> Expression:
    """Compile a bare expression; raises ExpressionError(kind="syntax") when invalid."""
    source = check_source(source)
    try:
        return _compile_expression_cached(source)
    except ExpressionError:
        raise
    except Exception as exc:  # anything the parser or code generator did not foresee
        raise unexpected_compile_error(exc, source) from None


@functools.lru_cache(maxsize=4096)
def _compile_template_cached(source: str) -> Template:
    if not is_template(source):
        return Template(source, True)
    env = environment()
    tree = parse_template(env, source)
    single = single_expression(tree)
    if single is not None:
        expression = _expression_from_node(env, single, source)
        return Template(
            source, False, expression, None, tree, expression.names(), expression.step_refs()
        )
    check_tree(tree, source)
    names = template_names(env, tree)
    refs = step_refs(tree)
    template = _build(env, tree, source)
    return Template(source, False, None, template, tree, frozenset(names), refs)


def compile_template(source: str) -> Template:
    """Compile a templated string (a constant when it has no ``{{`` / ``{%``)."""
    source = check_source(source)
    try:
        return _compile_template_cached(source)
    except ExpressionError:
        raise
    except Exception as exc:  # anything the parser or code generator did not foresee
        raise unexpected_compile_error(exc, source) from None


def template_names(env: SandboxEnvironment, tree: nodes.Template) -> set[str]:
    """The names a (checked) template reads from its context."""
    if any(n.ctx != "load" for n in find(tree, nodes.Name)):
        # {% set %} / {% for x %} declare local names: let Jinja's own analysis tell
        # which names really come from the context.
        from jinja2 import meta

        names = set(meta.find_undeclared_variables(tree))
    else:
        names = load_names(tree)
    return names - set(env.globals)


def truthy(value: Any) -> bool:
    """A condition result as a bool: None, False, 0, "", [] and {} are false."""
    if isinstance(value, Undefined):
        raise ExpressionError("condition is undefined", expression="", kind="undefined")
    try:
        return bool(value)
    except Exception as exc:
        raise ExpressionError(
            f"condition value cannot be tested: {type(exc).__name__}",
            expression="",
            kind="type",
        ) from None
