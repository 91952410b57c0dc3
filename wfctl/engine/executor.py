"""The event-driven scheduler: a step starts the moment its own dependencies allow it."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from wfctl.actions.base import ActionContext, ActionError
from wfctl.compile.plan import ExecutionPlan
from wfctl.engine.agents import AgentRouter, NoAgentAvailable
from wfctl.engine.breaker import CircuitBreakers
from wfctl.engine.slots import PrioritySlots, Ticket
from wfctl.events import (
    CircuitChanged,
    EventBus,
    HandlerRan,
    MetricRecorded,
    RetryScheduled,
    StepOutputLine,
    StepStateChanged,
    VarsChanged,
    now,
)
from wfctl.expressions import ExpressionError, truthy
from wfctl.model import Agent, RetryPolicy, Step, StepStatus, StepType, TriggerRule
from wfctl.records import Attempt, StepRecord
from wfctl.secrets import Masker


@dataclass(frozen=True)
class ApprovalDecision:
    approved: bool
    by: str = "unknown"
    comment: str = ""


@dataclass(frozen=True)
class ApprovalRequest:
    run_id: str
    step_id: str
    message: str
    approvers: tuple[str, ...]
    timeout: float | None
    on_timeout: str


ApprovalHandler = Callable[[ApprovalRequest], Awaitable[ApprovalDecision | None]]


# Step types whose work runs through actions, each call holding a concurrency slot.
_SLOTTED = frozenset({StepType.ACTION, StepType.LOOP, StepType.REACT})


class StepFailed(Exception):
    """Raised inside the executor when a step's final attempt failed."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class StepsView(Mapping[str, Any]):
    """`steps` in expressions: a read-only view built on access, O(1) per lookup."""

    def __init__(self, records: Mapping[str, StepRecord]) -> None:
        self._records = records

    def __getitem__(self, key: str) -> Any:
        return self._records[key].view()

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


_JSON_SAFE = (str, int, float, bool, type(None))


def ensure_json(value: Any) -> Any:
    """Raise a non-retryable ActionError if an output cannot be stored as JSON."""
    if isinstance(value, _JSON_SAFE):
        return value
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ActionError(
            f"step output is not JSON-serialisable: {exc}", kind="error", retryable=False
        ) from None
    return value


def _should_retry(error: ActionError, policy: RetryPolicy, attempts_so_far: int) -> bool:
    """Another attempt after `error`? (Invalid input never gets better by retrying.)"""
    return (
        error.retryable
        and error.kind in policy.retry_on
        and error.kind != "validation"
        and attempts_so_far < policy.max_attempts
    )


