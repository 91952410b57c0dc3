"""Frozen engine objects built from a validated workflow document (the seed's names)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import random

    from wfctl.document.loader import LoadedDocument
    from wfctl.expressions import CompiledValue, Expression


class StepType(StrEnum):
    ACTION = "action"
    PARALLEL = "parallel"
    CONDITIONAL = "conditional"
    LOOP = "loop"
    HUMAN_APPROVAL = "human_approval"
    REACT = "react"


class StepStatus(StrEnum):
    PENDING = "pending"
    WAITING = "waiting"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL  # asked several times per step: no tuple per call


_TERMINAL: Final = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED})


class WorkflowState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    WAITING_APPROVAL = "waiting_approval"


class TriggerRule(StrEnum):
    ALL_SUCCESS = "all_success"
    ALL_DONE = "all_done"
    NONE_FAILED = "none_failed"
    ONE_SUCCESS = "one_success"


class Backoff(StrEnum):
    FIXED = "fixed"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


ERROR_KINDS = frozenset(
    {"error", "timeout", "exit_code", "http_status", "connection", "circuit_open"}
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 1
    backoff: Backoff = Backoff.EXPONENTIAL
    initial_delay: float = 1.0
    max_delay: float = 60.0
    jitter: bool = True
    retry_on: frozenset[str] = ERROR_KINDS
    continue_on_failure: bool = False
    parallel_failure_threshold: float = 1.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if self.backoff is Backoff.FIXED:
            base = self.initial_delay
        elif self.backoff is Backoff.LINEAR:
            base = self.initial_delay * attempt
        else:
            base = self.initial_delay * (2 ** (attempt - 1))
        base = min(base, self.max_delay)
        # Full jitter (AWS architecture blog): spreads retries of many steps apart.
        return rng.uniform(0, base) if self.jitter else base

    def merged(self, overrides: Mapping[str, Any]) -> RetryPolicy:
        """This policy with the fields a step sets replaced."""
        return retry_policy_from({**self.as_dict(), **overrides})

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "backoff": self.backoff.value,
            "initial_delay": self.initial_delay,
            "max_delay": self.max_delay,
            "jitter": self.jitter,
            "retry_on": sorted(self.retry_on),
            "continue_on_failure": self.continue_on_failure,
            "parallel_failure_threshold": self.parallel_failure_threshold,
        }


def retry_policy_from(data: Mapping[str, Any]) -> RetryPolicy:
    """RetryPolicy from a schema-valid mapping (missing fields take the defaults)."""
    d = RetryPolicy()
    return RetryPolicy(
        max_attempts=int(data.get("max_attempts", d.max_attempts)),
        backoff=Backoff(data.get("backoff", d.backoff.value)),
        initial_delay=float(data.get("initial_delay", d.initial_delay)),
        max_delay=float(data.get("max_delay", d.max_delay)),
        jitter=bool(data.get("jitter", d.jitter)),
        retry_on=frozenset(data.get("retry_on", d.retry_on)),
        continue_on_failure=bool(data.get("continue_on_failure", d.continue_on_failure)),
        parallel_failure_threshold=float(
            data.get("parallel_failure_threshold", d.parallel_failure_threshold)
        ),
    )


@dataclass(frozen=True)
class CircuitBreakerPolicy:
    failure_threshold: int = 5
    reset_timeout: float = 30.0


@dataclass(frozen=True)
class SlaTargets:
    max_duration: float | None = None
    min_success_rate: float | None = None
    step_max_duration: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Agent:
    name: str
    capabilities: frozenset[str]
    action: str | None = None
    with_: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    max_concurrency: int = 1
    description: str = ""


@dataclass(frozen=True)
class Branch:
    when: Expression | None
    next_steps: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True)
class Step:
    step_id: str
    name: str
    step_type: StepType
    action: str | None
    with_: CompiledValue
    agent_capability: str | None
    timeout: float | None
    when: Expression | None
    trigger_rule: TriggerRule
    dependencies: tuple[str, ...]  # after desugaring next_steps and branch targets
    input_mapping: Mapping[str, Expression]
    input_validation: Mapping[str, Any] | bool | None
    output_mapping: Mapping[str, Expression]
    retry_policy: RetryPolicy
    error_handlers: tuple[str, ...]
    rollback_actions: tuple[str, ...]
    conditions: tuple[Branch, ...]
    parallel_steps: tuple[Step, ...]
    loop_condition: Expression | None
    loop_max_iterations: int
    loop_delay: float
    for_each: Expression | tuple[Any, ...] | None
    loop_concurrency: int
    metrics_enabled: bool
    custom_metrics: Mapping[str, Expression]
    container: str | None
    line: int
    raw_with: Mapping[str, Any]

    @property
    def is_container(self) -> bool:
        return self.step_type is StepType.PARALLEL


@dataclass(frozen=True)
class Workflow:
    workflow_id: str
    name: str
    description: str
    version: str
    tags: tuple[str, ...]
    created_by: str | None
    inputs: Mapping[str, Any]
    global_variables: Mapping[str, Any]
    secrets: Mapping[str, str]
    timeout: float
    max_parallel_steps: int
    retry_policy: RetryPolicy
    circuit_breaker: CircuitBreakerPolicy
    sla_targets: SlaTargets
    agents: tuple[Agent, ...]
    steps: tuple[Step, ...]  # top level, in file order
    all_steps: Mapping[str, Step]  # every step, nested ones included
    handlers: frozenset[str]  # steps that run only from error_handlers/rollback_actions
    source_file: str
    sha256: str

    def children(self, container: str | None) -> tuple[Step, ...]:
        """The steps of one level: top level (None) or a parallel step's children."""
        if container is None:
            return self.steps
        return self.all_steps[container].parallel_steps

    @property
    def secret_inputs(self) -> frozenset[str]:
        return frozenset(
            name
            for name, schema in self.inputs.items()
            if isinstance(schema, Mapping) and schema.get("secret") is True
        )


