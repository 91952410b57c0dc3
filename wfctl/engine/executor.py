"""One run's state and the wiring of the engine's parts.

The :class:`Executor` owns every StepRecord, the run's `vars` and what the expressions of
a step see; it emits every state change. The work is done elsewhere, one concern a
module: :mod:`.scheduler` (which step starts when), :mod:`.lifecycle` (one step from
start to end), :mod:`.steps` (one module per step type), :mod:`.attempts` (the one
attempt loop: timeout, retry, breaker, routing), :mod:`.backends` (where an attempt
runs), :mod:`.handlers` (error handlers and rollback) and :mod:`.resume`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wfctl.compile.plan import ExecutionPlan
from wfctl.engine.agents import AgentRouter
from wfctl.engine.attempts import AttemptLoop, StepFailed
from wfctl.engine.backends import Backend, default_backend
from wfctl.engine.breaker import CircuitBreakers
from wfctl.engine.catalog import ActionCatalog
from wfctl.engine.scheduler import Scheduler
from wfctl.engine.scopes import Scope, ScopedStepsView
from wfctl.engine.slots import PrioritySlots, Ticket
from wfctl.engine.workflow_view import WorkflowView
from wfctl.events import CircuitChanged, EventBus, StepStateChanged, VarsChanged, now
from wfctl.model import Step, WorkflowState
from wfctl.records import ApprovalDecision, ApprovalHandler, ApprovalRequest, StepRecord
from wfctl.secrets import Masker
from wfctl.state.artifacts import RunArtifacts

if TYPE_CHECKING:
    from wfctl.state.cache import StepCacheTable

__all__ = [
    "ApprovalDecision",
    "ApprovalHandler",
    "ApprovalRequest",
    "Executor",
    "StepFailed",
    "StepsView",
]


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
        backend: Backend | None = None,
        artifacts: RunArtifacts | None = None,
    ) -> None:
        self.plan = plan
        self.workflow = plan.workflow
        self.run_id = run_id
        self.inputs = dict(inputs)
        self.bus = bus
        self.secrets = dict(secrets)
        self.secret_env = dict(secret_env)
        # Each step's last built `input` (only steps with an input_mapping): its
        # output_mapping and custom_metrics see it too (FORMAT.md; issue 15).
        self.built_inputs: dict[str, dict[str, Any]] = {}
        self.masker = masker
        self.workdir = workdir
        # Every step of this run by id: the workflow's, and the iteration copies of group
        # loop bodies as the scheduler makes them (wfctl.engine.scopes); the run's
        # `workflow.all_steps` is this table, so every lookup by id finds them.
        self.steps: dict[str, Step] = dict(plan.workflow.all_steps)
        self.workflow = replace(plan.workflow, all_steps=self.steps)
        self.scopes: dict[str, Scope] = {}  # iteration copies' scopes, by their ids
        templates = self.workflow.templates
        self.records: dict[str, StepRecord] = {
            s: StepRecord(s) for s in self.steps if s not in templates
        }
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
        # keeps the slot until its dependents are queued (see Scheduler.run_container).
        self.tickets: dict[str, Ticket] = {}
        self.actions = ActionCatalog()
        self.attempts = AttemptLoop(self, backend or default_backend())
        self.cache: StepCacheTable | None = None  # the step cache (a durable run's)
        # Without a store: a temporary directory, made when a step first asks for it.
        self.artifacts = artifacts or RunArtifacts(None, run_id)
        self._workflow_view = WorkflowView(
            {
                "id": self.workflow.workflow_id,
                "name": self.workflow.name,
                "version": self.workflow.version,
                "run_id": run_id,
            },
            {"artifacts": lambda: str(self.artifacts.get())},
        )
        self.scheduler = Scheduler(self)

    # -- the seams the control graph and the runner use ---------------------------
    async def run_level(self, container: str | None) -> None:
        """Run every step of one container that can run, each the moment it may."""
        await self.scheduler.run_container(self.plan.levels[container])

    def restore(self, replayed: Any) -> None:
        """Take over a journaled run (see :func:`wfctl.engine.resume.restore`)."""
        from wfctl.engine.resume import restore

        restore(self, replayed)
        # on_exit steps run again at the end of every process that ends the run: what
        # they did last time (and a failure of theirs) is not carried over.
        hooks = [s.step_id for s in self.workflow.on_exit]
        for step_id in hooks:
            self.records[step_id] = StepRecord(step_id)
        if self.fatal is not None and any(self.fatal.startswith(f"step '{h}'") for h in hooks):
            self.fatal = None

    def approval_due(self, step_id: str) -> bool:
        """Can a waiting approval step be decided now (a decision, or its window closed)?"""
        from wfctl.engine.steps.approval import approval_due

        return approval_due(self, step_id)

    async def rollback(self) -> None:
        """Run rollback_actions of every completed step, newest completion first."""
        from wfctl.engine.handlers import rollback

        await rollback(self)

    def mark_not_started(self, why: str) -> None:
        """Steps that never started when the run stopped: skipped, with the reason."""
        from wfctl.engine.handlers import mark_not_started

        mark_not_started(self, why)

    async def run_exit_hooks(
        self, status: WorkflowState, error: str | None
    ) -> tuple[WorkflowState, str | None]:
        """Run the on_exit steps; a failing one fails a run that had completed."""
        if not self.workflow.on_exit:
            return status, error
        from wfctl.engine.handlers import run_exit_hooks

        failed = await run_exit_hooks(self, status.value)
        if failed is not None and status is WorkflowState.COMPLETED:
            return WorkflowState.FAILED, failed
        return status, error

    def set_outcome(self, status: str, failures: list[dict[str, Any]]) -> None:
        """What on_exit steps see as `workflow.status` and `workflow.failures`."""
        self._workflow_view = self._workflow_view.with_facts(status=status, failures=failures)

    @property
    def workflow_view(self) -> WorkflowView:
        """`workflow` in the run's expressions."""
        return self._workflow_view

    def mark_unused_handlers(self) -> None:
        """Handler steps nobody invoked: skipped."""
        from wfctl.engine.handlers import mark_unused_handlers

        mark_unused_handlers(self)

    # -- events ------------------------------------------------------------
    def emit_state(self, step_id: str, **extra: Any) -> None:
        """Announce a step's current record."""
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

    # -- what expressions see ------------------------------------------------
    def context(self, step: Step | None = None, **extra: Any) -> dict[str, Any]:
        """The names a step's expressions see (no `secrets` for an action that starts
        processes: PITFALLS.md, secrets never reach a command line by templating)."""
        ctx: dict[str, Any] = {
            "inputs": self.inputs,
            "vars": self.vars,
            "steps": StepsView(self.records),
            "workflow": self._workflow_view,
        }
        if step is None or self.actions.may_template_secrets(step):
            ctx["secrets"] = self.secrets
        if self.scopes and step is not None and step.step_id in self.scopes:
            scope = self.scopes[step.step_id]
            ctx["steps"] = ScopedStepsView(self.records, scope.names)
            ctx.update(scope.context)
        ctx.update(extra)
        return ctx

    def store_vars(self, step_id: str, updates: dict[str, Any]) -> None:
        """Merge a step's updates into `vars` (masked: vars are journaled)."""
        if not updates:
            return
        updates = self.masker.mask_data(updates)
        self.vars.update(updates)
        self.bus.emit(VarsChanged(self.run_id, now(), step_id, updates))

    def mark_fatal(self, step: Step, record: StepRecord) -> None:
        """A failed step fails the run, unless its container or policy decides otherwise."""
        # Inside a parallel step the container decides, by its failure threshold.
        fails_run = step.container is None and not step.retry_policy.continue_on_failure
        watch = self.scheduler.on_failure.get(step.container) if step.container else None
        if watch is not None:
            watch(step, record)
        if fails_run and self.fatal is None:
            self.fatal = f"step '{step.step_id}' failed: {record.error}"

    def step_input(self, step: Step, loop: dict[str, Any] | None = None) -> dict[str, Any]:
        """The step's `input` (its input_mapping evaluated, then input_validation)."""
        if not step.input_mapping:
            return {}
        ctx = self.context(step, loop=loop) if loop is not None else self.context(step)
        built = {name: expr.evaluate(ctx) for name, expr in step.input_mapping.items()}
        if step.input_validation is not None:
            _validate_input(step.input_validation, built)
        self.built_inputs[step.step_id] = built
        return built


def _validate_input(schema: Any, built: dict[str, Any]) -> None:
    from wfctl.format.user_schema import user_validator  # RE2 patterns: linear time

    errors = list(user_validator(schema).iter_errors(built))
    if errors:
        first = min(errors, key=lambda e: list(e.absolute_path))
        where = ".".join(str(p) for p in first.absolute_path) or "input"
        raise StepFailed(f"input_validation: {where}: {first.message}", "validation")
