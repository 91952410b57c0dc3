"""Compiling expressions and templates once, into objects evaluated many times.

Compiling is in two parts: parsing and checking the source (at load: syntax errors are
validation errors with a line), and generating and compiling its Python code, which costs
~0.8 ms an expression and is done when it is first evaluated (a 40k-step chain with a
distinct `when:` each took 36 s to load, issue 15). Validation has already made the code
generator's own checks (`analysis`), so generating later fails on nothing it would have
refused at load. Compiled objects are cached by source text, their code with them.
"""

from __future__ import annotations

import copy
import functools
import threading
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
from wfctl.expressions._tree import (
    check_tree,
    find,
    load_names,
    needs_deep_check,
    step_refs,
)

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


def _generate(env: SandboxEnvironment, tree: nodes.Template, source: str) -> jinja2.Template:
    """Rewrite a copy, then generate and compile the Python code for a checked tree."""
    # The rewriter changes the tree in place: the parsed one stays as it was (error
    # messages and the tree walks of `_tree` read it).
    tree = _Rewriter().visit(copy.deepcopy(tree))
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


# Two threads evaluating an expression for the first time generate its code once.
_GENERATING = threading.Lock()


class _Code:
    """The Jinja template of a checked tree, generated on first use (see the module doc)."""

    __slots__ = ("_env", "_source", "_template", "_tree")

    def __init__(self, env: SandboxEnvironment, tree: nodes.Template, source: str) -> None:
        self._env = env
        self._tree: nodes.Template | None = tree
        self._source = source
        self._template: jinja2.Template | None = None

    def template(self) -> jinja2.Template:
        """The compiled template; ExpressionError if the code generator refuses the tree."""
        template = self._template
        if template is None:
            with _GENERATING:
                template = self._template
                if template is None:
                    assert self._tree is not None
                    template = self._template = _generate(self._env, self._tree, self._source)
                    self._tree = None  # not needed any more
        return template


@dataclass(frozen=True)
class Expression:
    """A compiled bare expression (``steps.a.output.total > 100``)."""

    source: str
    _code: _Code = field(repr=False, compare=False)
    _tree: nodes.Expr = field(repr=False, compare=False)
    _names: frozenset[str] = field(repr=False, compare=False)
    _step_refs: frozenset[str] = field(repr=False, compare=False)
    _deep: bool = field(repr=False, compare=False)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The value of the expression in ``context``; raises :class:`ExpressionError`."""
        template = self._code.template()
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

    def prepare(self) -> None:
        """Generate the Python code now rather than at the first evaluation; raises
        ExpressionError (kind "limit" or "syntax") if the code generator refuses it."""
        self._code.template()

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
    _code: _Code | None = field(default=None, repr=False, compare=False)
    _tree: nodes.Template | None = field(default=None, repr=False, compare=False)
    _names: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    _step_refs: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def render(self, context: Mapping[str, Any]) -> Any:
        if self._expression is not None:
            return self._expression.evaluate(context)
        if self._code is None:
            return self.source
        template = self._code.template()
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

    def prepare(self) -> None:
        """As :meth:`Expression.prepare`."""
        if self._expression is not None:
            self._expression.prepare()
        elif self._code is not None:
            self._code.template()

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
    check_tree(expr, source)
    body: list[nodes.Node] = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
    code = _Code(env, nodes.Template(body, lineno=1), source)
    return Expression(source, code, expr, names, refs, deep)


@functools.lru_cache(maxsize=4096)
def _compile_expression_cached(source: str) -> Expression:
    env = environment()
    return _expression_from_node(env, parse_bare(env, source), source)


def compile_expression(source: str) -> Expression:
    """Compile a bare expression; raises ExpressionError(kind="syntax") when invalid.

    Its Python code is generated at its first evaluation (``prepare()`` does it now)."""
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
    return Template(source, False, None, _Code(env, tree, source), tree, frozenset(names), refs)


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