def build_workflow(doc: LoadedDocument) -> Workflow:
    """Engine objects from a document that passed validation; expressions compiled once."""
    from wfctl.expressions import compile_expression, compile_value

    data = doc.data
    base_retry = retry_policy_from(data.get("retry_policy", {}))
    handlers = frozenset(
        ref
        for step in _walk(data["steps"])
        for key in ("error_handlers", "rollback_actions")
        for ref in step.get(key, [])
    ) | frozenset(  # steps that react tools name run only as tools
        tool["step"]
        for step in _walk(data["steps"])
        if step.get("step_type") == "react"
        for tool in step.get("with", {}).get("tools", [])
        if "step" in tool
    )

    # next_steps and branch targets are sugar for dependencies of the named steps.
    extra_deps: dict[str, list[str]] = {}
    for step in _walk(data["steps"]):
        targets = list(step.get("next_steps", []))
        for branch in step.get("conditions", []):
            targets.extend(branch.get("next_steps", []))
        for target in targets:
            deps = extra_deps.setdefault(target, [])
            if step["step_id"] not in deps:
                deps.append(step["step_id"])

    all_steps: dict[str, Step] = {}

    def build(raw: Mapping[str, Any], path: tuple[Any, ...], container: str | None) -> Step:
        step_id = raw["step_id"]
        children = tuple(
            build(child, (*path, "parallel_steps", i), step_id)
            for i, child in enumerate(raw.get("parallel_steps", []))
        )
        deps = list(raw.get("dependencies", []))
        deps.extend(d for d in extra_deps.get(step_id, []) if d not in deps)
        for_each = raw.get("for_each")
        step = Step(
            step_id=step_id,
            name=raw.get("name", step_id),
            step_type=StepType(raw.get("step_type", "action")),
            action=raw.get("action"),
            with_=compile_value(raw.get("with", {})),
            agent_capability=raw.get("agent_capability"),
            timeout=float(raw["timeout"]) if "timeout" in raw else None,
            when=compile_expression(raw["when"]) if "when" in raw else None,
            trigger_rule=TriggerRule(raw.get("trigger_rule", "all_success")),
            dependencies=tuple(deps),
            input_mapping=_exprs(raw.get("input_mapping", {})),
            input_validation=raw.get("input_validation"),
            output_mapping=_exprs(raw.get("output_mapping", {})),
            retry_policy=base_retry.merged(raw.get("retry_policy", {})),
            error_handlers=tuple(raw.get("error_handlers", [])),
            rollback_actions=tuple(raw.get("rollback_actions", [])),
            conditions=tuple(
                Branch(
                    when=compile_expression(b["when"]) if "when" in b else None,
                    next_steps=tuple(b["next_steps"]),
                    name=b.get("name"),
                )
                for b in raw.get("conditions", [])
            ),
            parallel_steps=children,
            loop_condition=(
                compile_expression(raw["loop_condition"]) if "loop_condition" in raw else None
            ),
            loop_max_iterations=int(raw.get("loop_max_iterations", 100)),
            loop_delay=float(raw.get("loop_delay", 0)),
            for_each=(
                compile_expression(for_each)
                if isinstance(for_each, str)
                else tuple(for_each)
                if isinstance(for_each, list)
                else None
            ),
            loop_concurrency=int(raw.get("loop_concurrency", 1)),
            metrics_enabled=bool(raw.get("metrics_enabled", True)),
            custom_metrics=_exprs(raw.get("custom_metrics", {})),
            container=container,
            line=doc.source_map.value_pos(path)[0],
            raw_with=MappingProxyType(dict(raw.get("with", {}))),
        )
        all_steps[step_id] = step
        return step

    top = tuple(build(raw, ("steps", i), None) for i, raw in enumerate(data["steps"]))
    cb = data.get("circuit_breaker", {})
    sla = data.get("sla_targets", {})
    return Workflow(
        workflow_id=data["workflow_id"],
        name=data["name"],
        description=data.get("description", ""),
        version=str(data.get("version", "1.0")),
        tags=tuple(data.get("tags", [])),
        created_by=data.get("created_by"),
        inputs=MappingProxyType(dict(data.get("inputs", {}))),
        global_variables=MappingProxyType(dict(data.get("global_variables", {}))),
        secrets=MappingProxyType(dict(data.get("secrets", {}))),
        timeout=float(data.get("timeout", 3600)),
        max_parallel_steps=int(data.get("max_parallel_steps", 10)),
        retry_policy=base_retry,
        circuit_breaker=CircuitBreakerPolicy(
            failure_threshold=int(cb.get("failure_threshold", 5)),
            reset_timeout=float(cb.get("reset_timeout", 30)),
        ),
        sla_targets=SlaTargets(
            max_duration=sla.get("max_duration"),
            min_success_rate=sla.get("min_success_rate"),
            step_max_duration=MappingProxyType(dict(sla.get("step_max_duration", {}))),
        ),
        agents=tuple(
            Agent(
                name=a["name"],
                capabilities=frozenset(a["capabilities"]),
                action=a.get("action"),
                with_=MappingProxyType(dict(a.get("with", {}))),
                model=a.get("model"),
                max_concurrency=int(a.get("max_concurrency", 1)),
                description=a.get("description", ""),
            )
            for a in data.get("agents", [])
        ),
        steps=top,
        all_steps=MappingProxyType(all_steps),
        handlers=handlers,
        source_file=doc.file,
        sha256=hashlib.sha256(doc.text.encode("utf-8")).hexdigest(),
    )


def _exprs(mapping: Mapping[str, str]) -> Mapping[str, Expression]:
    from wfctl.expressions import compile_expression

    return MappingProxyType({k: compile_expression(v) for k, v in mapping.items()})


def _walk(steps: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for step in steps:
        out.append(step)
        out.extend(_walk(step.get("parallel_steps", [])))
    return out
