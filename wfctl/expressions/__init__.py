"""The expression language: sandboxed Jinja2 for conditions, mappings and templated strings.

A condition or mapping value is a bare expression (``steps.fetch.output.total > 100``); a
string containing ``{{ ... }}`` or ``{% ... %}`` is a template.  Everything is compiled once
(at validation time) and evaluated many times, always in
``jinja2.sandbox.ImmutableSandboxedEnvironment`` -- never with Python ``eval``.

The Jinja sandbox stops attribute escapes but bounds no resources (see PITFALLS.md,
"Jinja2 sandbox"), so this module adds, on top of it:

* an allow-list of filters, tests, globals (only a bounded ``range``) and methods;
* size checks on ``+``, ``*``, ``**``, ``~``, ``join``, ``replace``, ``sum``, ``round``;
* a cap on rendered output and on ``{% for %}`` iterations per render;
* rejection of template features that allow unbounded recursion or hidden buffers
  (macros, call/filter/set blocks, recursive loops, include/import/extends);
* strict undefined handling, so a typo is an error and not a silently false condition.

Every failure, at compile or evaluation time, surfaces as :class:`ExpressionError` with a
one-line message and a ``kind``; nothing else escapes.
"""

from __future__ import annotations

import functools
import json
import math
import posixpath
import re
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal, NoReturn, TypeVar, cast

