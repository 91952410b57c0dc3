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


def _can_start(s: Any, done: set[str], dependents: Any) -> bool:
    """Every dependency inside this container is done (outside ones are met already)."""
    return all(d in done or d not in dependents for d in s.dependencies)


def _show(plan: Any, container: str | None, indent: str, out: IO[str]) -> None:
    """The steps of one container in waves: each wave waits only on earlier ones."""
    level = plan.levels[container]
    done: set[str] = set()
    wave = 0
    pending = list(level.steps)
    while pending:
        ready = [s for s in pending if _can_start(s, done, level.dependents)]
        if not ready:
            break
        wave += 1
        for s in sorted(ready, key=lambda s: -plan.rank[s.step_id]):
            out.write(_line(s, wave, indent))
            if s.children:
                _show(plan, s.step_id, indent + "   ", out)
        done.update(s.step_id for s in ready)
        pending = [s for s in pending if s.step_id not in done]


def dry_run(workflow: Any, out: IO[str]) -> None:
    """Print the plan: each step with what it waits on, in an order that could run."""
    from wfctl.compile.plan import compile_plan

    plan = compile_plan(workflow)
    out.write(f"plan for {workflow.name} ({len(workflow.all_steps)} steps), nothing was run:\n")
    _show(plan, None, "  ", out)
    if workflow.handlers:
        out.write(f"  handlers (run on failure/rollback): {', '.join(sorted(workflow.handlers))}\n")
