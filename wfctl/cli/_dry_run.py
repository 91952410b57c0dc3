"""`wfctl run --dry-run`: the plan printed, nothing run."""

from __future__ import annotations

from typing import IO, Any

from wfctl.model import ReactBody


def _what(s: Any) -> str:
    return (
        s.action
        or (f"agent:{s.agent_capability}" if s.agent_capability else "")
        or (s.body.model or "" if isinstance(s.body, ReactBody) else "")
    )


def _line(s: Any, wave: int, indent: str) -> str:
    after = f" after {', '.join(s.dependencies)}" if s.dependencies else ""
    what = _what(s)
    kind = s.step_type.value + (f" {what}" if what else "")
    rule = f" [{s.trigger_rule.value}]" if s.trigger_rule.value != "all_success" else ""
    cond = f" when {s.when.source}" if s.when is not None else ""
    return f"{indent}{wave}. {s.step_id} ({kind}){after}{rule}{cond}\n"


def _show(plan: Any, container: str | None, indent: str, out: IO[str]) -> None:
    """The steps of one container in waves: each wave waits only on earlier ones."""
    from wfctl import graph

    level = plan.levels[container]
    steps = {s.step_id: s for s in level.steps}
    # Dependencies outside this container are met before it starts.
    deps = {sid: [d for d in s.dependencies if d in steps] for sid, s in steps.items()}
    for wave, ids in enumerate(graph.waves(deps), start=1):
        for sid in sorted(ids, key=lambda i: -plan.rank[i]):
            out.write(_line(steps[sid], wave, indent))
            if steps[sid].children:
                _show(plan, sid, indent + "   ", out)


def dry_run(workflow: Any, out: IO[str]) -> None:
    """Print the plan: each step with what it waits on, in an order that could run."""
    from wfctl.compile.plan import compile_plan

    plan = compile_plan(workflow)
    out.write(f"plan for {workflow.name} ({len(workflow.all_steps)} steps), nothing was run:\n")
    _show(plan, None, "  ", out)
    if workflow.handlers:
        out.write(f"  handlers (run on failure/rollback): {', '.join(sorted(workflow.handlers))}\n")
    if workflow.on_exit:
        hooks = ", ".join(s.step_id for s in workflow.on_exit)
        out.write(f"  on_exit (run last, in order, whatever the outcome): {hooks}\n")