import jinja2
from jinja2 import nodes
from jinja2.exceptions import (
    SecurityError,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.filters import FILTERS as _JINJA_FILTERS
from jinja2.filters import make_attrgetter
from jinja2.parser import Parser
from jinja2.runtime import Context, LoopContext, StrictUndefined, Undefined, new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.tests import TESTS as _JINJA_TESTS
from jinja2.utils import missing, object_type_repr, pass_environment, pass_eval_context
from jinja2.visitor import NodeTransformer

__all__ = [
    "MAX_INT_BITS",
    "MAX_LOOP_ITERATIONS",
    "MAX_RANGE",
    "MAX_RENDER_LENGTH",
    "MAX_SEQUENCE_LENGTH",
    "MAX_SOURCE_LENGTH",
    "CompiledValue",
    "Expression",
    "ExpressionError",
    "ExpressionKind",
    "Template",
    "compile_expression",
    "compile_template",
    "compile_value",
    "is_template",
    "truthy",
]

# --------------------------------------------------------------------------------------
# Limits.  Chosen so that any single evaluation stays in the low megabytes and well under
# a second, while being far above what a real workflow needs.
# --------------------------------------------------------------------------------------

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
_MAX_ROUND_PRECISION = 100
#: Largest ``tojson`` indent.
_MAX_JSON_INDENT = 16

ExpressionKind = Literal["syntax", "undefined", "type", "limit", "security"]


class ExpressionError(Exception):
    """An expression failed to compile or to evaluate.

    ``message`` is one human-readable line (never a traceback), ``expression`` the source
    text, ``kind`` one of ``syntax``, ``undefined``, ``type``, ``limit``, ``security``.
    ``lineno`` is the line inside the source when known (multi-line templates), ``path``
    the position inside a ``with:`` structure for :class:`CompiledValue` errors.
    """

    def __init__(
        self,
        message: str,
        *,
        expression: str,
        kind: ExpressionKind,
        lineno: int | None = None,
        path: tuple[str | int, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
        self.kind: ExpressionKind = kind
        self.lineno = lineno
        self.path = path

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ExpressionError(kind={self.kind!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments break the default exception pickling (process pools,
        # copy.copy); rebuild from the attributes instead.
        return (_rebuild_error, (self.message, self.expression, self.kind, self.lineno, self.path))

    def with_path(self, path: tuple[str | int, ...]) -> ExpressionError:
        return ExpressionError(
            self.message,
            expression=self.expression,
            kind=self.kind,
            lineno=self.lineno,
            path=path,
        )


def _rebuild_error(
    message: str,
    expression: str,
    kind: ExpressionKind,
    lineno: int | None,
    path: tuple[str | int, ...],
) -> ExpressionError:
    return ExpressionError(message, expression=expression, kind=kind, lineno=lineno, path=path)


class _LimitExceeded(Exception):
    """Raised inside evaluation when a resource limit is hit (becomes kind="limit")."""


# --------------------------------------------------------------------------------------
# Undefined values
# --------------------------------------------------------------------------------------


class _Undefined(StrictUndefined):
    """StrictUndefined that chains through further attribute access.

    ``inputs.opt.sub is defined`` and ``inputs.opt.sub | default(1)`` then work when
    ``inputs.opt`` is missing, while every other use (truth test, comparison, arithmetic,
    printing) still raises, naming the first missing part.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        # Keep Python's protocol probing (copy, pickle, ...) working, like Undefined does.
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, *args: Any, **kwargs: Any) -> Any:
        return self

    @property
    def _undefined_message(self) -> str:
        hint = self._undefined_hint
        if hint:
            return hint
        obj, name = self._undefined_obj, self._undefined_name
        if obj is missing:
            return f"{name!r} is undefined"
        what = object_type_repr(obj)
        if isinstance(obj, Mapping) and isinstance(name, str):
            return f"{what} has no attribute {name!r}{_suggest(name, obj.keys())}"
        if isinstance(obj, (list, tuple, str)) and isinstance(name, int):
            return f"{what} has no item {name!r} (length {len(obj)})"
        if isinstance(name, str):
            return f"{what} has no attribute {name!r}"
        return f"{what} has no item {name!r}"


def _suggest(name: str, candidates: Iterable[Any]) -> str:
    """'; did you mean ...' or the available keys, for an undefined-name message."""
    keys = sorted(str(k) for k in candidates)
    if not keys:
        return " (it is empty)"
    import difflib  # only on the error path

    close = difflib.get_close_matches(name, keys, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    shown = ", ".join(keys[:10]) + (", ..." if len(keys) > 10 else "")
    return f" (available: {shown})"


# --------------------------------------------------------------------------------------
# Bounded helpers used by operators and filters
# --------------------------------------------------------------------------------------


def _limit(what: str, limit: int) -> NoReturn:
    raise _LimitExceeded(f"{what} would exceed the limit of {limit:,}")


def _check_size(value: Any, limit: int, what: str) -> None:
    """Raise if ``value`` is bigger than ``limit`` (elements plus string characters).

    The walk stops as soon as the budget is spent, so a structure of shared references
    (``[[1] * 10**6] * 10**6``) cannot make the walk, or the ``str()`` after it, explode.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif type(item) in _SCALAR_TYPES:  # skip the slow Mapping ABC check for numbers
            total += 1
        elif isinstance(item, (list, tuple)):
            total += len(item) + 1
            if total <= limit:
                stack.extend(item)
        elif isinstance(item, Mapping):
            total += 2 * len(item) + 1
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        else:
            total += 1
        if total > limit:
            _limit(what, limit)


def _to_str(value: Any) -> str:
    """str() for output, after checking containers cannot expand into a huge string."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        _check_size(value, MAX_RENDER_LENGTH, "string conversion")
    return str(value)


def _int_bits(value: int) -> int:
    return abs(value).bit_length()


def _checked_binop(operator: str, left: Any, right: Any) -> Any:
    """Apply an arithmetic operator after checking the result stays small."""
    if operator == "+":
        if (
            isinstance(left, (str, list, tuple))
            and isinstance(right, (str, list, tuple))
            and len(left) + len(right) > MAX_SEQUENCE_LENGTH
        ):
            _limit("concatenation length", MAX_SEQUENCE_LENGTH)
        return left + right
    if operator == "*":
        seq, count = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
            if len(seq) * max(count, 0) > MAX_SEQUENCE_LENGTH:
                _limit("repetition length", MAX_SEQUENCE_LENGTH)
        elif (
            isinstance(left, int)
            and isinstance(right, int)
            and _int_bits(left) + _int_bits(right) > MAX_INT_BITS
        ):
            _limit("integer size in bits", MAX_INT_BITS)
        return left * right
    if operator == "**":
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left) > 1
            and right * math.log2(abs(left)) > MAX_INT_BITS
        ):
            _limit("integer size in bits", MAX_INT_BITS)
        return left**right
    if operator == "%":
        if isinstance(left, str):
            # printf-style widths and precisions ('%999999999s') allocate without bound.
            raise SecurityError("the % string formatting operator is not allowed; use ~")
        return left % right
    raise SecurityError(f"operator {operator!r} is not allowed")  # pragma: no cover


def _bounded_range(*args: int) -> range:
    try:
        rng = range(*args)
        size = len(rng)
    except OverflowError:
        _limit("range size", MAX_RANGE)
    if size > MAX_RANGE:
        _limit("range size", MAX_RANGE)
    return rng


# --------------------------------------------------------------------------------------
# Filters and tests (allow-lists)
# --------------------------------------------------------------------------------------


@pass_environment
def _filter_join(
    env: jinja2.Environment, value: Iterable[Any], d: str = "", attribute: Any = None
) -> str:
    items: Iterable[Any] = value
    if attribute is not None:
        items = map(make_attrgetter(env, attribute), items)
    sep = _to_str(d)
    parts: list[str] = []
    total = 0
    for item in items:
        text = _to_str(item)
        total += len(text) + len(sep)
        if total > MAX_RENDER_LENGTH:
            _limit("join result length", MAX_RENDER_LENGTH)
        parts.append(text)
    return sep.join(parts)


def _filter_replace(s: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old_s, new_s = _to_str(s), _to_str(old), _to_str(new)
    # Chained replaces blew up memory in PITFALLS: compute the result length first.
    occurrences = text.count(old_s) if old_s else len(text) + 1
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    if len(text) + occurrences * (len(new_s) - len(old_s)) > MAX_RENDER_LENGTH:
        _limit("replace result length", MAX_RENDER_LENGTH)
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
                _limit("sum result length", MAX_SEQUENCE_LENGTH)
            acc.extend(item)
        return acc
    # Numbers: a sum of n values grows by at most log2(n) bits, no check needed.
    return sum(items, start)


def _filter_round(value: Any, precision: int = 0, method: str = "common") -> Any:
    if not isinstance(precision, int) or abs(precision) > _MAX_ROUND_PRECISION:
        raise _LimitExceeded(f"round precision must be an integer within ±{_MAX_ROUND_PRECISION}")
    return _JINJA_FILTERS["round"](value, precision, method)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Undefined):
        obj._fail_with_undefined_error()
    if isinstance(obj, (tuple, set, frozenset, range, Iterator)):
        return list(islice(obj, MAX_SEQUENCE_LENGTH + 1))
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _filter_tojson(value: Any, indent: int | None = None) -> str:
    # Plain JSON (Jinja's tojson HTML-escapes < > & ' for <script> tags: wrong for us).
    if indent is not None and not 0 <= indent <= _MAX_JSON_INDENT:
        raise _LimitExceeded(f"tojson indent must be between 0 and {_MAX_JSON_INDENT}")
    _check_size(value, MAX_RENDER_LENGTH, "tojson input size")
    text = json.dumps(value, indent=indent, ensure_ascii=False, default=_json_default)
    if len(text) > MAX_RENDER_LENGTH:
        _limit("tojson result length", MAX_RENDER_LENGTH)
    return text


def _filter_fromjson(value: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError(f"fromjson expects a string, got {type(value).__name__}")
    return json.loads(value)


def _filter_basename(value: Any) -> str:
    return posixpath.basename(_to_str(value))


def _filter_dirname(value: Any) -> str:
    return posixpath.dirname(_to_str(value))


# Jinja filters whose cost is linear in their input and whose output is no bigger than it.
_SAFE_JINJA_FILTERS = (
    "abs", "capitalize", "count", "d", "default", "dictsort", "first", "float", "int",
    "items", "last", "length", "list", "lower", "map", "max", "min", "reject",
    "rejectattr", "reverse", "select", "selectattr", "sort", "title", "trim", "truncate",
    "unique", "upper",
)  # fmt: skip

_FILTERS: dict[str, Callable[..., Any]] = {
    **{name: _JINJA_FILTERS[name] for name in _SAFE_JINJA_FILTERS},
    "join": _filter_join,
    "replace": _filter_replace,
    "round": _filter_round,
    "string": _to_str,
    "sum": _filter_sum,
    "tojson": _filter_tojson,
    "fromjson": _filter_fromjson,
    "basename": _filter_basename,
    "dirname": _filter_dirname,
}

_TESTS: dict[str, Callable[..., Any]] = {
    name: cast("Callable[..., Any]", _JINJA_TESTS[name])
    for name in (
        "defined", "undefined", "none", "number", "string", "mapping", "sequence",
        "boolean", "true", "false", "integer", "float",
        "eq", "ne", "lt", "gt", "le", "ge", "==", "!=", "<", ">", "<=", ">=",
        "in", "divisibleby", "even", "odd",
    )
}  # fmt: skip

# Methods callable from expressions.  Everything else that is callable (str.format,
# str.ljust(10**9), int.to_bytes(10**9), dict.update, ...) is refused by the sandbox.
_SAFE_METHODS: tuple[tuple[type, frozenset[str]], ...] = (
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


# --------------------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------------------

_LOOP_BUDGET_ATTR = "wfctl_loop_iterations"


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox with resource limits, allow-lists and dict-friendly attribute access."""

    # Operators whose result can be much bigger than their operands.
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return _checked_binop(operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Undefined):
            return obj  # chain: a.b.c stays "a.b is undefined"
        # Data are mappings: a key wins over a method, so an output field called
        # `items`, `keys` or `values` means the field (Jinja's default is the method).
        # The dict test first is also the fast path for the common steps.x.output.y.
        if isinstance(obj, (dict, Mapping)):
            try:
                return obj[attribute]
            except LookupError:
                pass
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Undefined):
            return obj
        return super().getitem(obj, argument)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if callable(value):
            return any(isinstance(obj, kind) and attr in names for kind, names in _SAFE_METHODS)
        return True

    def wrap_str_format(self, value: Any) -> None:
        # str.format / format_map are not on the method allow-list (a width such as
        # '{:>999999999}' allocates without bound); never hand out the wrapper.
        return None

    def wf_concat(self, *parts: Any) -> str:
        """The `~` operator, with a bound on the result length."""
        texts = [_to_str(part) for part in parts]
        if sum(map(len, texts)) > MAX_RENDER_LENGTH:
            _limit("concatenation length", MAX_RENDER_LENGTH)
        return "".join(texts)

    @staticmethod
    @pass_eval_context
    def wf_loop(eval_ctx: nodes.EvalContext, iterable: Any) -> Any:
        """Wraps every `{% for %}` iterable: counts iterations against the render budget.

        The counter lives on the EvalContext, which Jinja creates fresh for each render.
        """
        if isinstance(iterable, Undefined):
            return iterable  # let the loop raise the undefined error
        state = vars(eval_ctx)
        used: int = state.get(_LOOP_BUDGET_ATTR, 0)
        remaining = MAX_LOOP_ITERATIONS - used
        try:
            size = len(iterable)
        except TypeError:
            iterable = list(islice(iterable, remaining + 1))
            size = len(iterable)
        if size > remaining:
            _limit("loop iterations in one render", MAX_LOOP_ITERATIONS)
        state[_LOOP_BUDGET_ATTR] = used + size
        return iterable


def _finalize(value: Any) -> Any:
    # `{{ x }}` output: check containers before str() turns them into a huge string.
    if type(value) not in _SCALAR_TYPES and isinstance(value, (list, tuple, Mapping)):
        _check_size(value, MAX_RENDER_LENGTH, "output size")
    return value


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
_GLOBALS: dict[str, Any] = {"range": _bounded_range}


@functools.cache
def _environment() -> _Environment:
    """The one shared environment, created on first use."""
    env = _Environment(
        undefined=_Undefined,
        autoescape=False,
        keep_trailing_newline=True,  # a template renders exactly what was written around it
        finalize=_finalize,
        cache_size=0,
        auto_reload=False,
    )
    env.filters = dict(_FILTERS)
    env.tests = dict(_TESTS)
    # No lipsum, cycler, joiner, namespace, dict; range only bounded.
    env.globals.clear()
    env.globals.update(_GLOBALS)
    return env


def _new_context(template: jinja2.Template, context: Mapping[str, Any]) -> Context:
    # Template.new_context copies a ChainMap of globals on every call (about 4 us);
    # building the parent dict here is about 1 us.
    return new_context(template.environment, None, template.blocks, {**_GLOBALS, **context}, True)


# --------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------

# Statements that allow unbounded recursion (macros), output buffered out of sight of the
# render-length check (set/filter blocks), or loading other templates.
_FORBIDDEN_STATEMENTS: dict[type[nodes.Node], str] = {
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


_N = TypeVar("_N", bound=nodes.Node)


def _find(tree: nodes.Node, kind: type[_N] | tuple[type[_N], ...]) -> Iterator[_N]:
    """Like Node.find_all, but including ``tree`` itself (find_all skips it)."""
    if isinstance(tree, kind):
        yield tree
    yield from tree.find_all(kind)


def _check_tree(tree: nodes.Node, source: str) -> None:
    """Compile-time checks Jinja does not do (or defers to runtime inside `if`)."""
    for node in _find(tree, nodes.Node):
        kind = type(node)
        if kind in _FORBIDDEN_STATEMENTS:
            raise ExpressionError(
                f"{_FORBIDDEN_STATEMENTS[kind]} is not supported in wfctl templates",
                expression=source,
                kind="syntax",
                lineno=node.lineno,
            )
        if isinstance(node, nodes.For) and node.recursive:
            raise ExpressionError(
                "recursive loops are not supported in wfctl templates",
                expression=source,
                kind="syntax",
                lineno=node.lineno,
            )
        if isinstance(node, nodes.Filter) and node.name not in _FILTERS:
            raise ExpressionError(
                f"unknown filter {node.name!r} (available: {', '.join(sorted(_FILTERS))})",
                expression=source,
                kind="syntax",
                lineno=node.lineno,
            )
        if isinstance(node, nodes.Test) and node.name not in _TESTS:
            raise ExpressionError(
                f"unknown test {node.name!r} (available: {', '.join(sorted(_TESTS))})",
                expression=source,
                kind="syntax",
                lineno=node.lineno,
            )


def _syntax_error(exc: TemplateSyntaxError, source: str, *, bare: bool) -> ExpressionError:
    message = exc.message or "invalid syntax"
    if bare:
        # Jinja's wording is about templates and print statements.
        message = message.replace("end of print statement", "end of expression").replace(
            "end of template", "end of expression"
        )
    return ExpressionError(
        f"syntax error: {message}", expression=source, kind="syntax", lineno=exc.lineno
    )


def _check_source(source: Any) -> str:
    if not isinstance(source, str):
        raise ExpressionError(
            f"an expression must be a string, not {type(source).__name__}",
            expression=repr(source),
            kind="syntax",
        )
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"expression is longer than {MAX_SOURCE_LENGTH:,} characters",
            expression=source[:200],
            kind="limit",
        )
    return source


def _parse_template(env: _Environment, source: str) -> nodes.Template:
    try:
        return Parser(env, source).parse()
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc, source, bare=False) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            "template is nested too deeply", expression=source, kind="limit"
        ) from None


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is exactly one ``{{ expr }}``, else None."""
    if len(tree.body) == 1 and isinstance(tree.body[0], nodes.Output):
        parts = tree.body[0].nodes
        if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
            return parts[0]
    return None


def _build(env: _Environment, tree: nodes.Template, source: str) -> jinja2.Template:
    """Rewrite, then generate and compile the Python code for a checked tree."""
    _check_tree(tree, source)
    tree = _Rewriter().visit(tree)
    tree.set_environment(env)
    try:
        return env.from_string(tree)
    except TemplateSyntaxError as exc:  # TemplateAssertionError from the code generator
        raise _syntax_error(exc, source, bare=False) from None
    except (RecursionError, MemoryError, SyntaxError) as exc:
        raise ExpressionError(
            f"expression is too complex to compile ({type(exc).__name__})",
            expression=source,
            kind="limit",
        ) from None


def _step_refs(tree: nodes.Node) -> frozenset[str]:
    """Step ids named statically: steps.<id>, steps['<id>'], steps.get('<id>')."""
    refs: set[str] = set()
    method_targets: set[int] = set()
    for call in _find(tree, nodes.Call):
        target = call.node
        if (
            isinstance(target, nodes.Getattr)
            and isinstance(target.node, nodes.Name)
            and target.node.name == "steps"
            and target.attr in ("get", "keys", "values", "items")
        ):
            # steps.get('x') is a method call (unless a step is literally named "get",
            # which getattr would then prefer: count it as a reference too).
            method_targets.add(id(target))
            first = call.args[0] if call.args else None
            key = first.value if isinstance(first, nodes.Const) else None
            if target.attr == "get" and isinstance(key, str):
                refs.add(key)
    for attr in _find(tree, nodes.Getattr):
        if _is_steps(attr.node) and id(attr) not in method_targets:
            refs.add(attr.attr)
    for item in _find(tree, nodes.Getitem):
        key = _const_key(item)
        if _is_steps(item.node) and isinstance(key, str):
            refs.add(key)
    return frozenset(refs)


def _is_steps(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "steps"


def _const_key(node: nodes.Getitem) -> Any:
    """The constant subscript of x['key'] / x[0], or None."""
    return node.arg.value if isinstance(node.arg, nodes.Const) else None


def _load_names(tree: nodes.Node) -> set[str]:
    return {n.name for n in _find(tree, nodes.Name) if n.ctx == "load"}


def _needs_deep_check(tree: nodes.Node) -> bool:
    """Can the result be a container holding undefined values or generators?

    Only literals, filters and calls build containers; a plain path into the context
    (steps.a.output) returns context data as is, with no need to walk it.
    """
    for _ in _find(tree, (nodes.List, nodes.Dict, nodes.Tuple, nodes.Filter, nodes.Call)):
        return True
    return False


# --------------------------------------------------------------------------------------
# Evaluation helpers
# --------------------------------------------------------------------------------------

_SCALARS = (str, int, float, bool, type(None))


def _to_data(value: Any, budget: list[int]) -> Any:
    """Turn an evaluation result into plain data: lists for tuples/generators/views, and
    an error for undefined values hidden inside containers or for stray callables."""
    budget[0] -= 1
    if budget[0] < 0:
        _limit("result size", MAX_SEQUENCE_LENGTH)
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Mapping):  # dicts, and read-only views such as the engine's `steps`
        return {_to_data(k, budget): _to_data(v, budget) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_data(v, budget) for v in value]
    if callable(value):
        raise TypeError(
            f"the result is a {type(value).__name__}, not a value (missing '()' after a "
            "method name?)"
        )
    if isinstance(value, (Iterator, range, KeysView, ValuesView, ItemsView, set, frozenset)):
        # generators from map/select, dict views, range objects
        return [_to_data(v, budget) for v in islice(value, budget[0] + 1)]
    return value


def _finish(value: Any, deep: bool) -> Any:
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
        return message + _suggest(match.group(1), [*context.keys(), "range"])
    if tree is None:
        return message
    accesses: list[tuple[nodes.Node, Any]] = [(n.node, n.attr) for n in _find(tree, nodes.Getattr)]
    accesses += [(n.node, _const_key(n)) for n in _find(tree, nodes.Getitem)]
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
    if isinstance(exc, (_LimitExceeded, OverflowError, MemoryError, RecursionError)):
        return "limit"
    if isinstance(exc, SecurityError):
        return "security"
    if isinstance(exc, UndefinedError):
        return "undefined"
    return "type"


def _evaluation_error(
    exc: Exception, source: str, tree: nodes.Node | None, context: Mapping[str, Any]
) -> ExpressionError:
    kind = _kind_of(exc)
    detail = str(exc).strip()
    if isinstance(exc, TemplateError):
        text = exc.message or type(exc).__name__
    elif isinstance(exc, _LimitExceeded):
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


# --------------------------------------------------------------------------------------
# Public objects
# --------------------------------------------------------------------------------------


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
        try:
            ctx = _new_context(template, context)
            for _ in template.root_render_func(ctx):
                pass
            return _finish(ctx.vars["result"], self._deep)
        except Exception as exc:
            # `from None`: the chained Jinja exception may quote values (secrets).
            raise _evaluation_error(exc, self.source, self._tree, context) from None

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
        try:
            parts: list[str] = []
            total = 0
            for chunk in template.root_render_func(_new_context(template, context)):
                total += len(chunk)
                if total > MAX_RENDER_LENGTH:
                    _limit("rendered length", MAX_RENDER_LENGTH)
                parts.append(chunk)
            return "".join(parts)
        except Exception as exc:
            raise _evaluation_error(exc, self.source, self._tree, context) from None

    def names(self) -> frozenset[str]:
        return self._names

    def step_refs(self) -> frozenset[str]:
        return self._step_refs


def is_template(value: str) -> bool:
    """True when the string contains ``{{`` or ``{%`` (and so is rendered, not copied)."""
    return "{{" in value or "{%" in value


def _expression_from_node(env: _Environment, expr: nodes.Expr, source: str) -> Expression:
    names = frozenset(_load_names(expr) - set(env.globals))
    refs = _step_refs(expr)
    deep = _needs_deep_check(expr)
    # Evaluate as a one-assignment template (what Environment.compile_expression does,
    # minus its undefined_to_none=True default, which would hide typos).
    body: list[nodes.Node] = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
    template = _build(env, nodes.Template(body, lineno=1), source)
    return Expression(source, template, expr, names, refs, deep)


@functools.lru_cache(maxsize=4096)
def _compile_expression_cached(source: str) -> Expression:
    env = _environment()
    stripped = source.strip()
    if stripped.startswith("{{") and stripped.endswith("}}"):
        # `if: "{{ x > 1 }}"` is a common habit: accept a lone {{ }} around a condition.
        try:
            single = _single_expression(Parser(env, stripped).parse())
        except Exception:
            single = None
        if single is not None:
            return _expression_from_node(env, single, source)
    parser = Parser(env, source, state="variable")
    try:
        expr = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise TemplateSyntaxError(
                f"unexpected {token.value!r} after the expression",
                token.lineno,
            )
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc, source, bare=True) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            "expression is nested too deeply", expression=source, kind="limit"
        ) from None
    return _expression_from_node(env, expr, source)


def compile_expression(source: str) -> Expression:
    """Compile a bare expression; raises ExpressionError(kind="syntax") when invalid."""
    source = _check_source(source)
    try:
        return _compile_expression_cached(source)
    except ExpressionError:
        raise
    except Exception as exc:  # anything the parser or code generator did not foresee
        raise _unexpected_compile_error(exc, source) from None


def _unexpected_compile_error(exc: Exception, source: str) -> ExpressionError:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return ExpressionError(f"cannot compile: {detail}", expression=source, kind="syntax")


@functools.lru_cache(maxsize=4096)
def _compile_template_cached(source: str) -> Template:
    if not is_template(source):
        return Template(source, True)
    env = _environment()
    tree = _parse_template(env, source)
    single = _single_expression(tree)
    if single is not None:
        expression = _expression_from_node(env, single, source)
        return Template(
            source, False, expression, None, tree, expression.names(), expression.step_refs()
        )
    _check_tree(tree, source)
    if any(n.ctx != "load" for n in _find(tree, nodes.Name)):
        # {% set %} / {% for x %} declare local names: let Jinja's own analysis tell
        # which names really come from the context.
        from jinja2 import meta

        names = set(meta.find_undeclared_variables(tree))
    else:
        names = _load_names(tree)
    names -= set(env.globals)
    refs = _step_refs(tree)
    template = _build(env, tree, source)
    return Template(source, False, None, template, tree, frozenset(names), refs)


def compile_template(source: str) -> Template:
    """Compile a templated string (a constant when it has no ``{{`` / ``{%``)."""
    source = _check_source(source)
    try:
        return _compile_template_cached(source)
    except ExpressionError:
        raise
    except Exception as exc:  # anything the parser or code generator did not foresee
        raise _unexpected_compile_error(exc, source) from None


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


# --------------------------------------------------------------------------------------
# with: structures
# --------------------------------------------------------------------------------------

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class CompiledValue:
    """A ``with:`` structure with its template strings compiled.

    ``render`` returns fresh dicts and lists each time (so callers may mutate the result);
    non-template leaves are shared.
    """

    value: Any = field(repr=False)  # the structure with Template objects at template leaves
    has_templates: bool = False

    def render(self, context: Mapping[str, Any]) -> Any:
        return _render_value(self.value, context, ())

    def templates(self) -> Iterator[tuple[Path, Template]]:
        """(relative path, Template) for every templated string, in document order."""
        yield from _walk_templates(self.value, ())

    def names(self) -> frozenset[str]:
        return frozenset().union(*(t.names() for _, t in self.templates()))

    def step_refs(self) -> frozenset[str]:
        return frozenset().union(*(t.step_refs() for _, t in self.templates()))


def _compile_tree(value: Any, path: Path) -> tuple[Any, bool]:
    if isinstance(value, str):
        if not is_template(value):
            return value, False
        try:
            return compile_template(value), True
        except ExpressionError as exc:
            raise exc.with_path(path) from None
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        found = False
        for key, item in value.items():
            out[key], sub = _compile_tree(item, (*path, key))
            found = found or sub
        return out, found
    if isinstance(value, (list, tuple)):
        items = []
        found = False
        for index, item in enumerate(value):
            compiled, sub = _compile_tree(item, (*path, index))
            items.append(compiled)
            found = found or sub
        return items, found
    return value, False


def _render_value(value: Any, context: Mapping[str, Any], path: Path) -> Any:
    if isinstance(value, Template):
        try:
            return value.render(context)
        except ExpressionError as exc:
            raise exc.with_path(path) from None
    if isinstance(value, dict):
        return {k: _render_value(v, context, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, context, (*path, i)) for i, v in enumerate(value)]
    return value


def _walk_templates(value: Any, path: Path) -> Iterator[tuple[Path, Template]]:
    if isinstance(value, Template):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_templates(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_templates(item, (*path, index))


def compile_value(value: Any) -> CompiledValue:
    """Compile every template string inside a ``with:`` value (keys are not templated).

    Raises ExpressionError with ``path`` set to the offending position.
    """
    tree, found = _compile_tree(value, ())
    return CompiledValue(tree, found)
