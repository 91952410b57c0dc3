"""Run metrics and SLA evaluation (the seed's MetricsCollector and AlertManager, made real)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from wfctl.events import (
    CircuitChanged,
    Event,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepStateChanged,
)
from wfctl.model import SlaTargets, StepStatus

# The statuses of steps that ran to an end: the success rate counts these.
_RAN = frozenset({StepStatus.COMPLETED, StepStatus.FAILED})


@dataclass(frozen=True)
class SlaBreach:
    target: str  # "max_duration" | "min_success_rate" | "step_max_duration"
    message: str
    ts: float
    step_id: str | None = None
    limit: float | None = None
    actual: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "step_id": self.step_id,
            "limit": self.limit,
            "actual": self.actual,
            "message": self.message,
            "at": self.ts,
        }


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class MetricsCollector:
    """Subscribes to the event stream; evaluates SLA targets as events arrive."""

    sla: SlaTargets
    on_breach: Callable[[SlaBreach], None] | None = None
    started: float | None = None
    retries: int = 0
    circuit_trips: int = 0
    breaches: list[SlaBreach] = field(default_factory=list)
    _running_since: dict[str, float] = field(default_factory=dict)
    _breached: set[tuple[str, str | None]] = field(default_factory=set)

    def __call__(self, event: Event) -> None:
        # The most frequent event first: this runs for every event of a run.
        match event:
            case StepStateChanged():
                self._step_state(event)
                self.check_time(event.ts)
            case RunStarted():
                self.started = event.ts
            case RetryScheduled():
                self.retries += 1
            case CircuitChanged(state="open"):
                self.circuit_trips += 1
            case RunFinished():
                self.check_time(event.ts)

    def _step_state(self, event: StepStateChanged) -> None:
        if event.status is StepStatus.RUNNING:
            self._running_since.setdefault(event.step_id, event.ts)
        elif event.status.terminal and event.duration is not None:
            self._running_since.pop(event.step_id, None)
            limit = self.sla.step_max_duration.get(event.step_id)
            if limit is not None and event.duration > limit:
                self._breach(
                    "step_max_duration",
                    f"step {event.step_id} took {event.duration:.2f}s (SLA {limit:g}s)",
                    event.ts,
                    event.step_id,
                    limit,
                    event.duration,
                )

    def check_time(self, ts: float | None = None) -> None:
        """Check the time targets now: on every event, and from a ticker while steps run."""
        ts = ts or time.time()
        for step_id, since in list(self._running_since.items()):
            step_limit = self.sla.step_max_duration.get(step_id)
            if step_limit is not None and ts - since > step_limit:
                self._breach(
                    "step_max_duration",
                    f"step {step_id} has been running for {ts - since:.2f}s (SLA {step_limit:g}s)",
                    ts,
                    step_id,
                    step_limit,
                    ts - since,
                )
        limit = self.sla.max_duration
        if limit is not None and self.started is not None and ts - self.started > limit:
            self._breach(
                "max_duration",
                f"run has taken longer than its SLA of {limit:g}s",
                ts,
                None,
                limit,
                ts - self.started,
            )

    def finish(self, success_rate: float, ts: float) -> None:
        limit = self.sla.min_success_rate
        if limit is not None and success_rate + 1e-9 < limit:
            self._breach(
                "min_success_rate",
                f"success rate {success_rate:.0%} is below the SLA of {limit:.0%}",
                ts,
                None,
                limit,
                success_rate,
            )

    def _breach(
        self,
        target: str,
        message: str,
        ts: float,
        step_id: str | None,
        limit: float | None,
        actual: float | None,
    ) -> None:
        key = (target, step_id)
        if key in self._breached:
            return
        self._breached.add(key)
        breach = SlaBreach(target, message, ts, step_id, limit, actual)
        self.breaches.append(breach)
        if self.on_breach is not None:
            self.on_breach(breach)


def _status_counts(records: Iterable[Any]) -> dict[str, int]:
    counts: dict[str, int] = {s.value: 0 for s in StepStatus}
    for r in records:
        counts[r.status.value] += 1
    return counts


def _success_rate(records: Iterable[Any]) -> float:
    """Completed among the steps that ran to an end (1.0 when none did)."""
    finished = [r.status for r in records if r.status in _RAN]
    if not finished:
        return 1.0
    return sum(1 for s in finished if s is StepStatus.COMPLETED) / len(finished)


def _durations(durations: list[float]) -> dict[str, Any]:
    return {
        "step_duration_p50": percentile(durations, 50),
        "step_duration_p95": percentile(durations, 95),
        "step_duration_mean": statistics.fmean(durations) if durations else None,
    }


def summarize(records: dict[str, Any], retries: int, trips: int) -> dict[str, Any]:
    """Run-level metrics from the step records."""
    steps = records.values()
    durations = [r.duration for r in steps if r.duration is not None]
    return {
        "steps_total": len(records),
        "status_counts": _status_counts(steps),
        "success_rate": _success_rate(steps),
        "attempts_total": sum(len(r.attempts) for r in steps),
        "retries": retries,
        "circuit_breaker_trips": trips,
        **_durations(durations),
        "slot_wait_total": sum(r.slot_wait for r in steps),
        "running_total": sum(durations),
        "custom": {k: r.metrics for k, r in records.items() if r.metrics},
    }
