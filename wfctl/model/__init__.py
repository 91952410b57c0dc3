"""Frozen engine objects built from a validated workflow document (the seed's names).

`enums` (step types and statuses), `policies` (retry, breaker, SLA), `steps` (the common
step fields and one typed body per step type), `workflow`, and `build` (document ->
model, defaults from the schema). Importing this package does not compile anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wfctl.model.enums import Backoff, StepStatus, StepType, TriggerRule, WorkflowState
from wfctl.model.policies import (
    ERROR_KINDS,
    CircuitBreakerPolicy,
    RetryPolicy,
    SlaTargets,
    retry_policy_from,
)
from wfctl.model.steps import (
    ApprovalBody,
    Body,
    Branch,
    Call,
    ConditionalBody,
    FileOutput,
    ForEachBody,
    LoopBody,
    ParallelBody,
    ReactBody,
    ReactTool,
    Step,
    SubflowBody,
)
from wfctl.model.workflow import Agent, Workflow

if TYPE_CHECKING:
    from wfctl.document.loader import LoadedDocument

__all__ = [
    "ERROR_KINDS",
    "Agent",
    "ApprovalBody",
    "Backoff",
    "Body",
    "Branch",
    "Call",
    "CircuitBreakerPolicy",
    "ConditionalBody",
    "FileOutput",
    "ForEachBody",
    "LoopBody",
    "ParallelBody",
    "ReactBody",
    "ReactTool",
    "RetryPolicy",
    "SlaTargets",
    "Step",
    "StepStatus",
    "StepType",
    "SubflowBody",
    "TriggerRule",
    "Workflow",
    "WorkflowState",
    "build_workflow",
    "retry_policy_from",
]


def build_workflow(doc: LoadedDocument) -> Workflow:
    """Engine objects from a document that passed validation; expressions compiled once."""
    from wfctl.model.build import build_workflow as build

    return build(doc)
