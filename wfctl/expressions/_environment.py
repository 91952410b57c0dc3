"""The sandboxed Jinja environment: resource limits, allow-lists, dict-friendly lookups.

Always ``ImmutableSandboxedEnvironment`` (PITFALLS.md: the plain and native environments
let known escapes through), never Python ``eval``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from itertools import islice
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import Context, Undefined, new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_eval_context

from wfctl.expressions import _budget as budget
from wfctl.expressions._filters import FILTERS, SAFE_METHODS, TESTS
from wfctl.expressions._limits import (
    BINOPS,
    MAX_LOOP_ITERATIONS,
    MAX_RENDER_LENGTH,
    SCALAR_TYPES,
    bounded_range,
    check_size,
    checked_binop,
    limit,
    to_str,
)
from wfctl.expressions._undefined import ChainedUndefined

__all__ = ["GLOBALS", "SandboxEnvironment", "environment", "render_context"]

_LOOP_BUDGET_ATTR = "wfctl_loop_iterations"
_SIZED = frozenset({str, list, tuple, dict})
# Filters whose cost does not grow with their input: not worth a tick.
_UNMETERED = frozenset({"abs", "count", "d", "default", "first", "float", "int", "last", "length"})


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with resource limits, allow-lists and dict-friendly attribute access."""

    # Operators whose result can be much bigger than their operands.
    intercepted_binops = frozenset(BINOPS)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        result = checked_binop(operator, left, right)
        budget.allocate(len(result) + 1 if type(result) in _SIZED else 1)
        return result

    def call(
        __self,  # Jinja's signature: `self` may be a keyword argument
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        # Every call from an expression (methods, range()) is metered.
        result = super().call(__context, __obj, *args, **kwargs)
        budget.allocate(len(result) + 1 if type(result) in _SIZED else 1)
        return result

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
            return any(isinstance(obj, kind) and attr in names for kind, names in SAFE_METHODS)
        return True

    def wrap_str_format(self, value: Any) -> None:
        # str.format / format_map are not on the method allow-list (a width such as
        # '{:>999999999}' allocates without bound); never hand out the wrapper.
        return None

    def wf_concat(self, *parts: Any) -> str:
        """The `~` operator, with a bound on the result length."""
        texts = [to_str(part) for part in parts]
        size = sum(map(len, texts))
        if size > MAX_RENDER_LENGTH:
            limit("concatenation length", MAX_RENDER_LENGTH)
        budget.allocate(size + 1)
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
            limit("loop iterations in one render", MAX_LOOP_ITERATIONS)
        state[_LOOP_BUDGET_ATTR] = used + size
        return budget.ticking(iterable)


def _finalize(value: Any) -> Any:
    # `{{ x }}` output: check containers before str() turns them into a huge string.
    if type(value) not in SCALAR_TYPES and isinstance(value, (list, tuple, Mapping)):
        check_size(value, MAX_RENDER_LENGTH, "output size")
    return value


GLOBALS: dict[str, Any] = {"range": bounded_range}


@functools.cache
def environment() -> SandboxEnvironment:
    """The one shared environment, created on first use."""
    env = SandboxEnvironment(
        undefined=ChainedUndefined,
        autoescape=False,
        keep_trailing_newline=True,  # a template renders exactly what was written around it
        finalize=_finalize,
        cache_size=0,
        auto_reload=False,
    )
    env.filters = {
        name: func if name in _UNMETERED else budget.metered(func) for name, func in FILTERS.items()
    }
    env.tests = dict(TESTS)
    # No lipsum, cycler, joiner, namespace, dict; range only bounded.
    env.globals.clear()
    env.globals.update(GLOBALS)
    return env


def render_context(template: jinja2.Template, context: Mapping[str, Any]) -> Context:
    """A render context for `template` holding `context` and the globals."""
    # Template.new_context copies a ChainMap of globals on every call (about 4 us);
    # building the parent dict here is about 1 us.
    return new_context(template.environment, None, template.blocks, {**GLOBALS, **context}, True)
