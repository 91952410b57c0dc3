"""Rules on the shape of the dependency graph (computed by wfctl.graph): cycles, and steps
that can never start because they wait on a handler step."""

from __future__ import annotations

from wfctl import graph
from wfctl.validate._context import Context

__all__ = ["check_cycles", "check_reachable"]


def check_cycles(ctx: Context) -> None:
    """Report each dependency cycle once, in run order from the step written first."""
    for cycle in graph.cycles(ctx.deps, ctx.doc_order):
        ctx.on_cycle.update(cycle)
        text = " -> ".join([*cycle, cycle[0]])
        ctx.report(
            (*ctx.steps[cycle[0]].path, "step_id"),
            "cycle",
            f"dependency cycle: {text}",
            "remove one of these dependencies",
        )


def check_reachable(ctx: Context) -> None:
    """Steps that wait on a handler step can never start (nor can their dependents).

    Only the first step of each such chain is reported: the rest follows from it.
    Steps on or downstream of a cycle are not reported either; the cycle is.
    """
    handlers = ctx.handlers & set(ctx.steps)
    after_cycle = graph.blocked(ctx.deps, ctx.on_cycle, ctx.order)
    blocked = after_cycle | handlers
    for step_id in ctx.order:
        if step_id in blocked:
            continue
        culprits = sorted(d for d in ctx.deps[step_id] if d in blocked)
        if not culprits:
            continue
        blocked.add(step_id)
        direct = [c for c in culprits if c in handlers]
        if direct:
            ctx.report(
                (*ctx.steps[step_id].path, "step_id"),
                "unreachable",
                f"step '{step_id}' can never run: it waits on '{direct[0]}', "
                "which is a handler step",
                "handler steps run only from error_handlers/rollback_actions, never in "
                "the normal flow",
            )