class Executor:
    """Runs a plan's steps; owns every StepRecord and emits every state change."""

    def __init__(
        self,
        plan: ExecutionPlan,
        run_id: str,
        inputs: Mapping[str, Any],
        bus: EventBus,
        *,
        secrets: Mapping[str, str],
        secret_env: Mapping[str, str],
        masker: Masker,
        workdir: Path,
        max_parallel: int | None = None,
        approvals: Mapping[str, ApprovalDecision] | None = None,
        approval_handler: ApprovalHandler | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.plan = plan
        self.workflow = plan.workflow
        self.run_id = run_id
        self.inputs = dict(inputs)
        self.bus = bus
        self.secrets = dict(secrets)
        self.secret_env = dict(secret_env)
        self.masker = masker
        self.workdir = workdir
        self.records: dict[str, StepRecord] = {s: StepRecord(s) for s in self.workflow.all_steps}
        self.vars: dict[str, Any] = dict(self.workflow.global_variables)
        self.slots = PrioritySlots(max_parallel or self.workflow.max_parallel_steps)
        self.breakers = CircuitBreakers(self.workflow.circuit_breaker, self._circuit_changed)
        self.router = AgentRouter(self.workflow.agents, self.breakers)
        self.approvals = dict(approvals or {})
        self.approval_handler = approval_handler
        self.rng = rng or random.Random()
        self.completion_order: list[str] = []
        self.fatal: str | None = None  # first failure that fails the run
        self.not_taken: dict[str, str] = {}
        self.chosen: set[str] = set()
        self.stop_reason: str | None = None  # "timeout" | "cancelled" once the run is stopped
        self.rollbacks: list[dict[str, Any]] = []
        self.deadlocked: list[str] = []
        # Slot tickets of steps queued or running; a step's own first attempt uses it and
        # keeps the slot until its dependents are queued (see run_level).
        self._tickets: dict[str, Ticket] = {}
        self._actions: dict[str, Any] = {}  # resolved once per run, not per attempt
        self._targets: dict[str, str | None] = {}  # breaker targets of steps with fixed args
        self._workflow_view = {
            "id": self.workflow.workflow_id,
            "name": self.workflow.name,
            "version": self.workflow.version,
            "run_id": run_id,
        }

    # -- resume ------------------------------------------------------------
    def restore(self, replayed: Any) -> None:
        """Take over a journaled run: completed steps keep their outputs; steps that were
        in flight, or cancelled, run again (at-least-once); every attempt stays recorded."""
        self.vars.update(replayed.vars)
        self.completion_order = list(replayed.completion_order)
        for step_id, old in replayed.records.items():
            if step_id not in self.records:
                continue
            self.records[step_id] = old
            if old.status is StepStatus.COMPLETED:
                old.reused = True
                step = self.workflow.all_steps[step_id]
                if step.step_type is StepType.CONDITIONAL and isinstance(old.output, dict):
                    self._restore_branch(step, old.output.get("branch"))
            elif old.status in (StepStatus.RUNNING, StepStatus.RETRYING) or (
                old.status is StepStatus.FAILED and old.error_kind == "cancelled"
            ):
                for attempt in old.attempts:
                    if attempt.ended_at is None:
                        attempt.ended_at = old.ended_at or attempt.started_at
                        attempt.error = "interrupted: the process running it stopped"
                        attempt.error_kind = "cancelled"
                old.status = StepStatus.PENDING
                old.error = old.error_kind = None
                old.ended_at = None
            elif old.status is StepStatus.SKIPPED and (old.reason or "").startswith(
                ("run failed", "not started:")
            ):
                old.status = StepStatus.PENDING
                old.reason = None
            elif old.status is StepStatus.FAILED and step_id not in self.workflow.handlers:
                # (A failed handler or react tool step does not fail the run by itself.)
                step = self.workflow.all_steps[step_id]
                self._mark_fatal(step, old)

    def _restore_branch(self, step: Step, chosen_index: Any) -> None:
        chosen = (
            set(step.conditions[chosen_index].next_steps)
            if isinstance(chosen_index, int) and 0 <= chosen_index < len(step.conditions)
            else set()
        )
        self.chosen.update(chosen)
        for index, branch in enumerate(step.conditions):
            if index != chosen_index:
                for target in branch.next_steps:
                    if target not in chosen:
                        self.not_taken.setdefault(target, f"branch not taken: '{step.step_id}'")

    # -- events ------------------------------------------------------------
    def _emit_state(self, step_id: str, **extra: Any) -> None:
        record = self.records[step_id]
        step = self.workflow.all_steps[step_id]
        self.bus.emit(
            StepStateChanged(
                run_id=self.run_id,
                ts=now(),
                step_id=step_id,
                status=record.status,
                attempt=len(record.attempts),
                max_attempts=step.retry_policy.max_attempts,
                duration=record.duration,
                error=record.error,
                error_kind=record.error_kind,
                reason=record.reason,
                agent=record.agent,
                agent_reason=record.agent_reason,
                container=step.container,
                **extra,
            )
        )

    def _circuit_changed(self, target: str, state: str, failures: int) -> None:
        self.bus.emit(CircuitChanged(self.run_id, now(), target, state, failures))

    # -- expression context ------------------------------------------------
    def context(self, step: Step | None = None, **extra: Any) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "inputs": self.inputs,
            "vars": self.vars,
            "steps": StepsView(self.records),
            "workflow": self._workflow_view,
        }
        # Secret values never reach a shell command line by templating (PITFALLS.md).
        if step is None or step.action != "shell":
            ctx["secrets"] = self.secrets
        ctx.update(extra)
        return ctx

    # -- scheduling ----------------------------------------------------------
    async def run_level(self, container: str | None) -> None:
        """Run every step of one level that can run, each the moment it may; re-entrant."""
        level = self.plan.levels[container]
        ids = {s.step_id for s in level.steps}
        remaining: dict[str, int] = {}
        for s in level.steps:
            # A dependency outside this level (unknown, or a handler step) never ends here:
            # it keeps the step waiting, and the deadlock check below names it.
            remaining[s.step_id] = sum(
                1 for d in s.dependencies if d not in ids or not self.records[d].status.terminal
            )
        rank = self.plan.priority

        # asyncio's own TaskGroup: a step task costs a third of an anyio one, and the group
        # still cancels its tasks when the run's (anyio) cancel scope cancels this one.
        async with asyncio.TaskGroup() as tg:

            def settle(step_ids: list[str], inline: bool = False) -> str | None:
                """Decide newly ready steps: start them (best rank first) or skip them.

                With `inline`, the best one is returned for the calling task to run
                itself (a chain then costs no task spawns)."""
                worklist = list(step_ids)
                first: str | None = None
                while worklist:
                    ready = sorted(worklist, key=lambda s: -rank[s])
                    worklist = []
                    for step_id in ready:
                        if self._decide(step_id):
                            self._reserve_slot(step_id)
                            if inline and first is None:
                                first = step_id
                            else:
                                tg.create_task(run(step_id))
                        else:
                            worklist.extend(_released(step_id))
                return first

            def _released(step_id: str) -> list[str]:
                out = []
                for user in level.dependents[step_id]:
                    remaining[user] -= 1
                    if remaining[user] == 0 and not self.records[user].status.terminal:
                        out.append(user)
                return out

            async def run(step_id: str | None) -> None:
                while step_id is not None:
                    current = step_id
                    step_id = None
                    try:
                        await self._execute(self.workflow.all_steps[current])
                        if self.records[current].status.terminal:
                            step_id = settle(_released(current), inline=True)
                    finally:
                        # Freed only now: the dependents queued above get first claim.
                        self._drop_slot(current)

            settle(
                [
                    s.step_id
                    for s in level.steps
                    if remaining[s.step_id] == 0 and not self.records[s.step_id].status.terminal
                ]
            )

        if self.stop_reason is None:
            self._detect_deadlock(level.steps)

    def _reserve_slot(self, step_id: str) -> None:
        step = self.workflow.all_steps[step_id]
        if step.step_type in _SLOTTED:
            self._tickets[step_id] = self.slots.request(self.plan.priority[step_id])

    def _drop_slot(self, step_id: str) -> None:
        ticket = self._tickets.pop(step_id, None)
        if ticket is not None:
            self.slots.cancel(ticket)

    def _detect_deadlock(self, steps: tuple[Step, ...]) -> None:
        stuck = [s for s in steps if not self.records[s.step_id].status.terminal]
        if not stuck:
            return
        waiting = {s.step_id for s in stuck if self.records[s.step_id].status is StepStatus.WAITING}
        # Steps downstream of an approval are not deadlocked, only paused.
        blocked = set(waiting)
        changed = True
        while changed:
            changed = False
            for s in stuck:
                if s.step_id not in blocked and any(d in blocked for d in s.dependencies):
                    blocked.add(s.step_id)
                    changed = True
        dead = [s.step_id for s in stuck if s.step_id not in blocked]
        if dead:
            self.deadlocked.extend(dead)
            # What each waits on, taken before any of them is marked failed.
            waits = {
                step_id: [
                    d
                    for d in self.workflow.all_steps[step_id].dependencies
                    if d not in self.records or not self.records[d].status.terminal
                ]
                for step_id in dead
            }
            for step_id in dead:
                record = self.records[step_id]
                missing = waits[step_id]
                record.status = StepStatus.FAILED
                record.error = f"deadlock: waiting on {', '.join(missing) or 'nothing'}"
                record.error_kind = "deadlock"
                self._emit_state(step_id)
            if self.fatal is None:
                self.fatal = f"deadlock: steps {', '.join(dead)} can never become ready"

    def _decide(self, step_id: str) -> bool:
        """True to start the step now; otherwise it is marked skipped with the reason."""
        step = self.workflow.all_steps[step_id]
        record = self.records[step_id]
        if record.status is StepStatus.WAITING:
            return True  # an approval step coming back for its decision
        reason = self._skip_reason(step)
        if reason is None:
            return True
        record.status = StepStatus.SKIPPED
        record.reason = reason
        self._emit_state(step_id)
        return False

    def _skip_reason(self, step: Step) -> str | None:
        if self.fatal is not None and step.trigger_rule is not TriggerRule.ALL_DONE:
            return f"run failed ({self.fatal})"
        if step.step_id in self.not_taken and step.step_id not in self.chosen:
            return self.not_taken[step.step_id]
        deps = [self.records[d] for d in step.dependencies if d in self.records]
        failed = [r.step_id for r in deps if r.status is StepStatus.FAILED]
        skipped = [r.step_id for r in deps if r.status is StepStatus.SKIPPED]
        rule = step.trigger_rule
        if rule is TriggerRule.ALL_SUCCESS:
            if failed:
                return f"upstream failed: {', '.join(failed)}"
            if skipped:
                return f"upstream skipped: {', '.join(skipped)}"
        elif rule is TriggerRule.NONE_FAILED and failed:
            return f"upstream failed: {', '.join(failed)}"
        elif (
            rule is TriggerRule.ONE_SUCCESS
            and deps
            and not any(r.status is StepStatus.COMPLETED for r in deps)
        ):
            return "no upstream step succeeded"
        return None

    # -- one step ------------------------------------------------------------
    async def _execute(self, step: Step) -> None:
        record = self.records[step.step_id]
        try:
            if (
                step.when is not None
                and record.status is not StepStatus.WAITING
                and not truthy(step.when.evaluate(self.context(step)))
            ):
                record.status = StepStatus.SKIPPED
                record.reason = f"when is false: {step.when.source}"
                self._emit_state(step.step_id)
                return
            if record.started_at is None and step.step_type not in _SLOTTED:
                record.started_at = time.time()  # slotted steps start when they get a slot
            if step.step_type is StepType.ACTION:  # the common case, one coroutine less
                output = await self._invoke(step, record, self._step_input(step), {}, hold=True)
            else:
                output = await self._dispatch(step, record)
            if record.status is StepStatus.WAITING:
                return
            self._complete(step, record, output)
        except StepFailed as exc:
            await self._fail(step, record, str(exc), exc.kind)
        except ExpressionError as exc:
            await self._fail(step, record, f"expression error: {exc.message}", "validation")
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                record.status = StepStatus.FAILED
                record.ended_at = time.time()
                why = "workflow timed out" if self.stop_reason == "timeout" else "cancelled"
                record.error = f"{why} while running"
                record.error_kind = "cancelled"
                if record.attempts and record.attempts[-1].error is None:
                    last = record.attempts[-1]
                    last.ended_at = last.ended_at or record.ended_at
                    last.error = record.error
                    last.error_kind = "cancelled"
                self._emit_state(step.step_id)
            raise

    async def _dispatch(self, step: Step, record: StepRecord) -> Any:
        kind = step.step_type
        if kind is StepType.PARALLEL:
            return await self._run_parallel(step, record)
        if kind is StepType.CONDITIONAL:
            return self._run_conditional(step, record)
        if kind is StepType.LOOP:
            return await self._run_loop(step, record)
        if kind is StepType.HUMAN_APPROVAL:
            return await self._run_approval(step, record)
        step_input = self._step_input(step)
        # hold: the slot stays with this step until run_level has queued its dependents.
        return await self._invoke(step, record, step_input, {}, hold=True)

    def _complete(self, step: Step, record: StepRecord, output: Any) -> None:
        """Record success; a failing output_mapping raises StepFailed instead (no retry)."""
        masked = self.masker.mask_data(output) if self.masker else output
        updates: dict[str, Any] = {}
        if step.action == "set":
            # A looping `set` stores what its last iteration set, not the loop summary.
            values = output.get("last") if step.step_type is StepType.LOOP else output
            if isinstance(values, dict):
                updates.update(values)
        ctx = (
            self.context(step, output=masked) if step.output_mapping or step.custom_metrics else {}
        )
        for name, expr in step.output_mapping.items():
            try:
                updates[name] = expr.evaluate(ctx)
            except ExpressionError as exc:
                record.output = masked
                raise StepFailed(f"output_mapping.{name}: {exc.message}", "validation") from None
        record.output = masked
        record.status = StepStatus.COMPLETED
        record.ended_at = time.time()
        record.error = None
        record.error_kind = None
        self.completion_order.append(step.step_id)
        if step.metrics_enabled:
            for name, expr in step.custom_metrics.items():
                try:
                    value = expr.evaluate(ctx)
                except ExpressionError as exc:
                    value = None
                    record.metrics[f"{name}_error"] = exc.message
                if self.masker:
                    value = self.masker.mask_data(value)
                record.metrics[name] = value
                self.bus.emit(MetricRecorded(self.run_id, now(), step.step_id, name, value))
        self._store_vars(step.step_id, updates)
        self._emit_state(step.step_id, output=record.output)

    def _store_vars(self, step_id: str, updates: dict[str, Any]) -> None:
        if not updates:
            return
        # A mapping may read `secrets`: what lands in vars (and the journal) is masked.
        if self.masker:
            updates = self.masker.mask_data(updates)
        self.vars.update(updates)
        self.bus.emit(VarsChanged(self.run_id, now(), step_id, updates))

    async def _fail(self, step: Step, record: StepRecord, message: str, kind: str) -> None:
        record.status = StepStatus.FAILED
        record.ended_at = time.time()
        record.error = self.masker.mask(message) if self.masker else message
        record.error_kind = kind
        if not record.attempts:
            # Failed before its action could run (input validation, a bad expression):
            # still one attempt, so the report says what happened and when.
            started = record.started_at or record.ended_at
            record.attempts.append(
                Attempt(1, started, record.ended_at, record.error, record.error_kind)
            )
        self._emit_state(step.step_id)
        error_ctx = {"step_id": step.step_id, "message": record.error, "kind": kind}
        for handler in step.error_handlers:
            await self._run_handler(handler, step.step_id, "error_handler", error_ctx)
        self._mark_fatal(step, record)

    def _mark_fatal(self, step: Step, record: StepRecord) -> None:
        # Inside a parallel step the container decides, by its failure threshold.
        fails_run = step.container is None and not step.retry_policy.continue_on_failure
        if fails_run and self.fatal is None:
            self.fatal = f"step '{step.step_id}' failed: {record.error}"

    # -- inputs --------------------------------------------------------------
    def _step_input(self, step: Step, loop: dict[str, Any] | None = None) -> dict[str, Any]:
        if not step.input_mapping:
            return {}
        ctx = self.context(step, loop=loop) if loop is not None else self.context(step)
        built = {name: expr.evaluate(ctx) for name, expr in step.input_mapping.items()}
        if step.input_validation is not None:
            from jsonschema import Draft202012Validator

            errors = list(Draft202012Validator(step.input_validation).iter_errors(built))
            if errors:
                first = min(errors, key=lambda e: list(e.absolute_path))
                where = ".".join(str(p) for p in first.absolute_path) or "input"
                raise StepFailed(f"input_validation: {where}: {first.message}", "validation")
        return built

    # -- actions with retries, timeouts, breakers -----------------------------
    async def _invoke(
        self,
        step: Step,
        record: StepRecord,
        step_input: dict[str, Any],
        loop: dict[str, Any],
        extra_ctx: Mapping[str, Any] | None = None,
        hold: bool = False,
    ) -> Any:
        """One action call with the step's retry policy, timeout and circuit breaker."""
        ctx: Mapping[str, Any] = {}
        if (
            step.with_.has_templates
            or step.agent_capability is not None
            or step.step_type is StepType.REACT
        ):
            # Only templates read the context; most steps' `with` is plain data.
            extra: dict[str, Any] = {**(extra_ctx or {}), "input": step_input}
            if loop:
                extra["loop"] = loop
            ctx = self.context(step, **extra)
        agent, action, args, target = self._resolve_call(step, record, ctx)
        policy = step.retry_policy

        def on_line(line: str) -> None:
            self.bus.emit(StepOutputLine(self.run_id, now(), step.step_id, line))

        attempt_no = len(record.attempts)
        local = 0
        while True:
            attempt_no += 1
            local += 1
            if agent is not None and local > 1:
                # Route again: the agent that just failed may have an open breaker now.
                agent, action, args, target = self._resolve_call(step, record, ctx)
            waited_from = time.monotonic()
            ticket = self._tickets.pop(step.step_id, None) or self.slots.request(
                self.plan.priority.get(step.step_id, 0.0)
            )
            limiter = self.router.limiter(agent) if agent is not None else None
            try:
                if not ticket.granted:  # most steps hold their slot already: no await
                    await self.slots.wait(ticket)
                if limiter is not None:
                    # The agent's own max_concurrency, taken before the step shows as
                    # running, so `running` events on an agent never exceed it.
                    await limiter.acquire()
            except BaseException:
                self.slots.cancel(ticket)
                raise
            record.slot_wait += time.monotonic() - waited_from
            # Time queued for a slot is not running time (durations, SLAs, the report).
            attempt = Attempt(number=attempt_no, started_at=time.time())
            record.attempts.append(attempt)
            if record.started_at is None:
                record.started_at = attempt.started_at
            record.status = StepStatus.RUNNING
            self._emit_state(step.step_id, iteration=loop.get("index") if loop else None)
            actx = ActionContext(
                run_id=self.run_id,
                step_id=step.step_id,
                attempt=attempt_no,
                idempotency_key=f"{self.run_id}:{step.step_id}",
                workdir=self.workdir,
                secret_env=self.secret_env,
                masker=self.masker,
                on_output=on_line,
            )
            try:
                output, error = await self._call_once(
                    agent, action, args, target, actx, step.timeout, limiter
                )
            except BaseException:
                self.slots.cancel(ticket)  # cancelled: free the slot at once
                raise
            finally:
                attempt.ended_at = time.time()
            if error is None:
                if hold:
                    self._tickets[step.step_id] = ticket
                else:
                    self.slots.cancel(ticket)
                return output
            self.slots.cancel(ticket)
            if step.step_type is StepType.REACT and error.output is not None:
                # The transcript of an answer that failed output_schema, for the report.
                record.output = self.masker.mask_data(error.output)
            message = self.masker.mask(str(error)) if self.masker else str(error)
            attempt.error = message
            attempt.error_kind = error.kind
            if not _should_retry(error, policy, local):
                raise StepFailed(message, error.kind)
            delay = policy.delay(local, self.rng)
            if error.kind == "circuit_open" and not self._can_reroute(step, agent):
                delay = max(delay, self.breakers.retry_after(target))
            next_at = time.time() + delay
            record.status = StepStatus.RETRYING
            record.error = message
            record.error_kind = error.kind
            self.bus.emit(
                RetryScheduled(
                    self.run_id, now(), step.step_id, attempt_no, delay, next_at, message
                )
            )
            self._emit_state(step.step_id, next_attempt_at=next_at)
            await anyio.sleep(delay)

    def _can_reroute(self, step: Step, agent: Agent | None) -> bool:
        """Would routing again pick another agent now (no need to wait for a breaker)?"""
        if agent is None or step.agent_capability is None:
            return False
        try:
            other, _ = self.router.choose(step.agent_capability)
        except NoAgentAvailable:
            return False
        return other.name != agent.name

    async def _call_once(
        self,
        agent: Agent | None,
        action: Any,
        args: Mapping[str, Any],
        target: str | None,
        actx: ActionContext,
        timeout: float | None,
        limiter: anyio.CapacityLimiter | None,
    ) -> tuple[Any, ActionError | None]:
        """One call of an action under its breaker and timeout: (output, None) or
        (None, error). `limiter`, if given, is held and released here."""
        error: ActionError | None = None
        output: Any = None
        started = time.monotonic()
        ok = False
        try:
            if not self.breakers.allow(target):
                wait = self.breakers.retry_after(target)
                raise ActionError(
                    f"circuit breaker for {target} is open (retry in {wait:.1f}s)",
                    kind="circuit_open",
                )
            if agent is not None:
                self.router.started(agent)
            try:
                if timeout is not None:
                    with anyio.fail_after(timeout):
                        output = await action.run(args, actx)
                else:
                    output = await action.run(args, actx)
                output = ensure_json(output)
                ok = True
            finally:
                if agent is not None:
                    self.router.finished(agent, ok, time.monotonic() - started)
            self.breakers.record_success(target)
        except TimeoutError:
            limit = f" after {timeout:g}s" if timeout is not None else ""
            error = ActionError(f"timed out{limit}", kind="timeout")
            self.breakers.record_failure(target)
        except ActionError as exc:
            error = exc
            if exc.kind not in ("circuit_open", "validation"):
                self.breakers.record_failure(target)
            else:
                self.breakers.record_neutral(target)
        except Exception as exc:  # a bug in an action is still that step's failure
            error = ActionError(f"{type(exc).__name__}: {exc}", kind="error")
            self.breakers.record_failure(target)
        except BaseException:
            self.breakers.record_neutral(target)
            raise
        finally:
            if limiter is not None:
                limiter.release()
        return output, error

    def _resolve_call(
        self, step: Step, record: StepRecord, ctx: Mapping[str, Any]
    ) -> tuple[Agent | None, Any, dict[str, Any], str | None]:
        """(agent, action, rendered args, circuit-breaker target) for one attempt."""
        agent = None
        action_name = step.action
        base_args: dict[str, Any] = {}
        if action_name is None and step.agent_capability is not None:
            try:
                agent, why = self.router.choose(step.agent_capability)
            except NoAgentAvailable as exc:
                raise StepFailed(str(exc), "circuit_open") from None
            record.agent = agent.name
            record.agent_reason = why
            self.bus.emit(
                StepOutputLine(
                    self.run_id, now(), step.step_id, f"routed to agent {agent.name}: {why}"
                )
            )
            if step.step_type is StepType.REACT:
                action, args, _ = self._react_call(step, ctx, agent.model)
                return agent, action, args, f"agent:{agent.name}"
            action_name = agent.action
            from wfctl.expressions import compile_value

            base_args = dict(compile_value(dict(agent.with_)).render(ctx))
        if step.step_type is StepType.REACT:
            return None, *self._react_call(step, ctx, None)
        if action_name is None:
            raise StepFailed("step has no action to run", "error")
        try:
            action = self._action(action_name)
        except Exception as exc:
            raise StepFailed(str(exc), "error") from None
        rendered = step.with_.render(ctx) if step.with_.value else {}
        args = {**base_args, **rendered} if base_args else rendered
        if agent is None and not step.with_.has_templates:
            # Same arguments every attempt, so the same breaker target: work it out once.
            if step.step_id not in self._targets:
                self._targets[step.step_id] = self._breaker_target(None, action, args)
            return None, action, args, self._targets[step.step_id]
        return agent, action, args, self._breaker_target(agent, action, args)

    def _action(self, name: str) -> Any:
        """The action called `name`, looked up in the registry once per run."""
        action = self._actions.get(name)
        if action is None:
            from wfctl.actions.registry import get_action

            action = self._actions[name] = get_action(name)
        return action

    @staticmethod
    def _breaker_target(agent: Agent | None, action: Any, args: Mapping[str, Any]) -> str | None:
        target: str | None = f"agent:{agent.name}" if agent is not None else action.target(args)
        if target is not None and ":" not in target:
            # A bare action name (shell, noop...) names no shared dependency: no breaker.
            # (One per step would only trip on the step's own retries.)
            target = None
        return target

    # -- react ---------------------------------------------------------------
    def _react_call(
        self, step: Step, ctx: Mapping[str, Any], agent_model: str | None
    ) -> tuple[Any, dict[str, Any], str | None]:
        """(action, rendered args, breaker target) of one react attempt. Tool `with`
        templates are rendered per tool call (they see the model's arguments as `input`)."""
        from wfctl.actions.react import ReactAction, ToolSpec
        from wfctl.expressions import CompiledValue

        tree = step.with_.value
        top = {k: v for k, v in tree.items() if k != "tools"}
        args: dict[str, Any] = CompiledValue(top, True).render(ctx)
        if agent_model is not None and not args.get("model"):
            args["model"] = agent_model
        if not args.get("model"):
            raise StepFailed(
                "react step has no model (set with.model or route it to an agent with a model)",
                "validation",
            )
        tools = tuple(
            ToolSpec(
                name=str(raw["name"]),
                description=str(raw.get("description") or raw["name"]),
                parameters=raw.get("parameters", {"type": "object"}),
            )
            for raw in step.raw_with.get("tools", [])
        )

        async def call_tool(name: str, arguments: dict[str, Any], actx: ActionContext) -> Any:
            index = next(i for i, t in enumerate(tools) if t.name == name)
            return await self._run_tool(step, index, arguments, actx)

        action = ReactAction(tools, call_tool)
        return action, args, action.target(args)

    async def _run_tool(
        self, step: Step, index: int, arguments: dict[str, Any], parent: ActionContext
    ) -> Any:
        """One tool call of a react step: a workflow action with the retry policy, timeout
        and breaker of the step it belongs to (the named step's, for `step:` tools).
        Raises ActionError after the last attempt. Holds no concurrency slot: the react
        step's own slot covers its tools (else one react step could deadlock the run)."""
        from dataclasses import replace as dc_replace

        from wfctl.expressions import CompiledValue

        raw = step.raw_with["tools"][index]
        name = str(raw["name"])
        ref = raw.get("step")
        owner = self.workflow.all_steps[ref] if ref is not None else step
        ctx = self.context(owner, input=arguments)
        if ref is None and raw.get("action") == "shell":
            ctx.pop("secrets", None)  # as for shell steps: no secrets templated into commands
        record = self.records[owner.step_id] if ref is not None else None
        policy = owner.retry_policy

        def on_line(line: str) -> None:
            self.bus.emit(StepOutputLine(self.run_id, now(), step.step_id, f"[{name}] {line}"))

        local = 0
        while True:
            local += 1
            try:
                if record is not None:
                    agent, action, args, target = self._resolve_call(owner, record, ctx)
                else:
                    agent = None
                    action = self._action(str(raw["action"]))
                    tree = step.with_.value["tools"][index].get("with", {})
                    args = dict(CompiledValue(tree, True).render(ctx))
                    target = self._breaker_target(None, action, args)
            except StepFailed as exc:
                raise ActionError(str(exc), kind=exc.kind, retryable=False) from None
            except ExpressionError as exc:
                raise ActionError(exc.message, kind="validation", retryable=False) from None
            except Exception as exc:
                raise ActionError(str(exc), kind="error", retryable=False) from None
            limiter = self.router.limiter(agent) if agent is not None else None
            if limiter is not None:
                await limiter.acquire()
            if record is not None:
                attempt = Attempt(number=len(record.attempts) + 1, started_at=time.time())
                record.attempts.append(attempt)
                record.started_at = record.started_at or attempt.started_at
                record.status = StepStatus.RUNNING
                self._emit_state(owner.step_id)
            actx = dc_replace(parent, step_id=owner.step_id, attempt=local, on_output=on_line)
            try:
                output, error = await self._call_once(
                    agent, action, args, target, actx, owner.timeout, limiter
                )
            finally:
                if record is not None:
                    record.attempts[-1].ended_at = time.time()
            message = self.masker.mask(str(error)) if error is not None else ""
            if record is not None:
                self._tool_step_done(record, output, message, error)
            if error is None:
                return output
            if not _should_retry(error, policy, local):
                raise ActionError(message, kind=error.kind, retryable=False)
            delay = policy.delay(local, self.rng)
            if error.kind == "circuit_open":
                delay = max(delay, self.breakers.retry_after(target))
            on_line(f"attempt {local} failed ({error.kind}): {message}; retrying in {delay:.2f}s")
            await anyio.sleep(delay)

    def _tool_step_done(
        self, record: StepRecord, output: Any, message: str, error: ActionError | None
    ) -> None:
        """A `step:` tool's own record shows its latest call (like a handler step's)."""
        record.ended_at = time.time()
        if error is None:
            record.status = StepStatus.COMPLETED
            record.output = self.masker.mask_data(output) if self.masker else output
            record.error = record.error_kind = None
        else:
            record.status = StepStatus.FAILED
            record.error, record.error_kind = message, error.kind
            record.attempts[-1].error, record.attempts[-1].error_kind = message, error.kind
        self._emit_state(record.step_id, output=record.output if error is None else None)

    # -- step types ----------------------------------------------------------
    async def _run_parallel(self, step: Step, record: StepRecord) -> Any:
        record.status = StepStatus.RUNNING
        self._emit_state(step.step_id)
        await self.run_level(step.step_id)
        children = [self.records[c.step_id] for c in step.parallel_steps]
        if any(c.status is StepStatus.WAITING for c in children):
            record.status = StepStatus.WAITING
            record.reason = "a child step is waiting for approval"
            self._emit_state(step.step_id)
            return None
        done = [c for c in children if c.status in (StepStatus.COMPLETED, StepStatus.FAILED)]
        succeeded = sum(1 for c in children if c.status is StepStatus.COMPLETED)
        rate = succeeded / len(done) if done else 1.0
        output = {
            "succeeded": succeeded,
            "failed": sum(1 for c in children if c.status is StepStatus.FAILED),
            "skipped": sum(1 for c in children if c.status is StepStatus.SKIPPED),
            "success_rate": rate,
            "children": {
                c.step_id: {"status": c.status.value, "output": c.output, "error": c.error}
                for c in children
            },
        }
        threshold = step.retry_policy.parallel_failure_threshold
        if rate + 1e-9 < threshold:
            failed = [c.step_id for c in children if c.status is StepStatus.FAILED]
            record.output = output
            raise StepFailed(
                f"{len(failed)} of {len(done)} children failed ({', '.join(failed)}); "
                f"success rate {rate:.0%} is below the threshold {threshold:.0%}",
                "error",
            )
        return output

    def _run_conditional(self, step: Step, record: StepRecord) -> Any:
        ctx = self.context(step)
        chosen_index: int | None = None
        for index, branch in enumerate(step.conditions):
            if branch.when is None or truthy(branch.when.evaluate(ctx)):
                chosen_index = index
                break
        chosen = (
            set(step.conditions[chosen_index].next_steps) if chosen_index is not None else set()
        )
        self.chosen.update(chosen)
        for index, branch in enumerate(step.conditions):
            if index == chosen_index:
                continue
            for target in branch.next_steps:
                if target not in chosen:
                    label = branch.name or (branch.when.source if branch.when else "else")
                    self.not_taken.setdefault(
                        target, f"branch not taken: '{label}' of '{step.step_id}'"
                    )
        return {
            "branch": chosen_index,
            "name": step.conditions[chosen_index].name if chosen_index is not None else None,
            "next_steps": sorted(chosen),
        }

    async def _run_loop(self, step: Step, record: StepRecord) -> Any:
        outputs: list[Any] = []
        if step.for_each is not None:
            items = (
                step.for_each.evaluate(self.context(step))
                if not isinstance(step.for_each, tuple)
                else list(step.for_each)
            )
            if not isinstance(items, list | tuple):
                raise StepFailed(
                    f"for_each must give a list (got {type(items).__name__})", "validation"
                )
            if len(items) > step.loop_max_iterations:
                raise StepFailed(
                    f"for_each has {len(items)} items, more than loop_max_iterations "
                    f"({step.loop_max_iterations})",
                    "validation",
                )
            results: list[Any] = [None] * len(items)
            limiter = anyio.CapacityLimiter(step.loop_concurrency)

            failures: list[tuple[int, StepFailed]] = []

            async def one(index: int, item: Any, scope: anyio.CancelScope) -> None:
                loop = {"index": index, "item": item}
                try:
                    async with limiter:
                        results[index] = await self._invoke(
                            step, record, self._step_input(step, loop), loop
                        )
                except StepFailed as exc:
                    # One item failing fails the step: stop the others, report this one.
                    failures.append((index, exc))
                    scope.cancel()
                except ExpressionError as exc:
                    failures.append((index, StepFailed(exc.message, "validation")))
                    scope.cancel()

            async with anyio.create_task_group() as tg:
                for index, item in enumerate(items):
                    tg.start_soon(one, index, item, tg.cancel_scope)
            if failures:
                index, exc = min(failures, key=lambda f: f[0])
                raise StepFailed(f"item {index}: {exc}", exc.kind)
            return {
                "iterations": len(items),
                "outputs": results,
                "last": results[-1] if results else None,
            }

        previous: Any = None
        index = 0
        while True:
            loop = {"index": index, "previous": previous}
            output = await self._invoke(step, record, self._step_input(step, loop), loop)
            outputs.append(output)
            if step.loop_condition is None:
                break
            ctx = self.context(step, loop={"index": index, "output": output, "previous": previous})
            if not truthy(step.loop_condition.evaluate(ctx)):
                break
            if index + 1 >= step.loop_max_iterations:
                raise StepFailed(
                    f"loop did not finish: loop_condition still true after "
                    f"{step.loop_max_iterations} iterations",
                    "error",
                )
            previous = output
            index += 1
            if step.loop_delay:
                await anyio.sleep(step.loop_delay)
        return {"iterations": len(outputs), "outputs": outputs, "last": outputs[-1]}

    def approval_due(self, step_id: str) -> bool:
        """Can a waiting approval step be decided now (a decision, or its window closed)?"""
        if step_id in self.approvals:
            return True
        step = self.workflow.all_steps[step_id]
        started = self.records[step_id].started_at
        return (
            step.timeout is not None
            and started is not None
            and time.time() - started >= step.timeout
        )

    async def _run_approval(self, step: Step, record: StepRecord) -> Any:
        rendered = step.with_.render(self.context(step))
        on_timeout = str(rendered.get("on_timeout", "reject"))
        decision = self.approvals.get(step.step_id)
        if decision is None and self.approval_due(step.step_id):
            # The approval window closed while nobody was running the workflow.
            decision = ApprovalDecision(on_timeout == "approve", by="timeout")
        if decision is None and self.approval_handler is not None:
            request = ApprovalRequest(
                run_id=self.run_id,
                step_id=step.step_id,
                message=str(rendered.get("message", f"Approve step '{step.step_id}'?")),
                approvers=tuple(rendered.get("approvers", ())),
                timeout=step.timeout,
                on_timeout=on_timeout,
            )
            record.status = StepStatus.WAITING
            record.reason = "asking for approval"
            self._emit_state(step.step_id)
            if step.timeout is not None:
                remaining = step.timeout - (time.time() - (record.started_at or time.time()))
                with anyio.move_on_after(max(0.0, remaining)):
                    decision = await self.approval_handler(request)
                if decision is None:
                    decision = ApprovalDecision(on_timeout == "approve", by="timeout")
            else:
                decision = await self.approval_handler(request)
        if decision is None:
            if record.status is not StepStatus.WAITING or record.reason != "waiting for approval":
                record.status = StepStatus.WAITING
                record.reason = "waiting for approval"
                self._emit_state(step.step_id)
            return None
        # The decision ends the wait: the step now completes or fails like any other.
        record.status = StepStatus.RUNNING
        attempt = Attempt(1, record.started_at or time.time(), time.time())
        record.attempts.append(attempt)
        if not decision.approved:
            reason = f"rejected by {decision.by}" + (
                f": {decision.comment}" if decision.comment else ""
            )
            attempt.error, attempt.error_kind = reason, "rejected"
            raise StepFailed(reason, "rejected")
        return {"approved": True, "by": decision.by, "comment": decision.comment}

    # -- handlers and rollback ----------------------------------------------
    async def _run_handler(
        self, handler_id: str, for_step: str, purpose: str, error: dict[str, Any] | None
    ) -> dict[str, Any]:
        handler = self.workflow.all_steps[handler_id]
        record = self.records[handler_id]
        record.status = StepStatus.RUNNING
        record.started_at = record.started_at or time.time()
        extra_ctx = {"error": error} if error else {}
        result: dict[str, Any] = {"step_id": handler_id, "for_step": for_step, "purpose": purpose}
        try:
            step_input = self._step_input(handler)
            output = await self._invoke(handler, record, step_input, {}, extra_ctx)
            record.output = self.masker.mask_data(output) if self.masker else output
            updates: dict[str, Any] = {}
            if handler.action == "set" and isinstance(output, dict):
                updates.update(output)
            if handler.output_mapping:
                ctx = self.context(handler, output=record.output, **extra_ctx)
                updates.update(
                    {name: expr.evaluate(ctx) for name, expr in handler.output_mapping.items()}
                )
            self._store_vars(handler_id, updates)
            record.status = StepStatus.COMPLETED
            record.error = None
            result.update(status="completed", output=record.output)
        except (StepFailed, ExpressionError) as exc:
            message = exc.message if isinstance(exc, ExpressionError) else str(exc)
            record.status = StepStatus.FAILED
            record.error = message
            result.update(status="failed", error=message)
        record.ended_at = time.time()
        record.handler_runs.append(result)
        self._emit_state(handler_id)
        self.bus.emit(
            HandlerRan(
                self.run_id,
                now(),
                handler_id,
                for_step,
                purpose,
                record.status,
                record.error,
                record.output,
            )
        )
        return result

    async def rollback(self) -> None:
        """Run rollback_actions of every completed step, newest completion first."""
        for step_id in reversed(self.completion_order):
            step = self.workflow.all_steps[step_id]
            for handler in step.rollback_actions:
                self.rollbacks.append(await self._run_handler(handler, step_id, "rollback", None))

    def mark_not_started(self, why: str) -> None:
        """Steps that never started when the run stopped: skipped, with the reason."""
        for step_id, record in self.records.items():
            if record.status is StepStatus.PENDING and step_id not in self.workflow.handlers:
                record.status = StepStatus.SKIPPED
                record.reason = f"not started: {why}"
                self._emit_state(step_id)

    def mark_unused_handlers(self) -> None:
        for handler in self.workflow.handlers:
            record = self.records[handler]
            if record.status is StepStatus.PENDING:
                record.status = StepStatus.SKIPPED
                record.reason = "handler not invoked"
                self._emit_state(handler)
