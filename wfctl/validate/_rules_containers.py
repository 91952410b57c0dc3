"""Rules on containers: what a group loop's body (`steps:` under a loop step) may hold,
and the shape of a matrix's `include` / `exclude`.

A body step runs once per iteration under an iteration id (``each[2].fetch``); a step
that runs on its own terms cannot be one: a human_approval step (decided by id from
outside the run) or a step that other steps invoke as a handler, rollback or tool.
"""

from __future__ import annotations

from wfctl.validate._context import Context, StepInfo

__all__ = ["check_loop_bodies", "check_matrices"]


def _loop_of(ctx: Context, info: StepInfo) -> str | None:
    """The group loop whose body holds `info` (through parallel groups), if any."""
    container = info.container
    while container is not None and container in ctx.steps:
        outer = ctx.steps[container]
        if outer.data.get("step_type") == "loop":
            return container
        container = outer.container
    return None


def check_matrices(ctx: Context) -> None:
    """A matrix's `include` and `exclude` are lists of non-empty mappings."""
    for info in ctx.steps.values():
        matrix = info.data.get("matrix")
        if not isinstance(matrix, dict):
            continue
        for key in ("include", "exclude"):
            entries = matrix.get(key)
            for i, entry in enumerate(entries if isinstance(entries, list) else []):
                if not isinstance(entry, dict) or not entry:
                    ctx.report(
                        (*info.path, "matrix", key, i),
                        "matrix",
                        f"matrix.{key}[{i}] must be a mapping of axis values (got {entry!r})",
                        "for example {os: linux, python: '3.12'}",
                    )


def check_loop_bodies(ctx: Context) -> None:
    """No approval steps and no invoked steps inside a group loop's body."""
    for info in ctx.steps.values():
        loop = _loop_of(ctx, info)
        if loop is None:
            continue
        if info.data.get("step_type") == "human_approval":
            ctx.report(
                (*info.path, "step_type"),
                "loop-body",
                f"'{info.step_id}' is a human_approval step inside the body of loop '{loop}'",
                "approve once, before or after the loop",
            )
        if info.step_id in ctx.handlers:
            ctx.report(
                (*info.path, "step_id"),
                "loop-body",
                f"'{info.step_id}' runs as a handler, rollback or tool, so it cannot be in "
                f"the body of loop '{loop}'",
                "move it to the top level of steps:",
            )
