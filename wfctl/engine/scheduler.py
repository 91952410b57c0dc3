"""The event-driven scheduler: a step starts the moment its own dependencies allow it.

It runs one container (a nested graph of steps) at a time, re-entrantly: the ready set,
critical-path priorities when slots are scarce, trigger rules and skip decisions, and the
deadlock check when the container can make no more progress.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from wfctl import graph
from wfctl.compile.plan import Container
from wfctl.engine.lifecycle import execute
from wfctl.engine.scopes import Scope, scoped_step
from wfctl.engine.step_call import invoke
from wfctl.engine.steps import SLOTTED
from wfctl.engine.steps.subworkflow import skip_inside
from wfctl.expressions import ExpressionError, truthy
from wfctl.model import Step, StepStatus, StepType, TriggerRule
from wfctl.records import StepRecord, status_flags

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["Scheduler"]


class Scheduler:
    """Starts the steps of containers as they become ready (best rank first)."""

    def __init__(self, executor: Executor) -> None:
        self._ex = executor
        #: Why a container stopped its running children (a for-each whose item failed),
        #: by the container's id: the cancelled children's records say it.
        self.stop_why: dict[str, str] = {}
        #: What a child's final failure tells its container, by the container's id (a
        #: fail_fast parallel step stops its other children).
        self.on_failure: dict[str, Callable[[Step, StepRecord], None]] = {}

    def stopping(self, container: str) -> None:
        """`container` is cancelling its children (fail_fast): its own cancel scope holds
        them here; an engine that runs them elsewhere stops them now."""

    async def run_container(
        self, container: Container, scope: Scope | None = None, *, limited: bool = True
    ) -> None:
        """Run every step of `container` that can run, each the moment it may.

        In `scope` (an iteration of a group loop) its steps run as the iteration's copies.
        With `limited`, no more than the container's own `limit` of its steps run at once
        (a loop body's limit counts iterations: its loop runner applies it)."""
        ex = self._ex
        if scope is None:
            steps, dependents, rank = container.steps, container.dependents, ex.plan.priority
        else:
            steps, dependents, rank = self._materialize(container, scope)
        records = ex.records
        remaining = _remaining(steps, records)
        limit = container.limit if limited else None
        # asyncio's own TaskGroup: a step task costs a third of an anyio one, and the group
        # still cancels its tasks when the run's (anyio) cancel scope cancels this one.
        async with asyncio.TaskGroup() as tg:
            run = _Run(self, dependents, rank, remaining, tg, limit)
            # A nested container that starts after the run failed was let in by its
            # step's trigger rule (all_done): its steps run, as that rule asked, instead
            # of each being skipped for the run's failure.
            run.admitted = container.container is not None and ex.fatal is not None
            run.settle(
                [
                    s.step_id
                    for s in steps
                    if remaining[s.step_id] == 0 and not records[s.step_id].status.terminal
                ]
            )
        if ex.stop_reason is None:
            self._detect_deadlock(steps)

    def _materialize(
        self, container: Container, scope: Scope
    ) -> tuple[tuple[Step, ...], dict[str, tuple[str, ...]], dict[str, float]]:
        """The iteration's copies of a container's steps (records kept when resumed)."""
        ex = self._ex
        owner = container.container
        # A parallel group inside the body is the container of its children; the body's
        # own steps are in the iteration.
        where = scope.names.get(owner or "", scope.prefix)
        steps = tuple(scoped_step(t, scope, where) for t in container.steps)
        for step in steps:
            ex.steps[step.step_id] = step
            ex.scopes[step.step_id] = scope
            if step.step_id not in ex.records:
                ex.records[step.step_id] = StepRecord(step.step_id)
        dependents = {
            scope.sid(k): tuple(scope.sid(d) for d in v) for k, v in container.dependents.items()
        }
        priority = ex.plan.priority
        rank = {scope.sid(t.step_id): priority.get(t.step_id, 0.0) for t in container.steps}
        return steps, dependents, rank

    async def run_body(
        self, body: Container, frame: dict[str, Any], extra: dict[str, Any] | None = None
    ) -> Any:
        """One iteration or item of a single-action loop: the loop step's own action in the
        loop `frame` (`loop` in its expressions; `extra` names too, e.g. `matrix`)."""
        ex = self._ex
        output: Any = None
        for step in body.steps:
            record = ex.records[step.step_id]
            output = await invoke(ex, step, record, ex.step_input(step, frame), frame, extra)
        return output

    async def run_iteration(self, body: Container, scope: Scope) -> None:
        """One iteration of a group loop: the body's graph, run like any container, in
        `scope` (its steps' copies; those a resumed run completed are not run again)."""
        await self.run_container(body, scope, limited=False)

    # -- decisions -----------------------------------------------------------------
    def decide(self, step_id: str) -> bool:
        """True to start the step now; otherwise it is marked skipped with the reason."""
        ex = self._ex
        record = ex.records[step_id]
        if record.status is StepStatus.WAITING:
            return True  # an approval step coming back for its decision
        step = ex.workflow.all_steps[step_id]
        try:
            reason = self._skip_reason(step)
        except ExpressionError as exc:
            _depends_failed(ex, step, record, exc.message)
            return False
        if reason is None:
            return True
        record.status = StepStatus.SKIPPED
        record.reason = reason
        ex.emit_state(step_id)
        if step.step_type is StepType.WORKFLOW:
            skip_inside(ex, step)  # its child's steps with it
        return False

    def _skip_reason(self, step: Step) -> str | None:
        ex = self._ex
        # `depends` decides alone, also after a failure (it may be what it waits for).
        waits_for_all = step.trigger_rule is TriggerRule.ALL_DONE or step.depends is not None
        if ex.fatal is not None and not waits_for_all:
            return f"run failed ({ex.fatal})"
        if step.step_id in ex.not_taken and step.step_id not in ex.chosen:
            return ex.not_taken[step.step_id]
        if step.depends is not None:
            return _depends(ex, step)
        if not step.dependencies:
            return None
        deps = [ex.records[d] for d in step.dependencies if d in ex.records]
        return _TRIGGER_RULES[step.trigger_rule](deps)

    def defers_handlers(self, step_id: str) -> bool:
        """Does something else run the error handlers of this failed step (so that its
        run ends at its failure)? Here never: they run at once, inside the step."""
        return False

    # -- slots ---------------------------------------------------------------------
    def reserve_slot(self, step_id: str, priority: float) -> None:
        """Queue a ready step for a slot now, so a slot freed meanwhile goes to the best."""
        ex = self._ex
        step = ex.steps[step_id]
        # A group loop holds no slot itself: its body's steps take theirs.
        if step.step_type in SLOTTED and not step.body_steps:
            ex.tickets[step_id] = ex.slots.request(priority)

    def drop_slot(self, step_id: str) -> None:
        """Give back the slot (or the place in the queue) a step still holds."""
        ex = self._ex
        ticket = ex.tickets.pop(step_id, None)
        if ticket is not None:
            ex.slots.cancel(ticket)

    # -- deadlock ------------------------------------------------------------------
    def _detect_deadlock(self, steps: tuple[Step, ...]) -> None:
        ex = self._ex
        stuck = {
            s.step_id: s.dependencies for s in steps if not ex.records[s.step_id].status.terminal
        }
        if not stuck:
            return
        waiting = [s for s in stuck if ex.records[s].status is StepStatus.WAITING]
        # Steps downstream of an approval are not deadlocked, only paused.
        paused = graph.blocked(stuck, waiting)
        dead = [s for s in stuck if s not in paused]
        if dead:
            self._fail_deadlocked(dead)

    def _fail_deadlocked(self, dead: list[str]) -> None:
        ex = self._ex
        ex.deadlocked.extend(dead)
        # What each waits on, taken before any of them is marked failed.
        waits = {
            step_id: [
                d
                for d in ex.workflow.all_steps[step_id].dependencies
                if d not in ex.records or not ex.records[d].status.terminal
            ]
            for step_id in dead
        }
        for step_id in dead:
            record = ex.records[step_id]
            record.status = StepStatus.FAILED
            record.error = f"deadlock: waiting on {', '.join(waits[step_id]) or 'nothing'}"
            record.error_kind = "deadlock"
            ex.emit_state(step_id)
        if ex.fatal is None:
            ex.fatal = f"deadlock: steps {', '.join(dead)} can never become ready"


class _Run:
    """One container's run: who still waits on how many, the task group, and its own
    concurrency limit (ready steps beyond it wait, best rank first)."""

    __slots__ = (
        "_active",
        "_dependents",
        "_ex",
        "_held",
        "_limit",
        "_rank",
        "_remaining",
        "_scheduler",
        "_seq",
        "_tg",
        "admitted",
    )

    def __init__(
        self,
        scheduler: Scheduler,
        dependents: Mapping[str, tuple[str, ...]],
        rank: Mapping[str, float],
        remaining: dict[str, int],
        tg: asyncio.TaskGroup,
        limit: int | None,
    ) -> None:
        self._scheduler = scheduler
        self._ex = scheduler._ex
        self._dependents = dependents
        self._remaining = remaining
        self._rank = rank
        self._tg = tg
        self._limit = limit
        self._active = 0  # steps started and not yet ended (counted only with a limit)
        self._held: list[tuple[float, int, str]] = []  # ready, waiting for the limit
        self._seq = 0
        self.admitted = False

    def settle(self, step_ids: list[str], inline: bool = False) -> str | None:
        """Decide newly ready steps: start them (best rank first) or skip them.

        With `inline`, the best one is returned for the calling task to run itself (a
        chain then costs no task spawns)."""
        scheduler = self._scheduler
        rank = self._rank
        worklist = step_ids
        first: str | None = None
        while worklist:
            ready = sorted(worklist, key=lambda s: -rank[s]) if len(worklist) > 1 else worklist
            worklist = []
            for step_id in ready:
                if not self._decide(step_id):
                    worklist.extend(self.released(step_id))
                    continue
                if self._limit is not None and not self._admit(step_id):
                    continue
                scheduler.reserve_slot(step_id, rank[step_id])
                if inline and first is None:
                    first = step_id
                else:
                    self._tg.create_task(self.run(step_id))
        return first

    def _decide(self, step_id: str) -> bool:
        """The scheduler's decision; in an admitted container, as if the run had not
        failed (decide is synchronous: no other task sees the run's failure cleared)."""
        if not self.admitted:
            return self._scheduler.decide(step_id)
        ex = self._ex
        fatal, ex.fatal = ex.fatal, None
        try:
            return self._scheduler.decide(step_id)
        finally:
            ex.fatal = fatal if ex.fatal is None else ex.fatal

    def _admit(self, step_id: str) -> bool:
        """Within the container's limit: count it in; else hold it until a step ends."""
        assert self._limit is not None
        if self._active < self._limit:
            self._active += 1
            return True
        self._seq += 1
        heapq.heappush(self._held, (-self._rank[step_id], self._seq, step_id))
        return False

    def _ended(self) -> None:
        """A step of a limited container ended: its place goes to the best held step."""
        self._active -= 1
        if self._held:
            _, _, step_id = heapq.heappop(self._held)
            self._active += 1
            self._scheduler.reserve_slot(step_id, self._rank[step_id])
            self._tg.create_task(self.run(step_id))

    def released(self, step_id: str) -> list[str]:
        """Dependents of a finished step that now have nothing left to wait on."""
        remaining = self._remaining
        records = self._ex.records
        out = []
        for user in self._dependents[step_id]:
            remaining[user] -= 1
            if remaining[user] == 0 and not records[user].status.terminal:
                out.append(user)
        return out

    async def run(self, step_id: str | None) -> None:
        """Run a step, then (in this same task) the best of the dependents it released."""
        ex = self._ex
        steps = ex.steps
        while step_id is not None:
            current = step_id
            step_id = None
            try:
                await execute(ex, steps[current])
                if ex.records[current].status.terminal:
                    step_id = self.settle(self.released(current), inline=True)
            finally:
                # Freed only now: the dependents queued above get first claim.
                self._scheduler.drop_slot(current)
                if self._limit is not None:
                    # (A dependent taken inline above was counted in already.)
                    self._ended()


def _remaining(steps: tuple[Step, ...], records: Mapping[str, StepRecord]) -> dict[str, int]:
    """How many dependencies each step still waits on."""
    ids = {s.step_id for s in steps}
    # A dependency outside this container (unknown, or a handler step) never ends
    # here: it keeps the step waiting, and the deadlock check names it.
    return {
        s.step_id: sum(1 for d in s.dependencies if d not in ids or not records[d].status.terminal)
        for s in steps
    }


def _all_success(deps: list[Any]) -> str | None:
    failed = [r.step_id for r in deps if r.status is StepStatus.FAILED]
    if failed:
        return f"upstream failed: {', '.join(failed)}"
    skipped = [r.step_id for r in deps if r.status is StepStatus.SKIPPED]
    if skipped:
        return f"upstream skipped: {', '.join(skipped)}"
    return None


def _none_failed(deps: list[Any]) -> str | None:
    failed = [r.step_id for r in deps if r.status is StepStatus.FAILED]
    return f"upstream failed: {', '.join(failed)}" if failed else None


def _one_success(deps: list[Any]) -> str | None:
    if deps and not any(r.status is StepStatus.COMPLETED for r in deps):
        if not any(r.status is StepStatus.FAILED for r in deps):
            # Every one skipped: say so (`skip_reason: upstream_skipped`).
            skipped = ", ".join(r.step_id for r in deps)
            return f"upstream skipped: {skipped} (no upstream step succeeded)"
        return "no upstream step succeeded"
    return None


def _all_done(deps: list[Any]) -> str | None:
    return None


def _depends(ex: Executor, step: Step) -> str | None:
    """Skip unless the step's `depends` holds over its dependencies' results."""
    assert step.depends is not None
    flags = {d: status_flags(ex.records[d]) for d in step.dependencies if d in ex.records}
    if truthy(step.depends.evaluate(flags)):
        return None
    return f"depends is false: {step.depends.source}"


def _depends_failed(ex: Executor, step: Step, record: Any, message: str) -> None:
    """A `depends` that cannot be evaluated fails its step (it never started)."""
    record.status = StepStatus.FAILED
    record.ended_at = record.started_at = time.time()
    record.error = f"depends: {message}"
    record.error_kind = "validation"
    ex.emit_state(step.step_id)
    ex.mark_fatal(step, record)


#: Why a trigger rule skips a step, given its dependencies' records (None: it may run).
_TRIGGER_RULES = {
    TriggerRule.ALL_SUCCESS: _all_success,
    TriggerRule.NONE_FAILED: _none_failed,
    TriggerRule.ONE_SUCCESS: _one_success,
    TriggerRule.ALL_DONE: _all_done,
}
