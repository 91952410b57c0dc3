"""Mutable run-time records of steps, the immutable result of a run, and approval
decisions (data the engine, the state, the views and the CLI share)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from wfctl.model import StepStatus, WorkflowState

#: Why a step was skipped, by the start of its `reason` (so a journal replay, which keeps
#: the reason, gives the same answer): `steps.<id>.skip_reason`.
_SKIP_KINDS: Final = (
    ("when is false", "when"),
    ("depends is false", "depends"),
    ("upstream failed", "upstream_failed"),
    ("no upstream step succeeded", "upstream_failed"),
    ("upstream skipped", "upstream_skipped"),
    ("branch not taken", "not_chosen"),
    ("run failed", "run_failed"),
    ("not started", "not_started"),
    ("handler not invoked", "not_invoked"),
)
#: Error kinds after which a step counts as `errored` (it could not run properly) in
#: `depends`, rather than as having run and failed.
ERRORED_KINDS: Final = frozenset({"validation", "deadlock", "circuit_open"})


def skip_kind(reason: str | None) -> str | None:
    """The kind of a skip (`when`, `depends`, `upstream_failed`, `upstream_skipped`,
    `not_chosen`, `run_failed`, `not_started`, `not_invoked`) from its reason text."""
    if reason is None:
        return None
    return next((kind for prefix, kind in _SKIP_KINDS if reason.startswith(prefix)), "other")


def result_of(status: StepStatus, error_kind: str | None) -> str | None:
    """A terminal step's result: succeeded, failed, errored, timed_out, cancelled or skipped
    (None while it has not ended)."""
    match status:
        case StepStatus.COMPLETED:
            return "succeeded"
        case StepStatus.SKIPPED:
            return "skipped"
        case StepStatus.FAILED if error_kind == "timeout":
            return "timed_out"
        case StepStatus.FAILED if error_kind == "cancelled":
            return "cancelled"
        case StepStatus.FAILED if error_kind in ERRORED_KINDS:
            return "errored"
        case StepStatus.FAILED:
            return "failed"
    return None


def status_flags(record: StepRecord) -> dict[str, Any]:
    """What a `depends` expression sees for one step (see wfctl.validate._depends)."""
    result = result_of(record.status, record.error_kind)
    failed = record.status is StepStatus.FAILED
    return {
        "succeeded": result == "succeeded",
        "failed": failed,  # any failure: errored, timed_out and cancelled narrow it
        "errored": result == "errored",
        "timed_out": result == "timed_out",
        "cancelled": result == "cancelled",
        "skipped": result == "skipped",
        "done": result is not None,
        "status": record.status.value,
        "error_kind": record.error_kind if failed else None,
        "skip_reason": skip_kind(record.reason) if result == "skipped" else None,
    }


class ErrorInfo(str):
    """`steps.<id>.error` and a handler's `error`: the message (a string, as before), with
    `kind`, `message`, `exit_code` (a shell step's) and `status` (an HTTP step's)."""

    # (No __slots__: a str subclass cannot have them.)
    kind: str | None
    exit_code: int | None
    status: int | None
    step_id: str | None

    @property
    def message(self) -> str:
        return str.__str__(self)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (for `workflow.failures` and handler contexts)."""
        return {
            "step_id": self.step_id,
            "kind": self.kind,
            "message": self.message,
            "exit_code": self.exit_code,
            "status": self.status,
        }


def error_info(
    message: str, kind: str | None, output: Any, step_id: str | None = None
) -> ErrorInfo:
    """An :class:`ErrorInfo` from a failure's message, kind and partial output."""
    info = ErrorInfo(message)
    info.kind = kind
    info.step_id = step_id
    out = output if isinstance(output, dict) else {}
    info.exit_code = _int_or_none(out.get("exit_code"))
    info.status = _int_or_none(out.get("status"))
    return info


def _files_of(output: Any) -> Any:
    """A step's declared file outputs (`steps.<id>.outputs`), None without any."""
    return output.get("files") if isinstance(output, dict) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(slots=True)
class Attempt:
    number: int
    started_at: float
    ended_at: float | None = None
    error: str | None = None
    error_kind: str | None = None
    node: str | None = None  # where it ran (the Ray node id; None: this process)
    worker: str | None = None  # "ip pid worker-id" of the Ray worker


@dataclass
class StepRecord:
    """What happened to one step; the scheduler is its only writer."""

    step_id: str
    status: StepStatus = StepStatus.PENDING
    attempts: list[Attempt] = field(default_factory=list)
    output: Any = None
    error: str | None = None
    error_kind: str | None = None
    reason: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    slot_wait: float = 0.0
    agent: str | None = None
    agent_reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    handler_runs: list[dict[str, Any]] = field(default_factory=list)
    # Failed, then un-failed by an error handler with `recover: true`: the failure.
    recovered: dict[str, Any] | None = None

    @property
    def cached(self) -> bool:
        """Its output came from the step cache (the reason journaled says so)."""
        return self.reason is not None and self.reason.startswith("cached")

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def view(self) -> dict[str, Any]:
        """What expressions see as `steps.<id>`."""
        error = self.error
        return {
            "output": self.output,
            "status": self.status.value,
            "attempts": len(self.attempts),
            "error": (
                error_info(error, self.error_kind, self.output, self.step_id)
                if error is not None
                else None
            ),
            "result": result_of(self.status, self.error_kind),
            "skip_reason": skip_kind(self.reason) if self.status is StepStatus.SKIPPED else None,
            "recovered": self.recovered is not None,
            "outputs": _files_of(self.output),
        }


@dataclass(frozen=True)
class RunResult:
    """The outcome of `run_workflow`."""

    run_id: str
    workflow_id: str
    status: WorkflowState
    steps: dict[str, StepRecord]
    vars: dict[str, Any]
    started_at: float
    ended_at: float
    error: str | None = None
    waiting_for: tuple[str, ...] = ()
    rollbacks: tuple[dict[str, Any], ...] = ()
    # The run's artifacts directory (WFCTL_ARTIFACTS); None when no step asked for one
    # (a run without a state store makes it only then).
    artifacts_dir: Path | None = None

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at

    @property
    def exit_code(self) -> int:
        """The documented exit code for this outcome."""
        return {
            WorkflowState.COMPLETED: 0,
            WorkflowState.FAILED: 1,
            WorkflowState.TIMEOUT: 3,
            WorkflowState.WAITING_APPROVAL: 4,
            WorkflowState.CANCELLED: 130,
            WorkflowState.RUNNING: 70,
        }[self.status]


@dataclass(frozen=True)
class ApprovalDecision:
    """Approve or reject a waiting `human_approval` step."""

    approved: bool
    by: str = "unknown"
    comment: str = ""


@dataclass(frozen=True)
class ApprovalRequest:
    """What an approval handler is asked about one waiting step."""

    run_id: str
    step_id: str
    message: str
    approvers: tuple[str, ...]
    timeout: float | None
    on_timeout: str


#: Asked when a run reaches an approval step; None leaves the step waiting.
ApprovalHandler = Callable[[ApprovalRequest], Awaitable[ApprovalDecision | None]]
