"""A step's own action call (action steps, loop iterations, handlers) for the attempt loop.

Its attempts are the step's: each holds a concurrency slot, is recorded on the step's
record and announced; a final failure raises :class:`StepFailed`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import anyio

from wfctl.actions.base import Action, ActionContext, ActionError
from wfctl.engine.agents import NoAgentAvailable
from wfctl.engine.attempts import Resolved, StepFailed
from wfctl.events import RetryScheduled, StepOutputLine, now
from wfctl.expressions import evaluation_time_limit
from wfctl.model import Agent, Step, StepStatus, StepType
from wfctl.records import Attempt, StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor
    from wfctl.engine.slots import Ticket

__all__ = ["StepCall", "breaker_target", "invoke", "resolve_call"]

_TAIL_LINES = 1000  # output lines kept of an attempt that may be stopped


def invoke(
    ex: Executor,
    step: Step,
    record: StepRecord,
    step_input: dict[str, Any],
    loop: dict[str, Any],
    extra_ctx: Mapping[str, Any] | None = None,
    hold: bool = False,
) -> Awaitable[Any]:
    """One action call of `step` with its retry policy, timeout and circuit breaker.

    With `hold`, the slot stays with the step until the scheduler has queued its
    dependents (they get first claim on it)."""
    ctx: Mapping[str, Any] = {}
    if (
        step.with_.has_templates
        or step.agent_capability is not None
        or step.step_type is (StepType.REACT)
    ):
        # Only templates read the context; most steps' `with` is plain data.
        extra: dict[str, Any] = {**(extra_ctx or {}), "input": step_input}
        if loop:
            extra["loop"] = loop
        ctx = ex.context(step, **extra)
    # The attempt loop's own coroutine, awaited by the caller: no frame of ours.
    return ex.attempts.run(StepCall(ex, step, record, ctx, loop, hold))


class StepCall:
    """The :class:`~wfctl.engine.attempts.Call` of a step's own action."""

    __slots__ = (
        "_attempt",
        "_ex",
        "_hold",
        "_iteration",
        "_number",
        "_react",
        "_record",
        "_resolved",
        "_step",
        "_tail",
        "_ticket",
        "ctx",
        "policy",
        "timeout",
    )

    def __init__(
        self,
        ex: Executor,
        step: Step,
        record: StepRecord,
        ctx: Mapping[str, Any],
        loop: Mapping[str, Any],
        hold: bool,
    ) -> None:
        self._ex = ex
        self._step = step
        self._record = record
        self.ctx = ctx
        self._iteration = loop.get("index") if loop else None
        self._hold = hold
        self.policy = step.retry_policy
        self.timeout = step.timeout
        self._number = len(record.attempts)
        self._resolved: Resolved | None = None
        self._ticket: Ticket | None = None
        self._attempt: Attempt | None = None
        self._react = step.step_type is StepType.REACT
        self._tail: deque[tuple[bool, str]] | None = None  # (stderr?, line): last output

    def resolve(self, local: int) -> Resolved:
        resolved = self._resolved
        # Route again after a failure: the agent that failed may have an open breaker now.
        if resolved is None or resolved[0] is not None:
            # Rendering `with` counts against the step's timeout (issue 15).
            with evaluation_time_limit(self.timeout):
                resolved = resolve_call(self._ex, self._step, self._record, self.ctx)
            self._resolved = resolved
        return resolved

    async def begin(self, local: int, limiter: anyio.CapacityLimiter | None) -> ActionContext:
        ex, step, record = self._ex, self._step, self._record
        self._number += 1
        waited_from = time.monotonic()
        ticket = ex.tickets.pop(step.step_id, None) or ex.slots.request(
            ex.plan.priority.get(step.step_id, 0.0)
        )
        try:
            if not ticket.granted:  # most steps hold their slot already: no await
                await ex.slots.wait(ticket)
            if limiter is not None:
                # The agent's own max_concurrency, taken before the step shows as running,
                # so `running` events on an agent never exceed it.
                await limiter.acquire()
        except BaseException:
            ex.slots.cancel(ticket)
            raise
        self._ticket = ticket
        # Time queued for a slot is not running time (durations, SLAs, the report).
        record.slot_wait += time.monotonic() - waited_from
        self._tail = None
        attempt = self._attempt = Attempt(number=self._number, started_at=time.time())
        record.attempts.append(attempt)
        if record.started_at is None:
            record.started_at = attempt.started_at
        record.status = StepStatus.RUNNING
        ex.emit_state(step.step_id, iteration=self._iteration)
        return ActionContext(
            run_id=ex.run_id,
            step_id=step.step_id,
            attempt=self._number,
            idempotency_key=f"{ex.run_id}:{step.step_id}",
            workdir=ex.workdir,
            secret_env=ex.secret_env,
            masker=ex.masker,
            on_output=self._on_line,
            on_error_output=self._on_error_line,
            call_tool=self._tool_caller() if self._react else None,
            artifacts=ex.artifacts.get,
        )

    def _tool_caller(self) -> Any:
        from wfctl.engine.steps.react import tool_caller

        return tool_caller(self._ex, self._step)

    def _on_line(self, line: str) -> None:
        ex = self._ex
        ex.bus.emit(StepOutputLine(ex.run_id, now(), self._step.step_id, line))
        # Kept for an attempt that is stopped before it can return its output (a timeout,
        # Ctrl-C): what it printed is then its output.
        self._keep(False, line)

    def _keep(self, stderr: bool, line: str) -> None:
        tail = self._tail
        if tail is None:
            tail = self._tail = deque(maxlen=_TAIL_LINES)
        tail.append((stderr, line))

    def _keep_tail(self) -> None:
        """A stopped attempt's output: the lines it printed, stdout and stderr apart."""
        tail = self._tail
        if tail:
            out = [line for stderr, line in tail if not stderr]
            err = [line for stderr, line in tail if stderr]
            self._record.output = {
                "stdout": "".join(f"{line}\n" for line in out),
                "stderr": "".join(f"{line}\n" for line in err),
                "exit_code": None,
                "json": None,
            }

    def _on_error_line(self, line: str) -> None:
        ex = self._ex
        ex.bus.emit(StepOutputLine(ex.run_id, now(), self._step.step_id, line, "stderr"))
        self._keep(True, line)

    def abort(self) -> None:
        if self._attempt is not None and self._attempt.ended_at is None:
            self._attempt.ended_at = time.time()
            self._keep_tail()  # stopped (a timeout, Ctrl-C) or failed without an output
        self._free()

    def _free(self) -> None:
        if self._ticket is not None:
            self._ex.slots.cancel(self._ticket)
            self._ticket = None

    def succeeded(self, output: Any) -> None:
        if self._attempt is not None:
            self._attempt.ended_at = time.time()
        ticket = self._ticket
        self._ticket = None
        if ticket is None:
            return
        if self._hold:
            self._ex.tickets[self._step.step_id] = ticket
        else:
            self._ex.slots.cancel(ticket)

    def failed(self, error: ActionError, message: str) -> None:
        self.abort()
        if error.output is not None:
            # What the failed attempt produced (a shell step's stdout, stderr, exit_code; a
            # react answer that failed output_schema): in the report and `steps.<id>.output`.
            self._record.output = self._ex.masker.mask_data(error.output)
        if self._attempt is not None:
            self._attempt.error = message
            self._attempt.error_kind = error.kind

    def give_up(self, message: str, error: ActionError) -> NoReturn:
        raise StepFailed(message, error.kind)

    def waits_for_breaker(self, agent: Agent | None) -> bool:
        return not can_reroute(self._ex, self._step, agent)

    async def retrying(self, local: int, delay: float, message: str) -> None:
        ex, record = self._ex, self._record
        next_at = time.time() + delay
        record.status = StepStatus.RETRYING
        record.error = message
        record.error_kind = self._attempt.error_kind if self._attempt else None
        ex.bus.emit(
            RetryScheduled(ex.run_id, now(), record.step_id, self._number, delay, next_at, message)
        )
        ex.emit_state(record.step_id, next_attempt_at=next_at)


