"""The sub-workflow call (`uses:`): the child's steps, inlined under the call's id by
:mod:`wfctl.model.subflow`, run as a nested graph of the same run.

Its steps' expressions see the child's own `inputs` (the call's `with:`, checked against
the child's declared inputs, defaults applied) and `vars` (its `global_variables`), and
`steps.<id>` names the child's own steps. The call succeeds when every child step that
may not fail succeeded; its output is the child's `outputs:`, evaluated at the end.
The call's `timeout` bounds the whole child; cancel and the workflow timeout reach its
steps like any others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from wfctl.engine.attempts import StepFailed
from wfctl.engine.handlers import failures_of
from wfctl.engine.scopes import Scope, ScopedStepsView
from wfctl.engine.workflow_view import WorkflowView
from wfctl.expressions import ExpressionError
from wfctl.model import Step, StepStatus, StepType, SubflowBody
from wfctl.model.inputs import InputError, resolve_inputs
from wfctl.model.scopes import template_of
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["run", "skip_inside"]


async def run(ex: Executor, step: Step, record: StepRecord) -> Any:
    """Run the child's graph, then its outputs."""
    body = step.body
    assert isinstance(body, SubflowBody)  # the dispatch table sends only calls here
    if body.too_deep is not None:
        raise StepFailed(f"{body.too_deep} at {step.step_id}", "validation")
    record.status = StepStatus.RUNNING
    ex.emit_state(step.step_id)
    scope = _scope(ex, step, body)
    if step.timeout is None:
        await _run_child(ex, step, scope)
    else:
        try:
            with anyio.fail_after(step.timeout):
                await _run_child(ex, step, scope)
        except TimeoutError:
            raise StepFailed(f"sub-workflow timed out after {step.timeout:g}s", "timeout") from None
    return _judge(ex, step, body, scope, record)


def _scope(ex: Executor, step: Step, body: SubflowBody) -> Scope:
    """The child's names: its own step ids, inputs and vars (not the caller's)."""
    outer = ex.scopes.get(step.step_id) if ex.scopes else None
    try:
        given = body.with_.render(ex.context(step))
        inputs = resolve_inputs(body.inputs, given if isinstance(given, dict) else {})
    except (ExpressionError, InputError) as exc:
        raise StepFailed(f"{body.uses}: {exc}", "validation") from None
    # Its own ids name its steps; ids of the file (templates) keep their records.
    own = {
        local: outer.sid(inlined) if outer is not None else inlined
        for local, inlined in body.local_ids.items()
    }
    names = dict(outer.names) if outer is not None else {}
    context = {
        "inputs": inputs,
        "vars": dict(body.variables),
        "steps": ScopedStepsView(ex.records, own),
        "workflow": _child_view(ex, step.step_id, body, names),
    }
    return Scope(step.step_id, {}, names, context)


def _child_view(
    ex: Executor, call_id: str, body: SubflowBody, names: Mapping[str, str]
) -> WorkflowView:
    """The child's `workflow`: the run's facts, and the child's own `status` and
    `failures` (what its on_exit steps see), worked out when they are read."""
    prefix = f"{call_id}."
    hooks = frozenset(body.on_exit)
    own = [c for c in body.steps if c.step_id.rpartition(".")[2] not in hooks]

    def failures() -> list[dict[str, Any]]:
        # Under its own ids, as its expressions name its steps; its hooks and handlers
        # are no part of its outcome (as for the run's own on_exit).
        return failures_of(
            (rid[len(prefix) :], r)
            for rid, r in ex.records.items()
            if rid.startswith(prefix)
            and rid[len(prefix) :] not in hooks
            and template_of(rid) not in ex.workflow.handlers
        )

    def status() -> str:
        if ex.stop_reason is not None:  # the run was stopped: so was the child
            return "timeout" if ex.stop_reason == "timeout" else "cancelled"
        # As the call judges it: a step of its own failed that may not fail.
        failed = any(
            ex.records[names.get(c.step_id, c.step_id)].status is StepStatus.FAILED
            and not c.retry_policy.continue_on_failure
            for c in own
        )
        return "failed" if failed else "completed"

    return WorkflowView(ex.workflow_view, {"status": status, "failures": failures})


async def _run_child(ex: Executor, step: Step, scope: Scope) -> None:
    level = ex.plan.levels.get(template_of(step.step_id))
    if level is not None:  # (a child whose steps are all handlers has none)
        await ex.scheduler.run_container(level, scope)


def _judge(ex: Executor, step: Step, body: SubflowBody, scope: Scope, record: StepRecord) -> Any:
    children = [(c, ex.records[scope.sid(c.step_id)]) for c in body.steps]
    failed = [
        r
        for c, r in children
        if r.status is StepStatus.FAILED and not c.retry_policy.continue_on_failure
    ]
    if failed:
        # A failed call inside says where already: its message is passed on as it is.
        why = "; ".join(
            r.error or "" if c.step_type is StepType.WORKFLOW else f"{r.step_id}: {r.error}"
            for c, r in children
            if r in failed
        )
        raise StepFailed(why, failed[0].error_kind or "error")
    ctx = {**ex.context(step), **scope.context}
    try:
        return {name: value.render(ctx) for name, value in body.outputs.items()}
    except ExpressionError as exc:
        raise StepFailed(f"{body.uses}: outputs: {exc}", "validation") from None


def skip_inside(ex: Executor, step: Step) -> None:
    """A skipped call: its child's steps are skipped too (not left pending)."""
    if not isinstance(step.body, SubflowBody):
        return
    scope = ex.scopes.get(step.step_id) if ex.scopes else None
    why = f"not run: sub-workflow call '{step.step_id}' was skipped"
    for child in _descendants(step.body.steps):
        record = ex.records.get(scope.sid(child.step_id) if scope else child.step_id)
        if record is not None and record.status is StepStatus.PENDING:
            record.status, record.reason = StepStatus.SKIPPED, why
            ex.emit_state(record.step_id)


def _descendants(steps: tuple[Step, ...]) -> list[Step]:
    return [d for s in steps for d in (s, *_descendants(s.children))]
