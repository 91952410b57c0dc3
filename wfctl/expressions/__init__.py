"""The expression language: sandboxed Jinja2 for conditions, mappings and templated strings.

A condition or mapping value is a bare expression (``steps.fetch.output.total > 100``); a
string containing ``{{ ... }}`` or ``{% ... %}`` is a template.  Everything is compiled once
(at validation time) and evaluated many times, always in
``jinja2.sandbox.ImmutableSandboxedEnvironment`` -- never with Python ``eval``.

The Jinja sandbox stops attribute escapes but bounds no resources (see PITFALLS.md,
"Jinja2 sandbox"), so this package adds, on top of it:

* an allow-list of filters, tests, globals (only a bounded ``range``) and methods
  (``_filters``);
* size checks on ``+``, ``*``, ``**``, ``~``, ``join``, ``replace``, ``sum``, ``round``
  (``_limits``);
* a cap on rendered output and on ``{% for %}`` iterations per render (``_environment``);
* a time and allocation budget per evaluation, checked while it runs, that also lets
  Ctrl-C stop it (``_budget``; :func:`evaluation_time_limit` lowers it to a step's timeout);
* rejection of template features that allow unbounded recursion or hidden buffers
  (macros, call/filter/set blocks, recursive loops, include/import/extends) (``_tree``);
* strict undefined handling, so a typo is an error and not a silently false condition
  (``_undefined``).

Every failure, at compile or evaluation time, surfaces as :class:`ExpressionError` with a
one-line message and a ``kind``; nothing else escapes.

Modules: ``_parse`` (source to tree), ``_compiled`` (Expression, Template), ``_values``
(``with:`` structures), ``_evaluate`` (results and errors), and the public ``analysis``
(what an expression reads, with positions, without generating code: validation's view).
"""

from __future__ import annotations

from wfctl.expressions._budget import (
    MAX_ALLOCATION,
    MAX_EVALUATION_SECONDS,
    signal_handled,
    signal_pending,
    watching_signals,
)
from wfctl.expressions._budget import time_limit as evaluation_time_limit
from wfctl.expressions._compiled import (
    Expression,
    Template,
    compile_expression,
    compile_template,
    is_template,
    truthy,
)
from wfctl.expressions._errors import ExpressionError, ExpressionKind
from wfctl.expressions._limits import (
    MAX_INT_BITS,
    MAX_LOOP_ITERATIONS,
    MAX_RANGE,
    MAX_RENDER_LENGTH,
    MAX_SEQUENCE_LENGTH,
    MAX_SOURCE_LENGTH,
)
from wfctl.expressions._values import CompiledValue, compile_value

__all__ = [
    "MAX_ALLOCATION",
    "MAX_EVALUATION_SECONDS",
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
    "evaluation_time_limit",
    "is_template",
    "signal_handled",
    "signal_pending",
    "truthy",
    "watching_signals",
]