def can_reroute(ex: Executor, step: Step, agent: Agent | None) -> bool:
    """Would routing again pick another agent now (no need to wait for a breaker)?"""
    if agent is None or step.agent_capability is None:
        return False
    try:
        other, _ = ex.router.choose(step.agent_capability)
    except NoAgentAvailable:
        return False
    return other.name != agent.name


def resolve_call(ex: Executor, step: Step, record: StepRecord, ctx: Mapping[str, Any]) -> Resolved:
    """(agent, action, rendered args, circuit-breaker target) for one attempt."""
    routed = step.action is None and step.agent_capability is not None
    if step.step_type is StepType.REACT:
        return _resolve_react(ex, step, record, ctx, routed)
    if routed:
        return _resolve_routed(ex, step, record, ctx)
    if step.action is None:
        raise StepFailed("step has no action to run", "error")
    action = _lookup(ex, step.action)
    rendered = step.with_.render(ctx) if step.with_.value else {}
    if step.with_.has_templates:
        return None, action, rendered, breaker_target(None, action, rendered)
    # Same arguments every attempt, so the same breaker target: work it out once.
    targets = ex.attempts.targets
    if step.step_id not in targets:
        targets[step.step_id] = breaker_target(None, action, rendered)
    return None, action, rendered, targets[step.step_id]


