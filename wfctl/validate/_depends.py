"""What a step's `depends` expression names: the steps it depends on (the model and the
graph rules desugar them into dependencies) and the result flags each one has."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["DEPENDS_ATTRS", "depends_refs"]

#: What `<step>.<attr>` may read in `depends` (the engine's StatusFlags, kept in step).
DEPENDS_ATTRS: Final = frozenset(
    {
        "succeeded",
        "failed",
        "errored",
        "timed_out",
        "cancelled",
        "skipped",
        "done",
        "status",
        "error_kind",
        "skip_reason",
    }
)


def depends_refs(source: Any) -> tuple[str, ...]:
    """The step ids a `depends` expression names (its top-level names), sorted; () for
    anything that is not a valid expression (validation reports it)."""
    if not isinstance(source, str) or not source.strip():
        return ()
    # Imported here: only workflows that use `depends` pay for Jinja.
    from wfctl.expressions import ExpressionError
    from wfctl.expressions.analysis import analyse

    try:
        return tuple(sorted(analyse(source, True).names))
    except ExpressionError:
        return ()
