"""Steps: the fields every step has, and one typed body per step type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from wfctl.model.enums import StepType, TriggerRule
from wfctl.model.policies import RetryPolicy

if TYPE_CHECKING:
    from wfctl.expressions import CompiledValue, Expression

__all__ = [
    "ApprovalBody",
    "Body",
    "Branch",
    "Call",
    "ConditionalBody",
    "FileOutput",
    "ForEachBody",
    "LoopBody",
    "ParallelBody",
    "ReactBody",
    "ReactTool",
    "Step",
    "StepCache",
    "SubflowBody",
]


@dataclass(frozen=True)
class Call:
    """What an action step runs (and a loop runs per round): an action or a capability."""

    action: str | None  # None: routed to an agent by `agent_capability`
    with_: CompiledValue
    agent_capability: str | None = None


@dataclass(frozen=True)
class FileOutput:
    """A file a step writes, read when it succeeds (`outputs:`)."""

    path: CompiledValue  # a template
    max_bytes: int
    format: str  # "text" | "json"


@dataclass(frozen=True)
class StepCache:
    """`cache:`: reuse a completed run's output when the rendered key and the step's
    definition (`definition`, a hash of its normalised YAML) match a recorded entry."""

    key: CompiledValue  # a template
    ttl: float | None  # seconds; None: no expiry
    definition: str


@dataclass(frozen=True)
class Branch:
    when: Expression | None  # None: the `else` branch
    next_steps: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True)
class ParallelBody:
    """Children run at once, each a step of the container's own graph, at most
    `max_parallel` at a time (None: only the run's `max_parallel_steps`). `fail_fast`: a
    failed child that puts the failure threshold out of reach stops the others."""

    steps: tuple[Step, ...]
    max_parallel: int | None = None
    fail_fast: bool = False


@dataclass(frozen=True)
class ConditionalBody:
    """The first branch whose `when` holds is taken; the others' targets are skipped."""

    branches: tuple[Branch, ...]


@dataclass(frozen=True)
class LoopBody:
    """The body repeated while `condition` holds (None: once) and `until` does not,
    at most `max_iterations` times. The body is the call (single-action form) or `steps`,
    a nested graph run per iteration (group form; `call` is then None)."""

    call: Call | None
    condition: Expression | None
    max_iterations: int
    delay: float
    steps: tuple[Step, ...] = ()
    until: Expression | None = None


@dataclass(frozen=True)
class ForEachBody:
    """The body once per item (`{{ loop.item }}`), `concurrency` at a time: the call, or
    `steps` (a nested graph per item). `fail_fast`: a failed item stops the others."""

    call: Call | None
    items: Expression | tuple[Any, ...]
    concurrency: int
    max_iterations: int
    delay: float
    steps: tuple[Step, ...] = ()
    fail_fast: bool = True
    #: A `matrix:` loop: `items` are its cells, and each cell is `matrix` in context.
    matrix: bool = False
    #: Items that may fail with the step still succeeding: a count, or a fraction of the
    #: items (`tolerated_failures: "10%"` -> 0.1).
    tolerated: int | float = 0

    def tolerance(self, items: int) -> int:
        """How many of `items` may fail."""
        if isinstance(self.tolerated, float):
            return int(self.tolerated * items + 1e-9)
        return self.tolerated


@dataclass(frozen=True)
class ApprovalBody:
    """Wait for a person. `with_` is rendered when asked (message, approvers, on_timeout);
    `approvers` is the list as written, for `wfctl approve` outside a run."""

    with_: CompiledValue
    approvers: tuple[str, ...]


@dataclass(frozen=True)
class ReactTool:
    """One tool a react step's model may call: an action or another step."""

    name: str
    description: str
    parameters: Mapping[str, Any] | bool
    action: str | None  # exactly one of action / step
    step: str | None
    with_: CompiledValue  # the action's arguments (templates see the call's `input`)


@dataclass(frozen=True)
class ReactBody:
    """A reason-act loop. `with_` is its whole `with:` (rendered per attempt, tools apart:
    each tool's `with` is rendered per call)."""

    with_: CompiledValue
    model: str | None  # as written, for the dry run (may be a template or None)
    tools: tuple[ReactTool, ...]
    agent_capability: str | None = None


@dataclass(frozen=True)
class SubflowBody:
    """A call of another workflow (`uses:`): its steps inlined under the call's id
    (``deploy.build``), run as a nested graph in the child's own `inputs` and `vars`."""

    uses: str  # as written
    file: str  # the child's file (as displayed; the calling file for `#name`)
    with_: CompiledValue  # the call's arguments, the child's inputs
    inputs: Mapping[str, Any]  # the child's declared inputs (name -> JSON Schema)
    variables: Mapping[str, Any]  # the child's global_variables, its `vars`
    outputs: Mapping[str, CompiledValue]  # the child's `outputs:`, over its steps
    steps: tuple[Step, ...]  # the child's steps (its on_exit last), ids prefixed
    #: The child's own step ids -> their inlined ids (what its expressions name).
    local_ids: Mapping[str, str] = field(default_factory=dict)
    #: Set past the depth limit of a recursive call: the call fails with this when it runs.
    too_deep: str | None = None
    #: The child's own ids of its on_exit steps (they see the child's own outcome).
    on_exit: tuple[str, ...] = ()


@cache
def _no_with() -> CompiledValue:
    """An empty compiled `with:` (parallel and conditional steps take none)."""
    from wfctl.expressions import compile_value

    return compile_value({})


Body = (
    Call | ParallelBody | ConditionalBody | LoopBody | ForEachBody | ApprovalBody | ReactBody
    | SubflowBody
)  # fmt: skip


@dataclass(frozen=True)
class Step:
    step_id: str
    name: str
    step_type: StepType
    body: Body
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
    metrics_enabled: bool
    custom_metrics: Mapping[str, Expression]
    container: str | None
    line: int
    # Ray resources per attempt (executor `ray`); read by the Ray backend only.
    resources: Mapping[str, float] = field(default_factory=dict)
    # -- results (issue 12): defaults keep every other constructor working
    depends: Expression | None = None  # over dependency statuses; replaces trigger_rule
    recover: bool = False  # as an error handler, succeeding un-fails the step it handles
    recover_output: CompiledValue | None = None  # the recovered step's output (None: ours)
    file_outputs: Mapping[str, FileOutput] | None = None  # `outputs:` (None: none declared)
    cache: StepCache | None = None  # `cache:` (None: always run)

    @property
    def call(self) -> Call | None:
        """The action call of an action step or a loop's round (None for other types)."""
        match self.body:
            case Call():
                return self.body
            case LoopBody(call=call) | ForEachBody(call=call):
                return call
        return None

    @property
    def children(self) -> tuple[Step, ...]:
        """The steps nested in this one (a parallel step's, a sub-workflow's), else ()."""
        return self.body.steps if isinstance(self.body, ParallelBody | SubflowBody) else ()

    @property
    def body_steps(self) -> tuple[Step, ...]:
        """A group loop's body (run per iteration under iteration ids), else ()."""
        return self.body.steps if isinstance(self.body, LoopBody | ForEachBody) else ()

    @property
    def action(self) -> str | None:
        """The action this step calls, if it calls one by name."""
        call = self.call
        return call.action if call is not None else None

    @property
    def agent_capability(self) -> str | None:
        """The capability an agent must have to run this step (action, loop or react)."""
        call = self.call
        if call is not None:
            return call.agent_capability
        return self.body.agent_capability if isinstance(self.body, ReactBody) else None

    @property
    def with_(self) -> CompiledValue:
        """The step's compiled `with:` (its call's, or the approval/react arguments)."""
        call = self.call
        if call is not None:
            return call.with_
        if isinstance(self.body, ApprovalBody | ReactBody):
            return self.body.with_
        return _no_with()
