"""The workflow: its settings, agents and steps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wfctl.model.policies import CircuitBreakerPolicy, RetryPolicy, SlaTargets
from wfctl.model.steps import Step

__all__ = ["Agent", "Workflow"]


@dataclass(frozen=True)
class Agent:
    name: str
    capabilities: frozenset[str]
    action: str | None = None
    with_: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    max_concurrency: int = 1
    description: str = ""
    resources: Mapping[str, float] = field(default_factory=dict)  # Ray, per attempt


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
    handlers: frozenset[str]  # steps that run only when invoked (handlers, rollbacks, tools)
    source_file: str
    sha256: str
    on_sla_breach: tuple[str, ...] = ()  # handler steps run when an SLA target is missed
    executor: str = "local"  # where attempts run: local | ray (wfctl.engine.backends)
    #: Steps inside group loop bodies: run per iteration under iteration ids
    #: (:mod:`wfctl.model.scopes`), never under their own.
    templates: frozenset[str] = frozenset()
    on_exit: tuple[Step, ...] = ()  # run after everything else, whatever the outcome

    def missing_secrets(self, env: Mapping[str, str]) -> list[str]:
        """The environment variables of the workflow's secrets that `env` lacks."""
        return [var for var in self.secrets.values() if var not in env]

    def children(self, container: str | None) -> tuple[Step, ...]:
        """The steps of one level: top level (None) or a container step's children."""
        if container is None:
            return self.steps
        return self.all_steps[container].children

    @property
    def secret_inputs(self) -> frozenset[str]:
        return frozenset(
            name
            for name, schema in self.inputs.items()
            if isinstance(schema, Mapping) and schema.get("secret") is True
        )
