"""The one attempt loop: every action call of a run goes through it.

Action steps, loop iterations and for-each items, handlers and react tools all differ
only in a :class:`Call` (what to resolve, where its attempts are recorded, what a final
failure raises); the loop owns retries with backoff and jitter, the circuit breaker, agent
routing and rerouting, and hands each attempt to the run's :class:`Backend`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import anyio

from wfctl.actions.base import Action, ActionContext, ActionError
from wfctl.engine.backends import ensure_json
from wfctl.model import Agent, RetryPolicy
from wfctl.model.policies import MAX_RETRY_DELAY

if TYPE_CHECKING:
    from wfctl.engine.backends import Backend
    from wfctl.engine.executor import Executor

__all__ = ["AttemptLoop", "Call", "Resolved", "StepFailed", "should_retry"]

#: One attempt's (agent, action, rendered args, circuit-breaker target).
Resolved = tuple[Agent | None, Action, Mapping[str, Any], str | None]


class StepFailed(Exception):
    """Raised inside the engine when a step's final attempt failed."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


def should_retry(error: ActionError, policy: RetryPolicy, attempts_so_far: int) -> bool:
    """Another attempt after `error`? (Invalid input never gets better by retrying.)"""
    return (
        error.retryable
        and error.kind in policy.retry_on
        and error.kind != "validation"
        and attempts_so_far < policy.max_attempts
    )


class Call(Protocol):
    """One action call with its policy: the part of the attempt loop that differs."""

    policy: RetryPolicy
    timeout: float | None

    def resolve(self, local: int) -> Resolved:
        """What attempt `local` (1-based) runs; may route to (another) agent."""
        ...

    async def begin(self, local: int, limiter: anyio.CapacityLimiter | None) -> ActionContext:
        """Take what the attempt needs (slot, agent limiter), record it as running."""
        ...

    def abort(self) -> None:
        """The attempt was cancelled: stamp its end, give back what `begin` took."""

    def succeeded(self, output: Any) -> None:
        """The attempt returned `output` (stamp its end)."""

    def failed(self, error: ActionError, message: str) -> None:
        """The attempt failed with `error`, `message` masked (stamp its end)."""

    def give_up(self, message: str, error: ActionError) -> NoReturn:
        """No more attempts: raise what the caller expects."""
        ...

    def waits_for_breaker(self, agent: Agent | None) -> bool:
        """After `circuit_open`, wait for the breaker (rather than reroute at once)?"""
        ...

    async def retrying(self, local: int, delay: float, message: str) -> None:
        """Announce the next attempt, `delay` seconds from now."""


