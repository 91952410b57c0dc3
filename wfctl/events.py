"""The one typed event stream of a run; the live view, journal, metrics and report subscribe.

Events are read-only by contract, not `frozen`: a frozen dataclass costs ~3x to build, and
a run builds two per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from wfctl.model import StepStatus, WorkflowState


def now() -> float:
    """Wall-clock timestamp (seconds since the epoch) used in every event."""
    return time.time()


@dataclass(slots=True)
class Event:
    run_id: str
    ts: float

    @property
    def kind(self) -> str:
        return _KINDS[type(self)]

    def to_json(self) -> dict[str, Any]:
        """`kind` and the fields that are set, shallow: the journal's row (readers use .get;
        `run_id` is the row's key). Half the encoding time of every field, nulls included."""
        data: dict[str, Any] = {"kind": self.kind}
        for name in _FIELDS[type(self)]:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data


@dataclass(slots=True)
class RunStarted(Event):
    workflow_id: str
    workflow_name: str
    step_ids: tuple[str, ...]
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StepStateChanged(Event):
    step_id: str
    status: StepStatus
    attempt: int = 0
    max_attempts: int = 1
    duration: float | None = None
    error: str | None = None
    error_kind: str | None = None
    reason: str | None = None  # why skipped / waiting
    output: Any = None  # on completion (masked)
    next_attempt_at: float | None = None  # while retrying
    agent: str | None = None
    agent_reason: str | None = None  # why the router chose `agent`
    container: str | None = None
    iteration: int | None = None  # a loop's `loop.index` (0-based) while running


@dataclass(slots=True)
class StepOutputLine(Event):
    step_id: str
    line: str
    # "stderr" for a process's standard error; None for stdout and the step's own lines
    # (None is not journaled, so stdout lines cost nothing extra).
    stream: str | None = None


@dataclass(slots=True)
class RetryScheduled(Event):
    step_id: str
    attempt: int  # the attempt that failed
    delay: float
    next_attempt_at: float
    error: str


@dataclass(slots=True)
class CircuitChanged(Event):
    target: str
    state: str  # "open" | "half_open" | "closed"
    failures: int


@dataclass(slots=True)
class HandlerRan(Event):
    step_id: str  # the handler step
    for_step: str  # the step it handled or rolled back
    purpose: str  # "error_handler" | "rollback"
    status: StepStatus
    error: str | None = None
    output: Any = None


@dataclass(slots=True)
class VarsChanged(Event):
    step_id: str
    values: dict[str, Any]


@dataclass(slots=True)
class MetricRecorded(Event):
    step_id: str
    name: str
    value: Any


@dataclass(slots=True)
class AttemptPlaced(Event):
    """Where an attempt ran (a remote backend: the Ray node and worker)."""

    step_id: str
    attempt: int
    node: str
    worker: str


@dataclass(slots=True)
class RunFinished(Event):
    status: WorkflowState
    error: str | None = None
    duration: float = 0.0


_KINDS: dict[type[Event], str] = {
    RunStarted: "run_started",
    StepStateChanged: "step_state",
    StepOutputLine: "step_output",
    RetryScheduled: "retry_scheduled",
    CircuitChanged: "circuit",
    HandlerRan: "handler",
    VarsChanged: "vars",
    MetricRecorded: "metric",
    AttemptPlaced: "attempt_placed",
    RunFinished: "run_finished",
}

_FIELDS: dict[type[Event], tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls) if f.name != "run_id") for cls in _KINDS
}

Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out: subscribers run in emit order, so the journal sees an event first."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        for subscriber in self._subscribers:
            subscriber(event)
