"""The workflows a file defines (`workflows:`): each checked like a workflow file, once,
with its problems at its own lines of the file; and no chain of `#name` calls among them
returns to where it started through another one (one calling itself is recursion,
bounded at run time, as for files)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from wfctl import graph
from wfctl.document.local_workflows import (
    LocalWorkflow,
    in_file,
    is_local,
    local_names,
    local_workflow,
)
from wfctl.document.sourcemap import Path_
from wfctl.validate._context import Context, collect_steps

__all__ = ["check_local_workflows"]


def check_local_workflows(ctx: Context) -> None:
    """Check each workflow of the file's `workflows:`, then the calls among them."""
    if isinstance(ctx.doc, LocalWorkflow):
        return  # checked once, with its file
    from wfctl.validate.semantic import semantic_diagnostics  # it runs this rule

    calls: dict[str, list[tuple[Path_, str]]] = {}
    for name in local_names(ctx.doc):
        body = local_workflow(ctx.doc, name)
        assert body is not None  # a name it lists
        for d in semantic_diagnostics(body):
            # Its own problems name their path in the file (a called file's keep theirs).
            ctx.out.append(
                dataclasses.replace(d, path=in_file(body, d.path)) if d.file == body.file else d
            )
        calls[name] = list(_calls(body))
    _check_cycles(ctx, calls)


def _calls(body: LocalWorkflow) -> Iterator[tuple[Path_, str]]:
    """(path in the file of the `uses`, name called) of each `#name` call in `body`."""
    found = Context(body)
    collect_steps(found, body.data.get("steps"), ("steps",), None)
    collect_steps(found, body.data.get("on_exit"), ("on_exit",), None)
    for info in found.steps.values():
        uses = info.data.get("uses")
        if isinstance(uses, str) and is_local(uses):
            yield ("workflows", body.name, *info.path, "uses"), uses[1:]


def _check_cycles(ctx: Context, calls: dict[str, list[tuple[Path_, str]]]) -> None:
    # Each workflow "depends on" its callers, so a cycle comes out in call order.
    callers: dict[str, tuple[str, ...]] = {name: () for name in calls}
    for caller, sites in calls.items():
        for _, callee in sites:
            if callee in callers and callee != caller:
                callers[callee] = (*callers[callee], caller)
    order = {name: i for i, name in enumerate(calls)}
    for cycle in graph.cycles(callers, order.__getitem__):
        last, first = cycle[-1], cycle[0]
        at = next(path for path, callee in calls[last] if callee == first)
        text = " -> ".join(f"#{n}" for n in [*cycle, first])
        ctx.report(
            at,
            "subflow-cycle",
            f"sub-workflow cycle: {text}",
            "only a workflow calling itself (guarded by `when`) may recurse",
        )