class AttemptLoop:
    """Runs calls attempt by attempt under the run's breakers, router and backend."""

    def __init__(self, executor: Executor, backend: Backend) -> None:
        self._ex = executor
        self.backend = backend
        # Breaker targets of steps whose arguments are the same every attempt.
        self.targets: dict[str, str | None] = {}

    async def run(self, call: Call) -> Any:
        """Attempts until one succeeds or the policy gives up (then `call.give_up` raises)."""
        ex = self._ex
        policy = call.policy
        local = 0
        # Read only by a policy with a deadline: no clock read per call otherwise.
        first_start = time.monotonic() if policy.deadline is not None else 0.0
        while True:
            local += 1
            agent, action, args, target = call.resolve(local)
            limiter = ex.router.limiter(agent) if agent is not None else None
            actx = await call.begin(local, limiter)
            try:
                output, error = await self._call_once(
                    agent, action, args, target, actx, call, limiter
                )
            except BaseException:
                call.abort()  # cancelled: free the slot at once
                raise
            if error is None:
                call.succeeded(output)
                return output
            message = ex.masker.mask(str(error))
            call.failed(error, message)
            if not should_retry(error, policy, local):
                call.give_up(message, error)
            delay = self._delay(call, error, local, agent, target)
            if policy.retry_if is not None or policy.deadline is not None:
                self._check_retry(call, error, message, local, delay, first_start)
            await call.retrying(local, delay, message)
            await anyio.sleep(delay)

    def _delay(
        self, call: Call, error: ActionError, local: int, agent: Agent | None, target: str | None
    ) -> float:
        """Seconds before the next attempt (at least until an open breaker may close)."""
        ex = self._ex
        delay = call.policy.delay(local, ex.rng)
        if error.kind == "circuit_open" and call.waits_for_breaker(agent):
            # A breaker's reset_timeout has no upper bound of its own (1e300 is valid).
            delay = min(max(delay, ex.breakers.retry_after(target)), MAX_RETRY_DELAY)
        return delay

    def _check_retry(
        self, call: Call, error: ActionError, message: str, local: int, delay: float, start: float
    ) -> None:
        """Give up (`call.give_up` raises) if `retry_if` or the deadline refuse a retry."""
        refused = self._refused(call.policy, error, local, delay, start)
        if refused is not None:
            call.give_up(f"{message} (not retried: {refused})", error)

    def _refused(
        self, policy: RetryPolicy, error: ActionError, local: int, delay: float, start: float
    ) -> str | None:
        """Why `retry_if` or the retry `deadline` refuse another attempt (None: retry)."""
        if policy.deadline is not None and time.monotonic() + delay - start > policy.deadline:
            return f"retry deadline of {policy.deadline:g}s"
        if policy.retry_if is None:
            return None
        from wfctl.expressions import ExpressionError, truthy
        from wfctl.records import error_info

        ex = self._ex
        output = ex.masker.mask_data(error.output)
        info = error_info(ex.masker.mask(str(error)), error.kind, output).as_dict()
        ctx = ex.context(None, output=output, error=info, attempt=local)
        try:
            holds = truthy(policy.retry_if.evaluate(ctx))
        except ExpressionError as exc:
            return f"retry_if: {exc.message}"
        return None if holds else f"retry_if is false: {policy.retry_if.source}"

    async def _call_once(
        self,
        agent: Agent | None,
        action: Action,
        args: Mapping[str, Any],
        target: str | None,
        actx: ActionContext,
        call: Call,
        limiter: anyio.CapacityLimiter | None,
    ) -> tuple[Any, ActionError | None]:
        """One attempt under its breaker: (output, None) or (None, error). The agent's
        limiter, taken in `call.begin`, is released here."""
        breakers = self._ex.breakers
        try:
            if not breakers.allow(target):
                wait = breakers.retry_after(target)
                refused = f"circuit breaker for {target} is open (retry in {wait:.1f}s)"
                return None, self._failed(target, ActionError(refused, kind="circuit_open"))
            if agent is not None:
                return await self._on_agent(agent, action, args, actx, call.timeout, target)
            output = ensure_json(await self.backend.run(action, args, actx, call.timeout))
            breakers.record_success(target)
            return output, None
        except TimeoutError:
            limit = f" after {call.timeout:g}s" if call.timeout is not None else ""
            return None, self._failed(target, ActionError(f"timed out{limit}", kind="timeout"))
        except ActionError as exc:
            return None, self._failed(target, exc)
        except Exception as exc:  # a bug in an action is still that step's failure
            error = ActionError(f"{type(exc).__name__}: {exc}", kind="error")
            return None, self._failed(target, error)
        except BaseException:
            breakers.record_neutral(target)
            raise
        finally:
            if limiter is not None:
                limiter.release()

    async def _on_agent(
        self,
        agent: Agent,
        action: Action,
        args: Mapping[str, Any],
        actx: ActionContext,
        timeout: float | None,
        target: str | None,
    ) -> tuple[Any, None]:
        """An attempt on an agent: the router learns its outcome and duration."""
        router = self._ex.router
        router.started(agent)
        started = time.monotonic()
        ok = False
        try:
            output = ensure_json(await self.backend.run(action, args, actx, timeout))
            ok = True
        finally:
            router.finished(agent, ok, time.monotonic() - started)
        self._ex.breakers.record_success(target)
        return output, None

    def _failed(self, target: str | None, error: ActionError) -> ActionError:
        """Count a failed attempt against its breaker (refusals and bad input do not)."""
        if error.kind in ("circuit_open", "validation"):
            self._ex.breakers.record_neutral(target)
        else:
            self._ex.breakers.record_failure(target)
        return error
