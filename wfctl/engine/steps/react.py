"""The react step: the `react` action (a LangChain agent) with workflow actions as tools.

What is react-specific stays here: its arguments (the `with` map without the tools,
the model from a routed agent) and its tools, each call run through the same attempt
loop as any step (retry policy, timeout, breaker of the step it belongs to).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any, NoReturn

import anyio

from wfctl.actions.base import Action, ActionContext, ActionError, ToolCaller
from wfctl.engine.attempts import Resolved, StepFailed
from wfctl.engine.step_call import breaker_target, invoke, resolve_call
from wfctl.events import StepOutputLine, now
from wfctl.expressions import CompiledValue, ExpressionError
from wfctl.model import Agent, ReactBody, ReactTool, Step, StepStatus
from wfctl.records import Attempt, StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["react_call", "run", "tool_caller"]


async def run(ex: Executor, step: Step, record: StepRecord) -> Any:
    """One react step: the `react` action under the step's own policy."""
    # hold: the slot stays with this step until the scheduler has queued its dependents.
    return await invoke(ex, step, record, ex.step_input(step), {}, hold=True)


@cache
def _react_action() -> Action:
    from wfctl.actions.react import ReactAction

    return ReactAction()


def react_call(
    ex: Executor, step: Step, ctx: Mapping[str, Any], agent_model: str | None
) -> tuple[Action, dict[str, Any], str | None]:
    """(action, rendered args, breaker target) of one react attempt. Tool `with`
    templates are rendered per tool call (they see the model's arguments as `input`)."""
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
    args["tools"] = [
        {"name": t.name, "description": t.description, "parameters": t.parameters}
        for t in _tools(step)
    ]
    action = _react_action()
    return action, args, action.target(args)


def _tools(step: Step) -> tuple[ReactTool, ...]:
    return step.body.tools if isinstance(step.body, ReactBody) else ()


def tool_caller(ex: Executor, step: Step) -> ToolCaller:
    """What the react action calls to run one of `step`'s tools."""
    names = [t.name for t in _tools(step)]

    async def call_tool(name: str, arguments: dict[str, Any], actx: ActionContext) -> Any:
        return await ex.attempts.run(ToolCall(ex, step, names.index(name), arguments, actx))

    return call_tool


class ToolCall:
    """The :class:`~wfctl.engine.attempts.Call` of one tool call of a react step.

    A tool holds no concurrency slot: the react step's own slot covers its tools (else one
    react step could deadlock the run). A `step:` tool runs that step's action with its
    policy and shows the latest call on that step's record; an inline tool is recorded in
    the transcript only. The final failure goes back to the model as an ActionError."""

    def __init__(
        self,
        ex: Executor,
        step: Step,
        index: int,
        arguments: dict[str, Any],
        parent: ActionContext,
    ) -> None:
        tool = _tools(step)[index]
        self._ex = ex
        self._step = step
        self._tool = tool
        self._tree = step.with_.value["tools"][index].get("with", {})
        self._name = tool.name
        ref = tool.step
        self._owner = ex.workflow.all_steps[ref] if ref is not None else step
        self._record = ex.records[ref] if ref is not None else None
        self._ctx = ex.context(self._owner, input=arguments)
        if ref is None and ex.actions.starts_processes(tool.action):
            self._ctx.pop("secrets", None)  # as for such steps: none templated into commands
        self._parent = parent
        self._kind = "error"
        self.policy = self._owner.retry_policy
        self.timeout = self._owner.timeout

    def resolve(self, local: int) -> Resolved:
        try:
            return self._resolve()
        except StepFailed as exc:
            raise ActionError(str(exc), kind=exc.kind, retryable=False) from None
        except ExpressionError as exc:
            raise ActionError(exc.message, kind="validation", retryable=False) from None
        except Exception as exc:
            raise ActionError(str(exc), kind="error", retryable=False) from None

    def _resolve(self) -> Resolved:
        if self._record is not None:
            return resolve_call(self._ex, self._owner, self._record, self._ctx)
        action = self._ex.actions.get(str(self._tool.action))
        args = dict(CompiledValue(self._tree, True).render(self._ctx))
        return None, action, args, breaker_target(None, action, args)

    async def begin(self, local: int, limiter: anyio.CapacityLimiter | None) -> ActionContext:
        if limiter is not None:
            await limiter.acquire()
        record = self._record
        if record is not None:
            attempt = Attempt(number=len(record.attempts) + 1, started_at=time.time())
            record.attempts.append(attempt)
            record.started_at = record.started_at or attempt.started_at
            record.status = StepStatus.RUNNING
            self._ex.emit_state(record.step_id)
        return replace(
            self._parent,
            step_id=self._owner.step_id,
            attempt=local,
            on_output=self._on_line,
            call_tool=None,
        )

    def _on_line(self, line: str) -> None:
        ex = self._ex
        ex.bus.emit(StepOutputLine(ex.run_id, now(), self._step.step_id, f"[{self._name}] {line}"))

    def abort(self) -> None:
        """Nothing to give back (a tool holds no slot): only the attempt's end."""
        if self._record is not None:
            self._record.attempts[-1].ended_at = time.time()

    def succeeded(self, output: Any) -> None:
        if self._record is not None:
            self.abort()
            self._done(self._record, output, "", None)

    def failed(self, error: ActionError, message: str) -> None:
        self._kind = error.kind
        if self._record is not None:
            self.abort()
            self._done(self._record, None, message, error)

    def give_up(self, message: str, error: ActionError) -> NoReturn:
        raise ActionError(message, kind=error.kind, retryable=False)

    def waits_for_breaker(self, agent: Agent | None) -> bool:
        return True

    async def retrying(self, local: int, delay: float, message: str) -> None:
        self._on_line(f"attempt {local} failed ({self._kind}): {message}; retrying in {delay:.2f}s")

    def _done(
        self, record: StepRecord, output: Any, message: str, error: ActionError | None
    ) -> None:
        """A `step:` tool's own record shows its latest call (like a handler step's)."""
        record.ended_at = time.time()
        if error is None:
            record.status = StepStatus.COMPLETED
            record.output = self._ex.masker.mask_data(output)
            record.error = record.error_kind = None
        else:
            record.status = StepStatus.FAILED
            record.error, record.error_kind = message, error.kind
            record.attempts[-1].error, record.attempts[-1].error_kind = message, error.kind
        self._ex.emit_state(record.step_id, output=record.output if error is None else None)