def _resolve_routed(
    ex: Executor, step: Step, record: StepRecord, ctx: Mapping[str, Any]
) -> Resolved:
    agent = _route(ex, step, record)
    if agent.action is None:
        raise StepFailed("step has no action to run", "error")
    action = _lookup(ex, agent.action)
    rendered = step.with_.render(ctx) if step.with_.value else {}
    from wfctl.expressions import compile_value

    base_args = dict(compile_value(dict(agent.with_)).render(ctx))
    args = {**base_args, **rendered} if base_args else rendered
    return agent, action, args, breaker_target(agent, action, args)


def _resolve_react(
    ex: Executor, step: Step, record: StepRecord, ctx: Mapping[str, Any], routed: bool
) -> Resolved:
    if not routed:
        return (None, *_react(ex, step, ctx, None))
    agent = _route(ex, step, record)
    action, args, _ = _react(ex, step, ctx, agent.model)
    return agent, action, args, f"agent:{agent.name}"


def _route(ex: Executor, step: Step, record: StepRecord) -> Agent:
    assert step.agent_capability is not None
    try:
        agent, why = ex.router.choose(step.agent_capability)
    except NoAgentAvailable as exc:
        raise StepFailed(str(exc), "circuit_open") from None
    record.agent = agent.name
    record.agent_reason = why
    ex.bus.emit(
        StepOutputLine(ex.run_id, now(), step.step_id, f"routed to agent {agent.name}: {why}")
    )
    return agent


def _react(
    ex: Executor, step: Step, ctx: Mapping[str, Any], model: str | None
) -> tuple[Action, dict[str, Any], str | None]:
    from wfctl.engine.steps.react import react_call

    return react_call(ex, step, ctx, model)


def _lookup(ex: Executor, name: str) -> Action:
    try:
        return ex.actions.get(name)
    except Exception as exc:
        raise StepFailed(str(exc), "error") from None


def breaker_target(agent: Agent | None, action: Action, args: Mapping[str, Any]) -> str | None:
    """The circuit-breaker key of an attempt (None: no breaker)."""
    target: str | None = f"agent:{agent.name}" if agent is not None else action.target(args)
    if target is not None and ":" not in target:
        # A bare action name (shell, noop...) names no shared dependency: no breaker.
        # (One per step would only trip on the step's own retries.)
        target = None
    return target
