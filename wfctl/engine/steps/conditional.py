"""The conditional step: choose the first branch whose `when` holds; the others' targets
are skipped (unless another branch chose them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wfctl.expressions import truthy
from wfctl.model import Branch, ConditionalBody, Step
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["mark_branches", "run"]


async def run(ex: Executor, step: Step, record: StepRecord) -> Any:
    """Evaluate the branches; output which one was taken."""
    ctx = ex.context(step)
    chosen_index: int | None = None
    branches = _branches(step)
    for index, branch in enumerate(branches):
        if branch.when is None or truthy(branch.when.evaluate(ctx)):
            chosen_index = index
            break
    chosen = mark_branches(ex, step, chosen_index, _label)
    return {
        "branch": chosen_index,
        "name": branches[chosen_index].name if chosen_index is not None else None,
        "next_steps": sorted(chosen),
    }


def _label(step: Step, branch: Branch) -> str:
    label = branch.name or (branch.when.source if branch.when else "else")
    return f"branch not taken: '{label}' of '{step.step_id}'"


def _resumed_label(step: Step, branch: Branch) -> str:
    return f"branch not taken: '{step.step_id}'"


def mark_branches(ex: Executor, step: Step, chosen_index: Any, label: Any = None) -> set[str]:
    """Record the chosen branch's targets and why the others' are not taken."""
    name = label or _resumed_label
    branches = _branches(step)
    chosen = (
        set(branches[chosen_index].next_steps)
        if isinstance(chosen_index, int) and 0 <= chosen_index < len(branches)
        else set()
    )
    ex.chosen.update(chosen)
    for index, branch in enumerate(branches):
        if index == chosen_index:
            continue
        for target in branch.next_steps:
            if target not in chosen:
                ex.not_taken.setdefault(target, name(step, branch))
    return chosen


def _branches(step: Step) -> tuple[Branch, ...]:
    body = step.body
    return body.branches if isinstance(body, ConditionalBody) else ()
