"""OpenTelemetry traces of a run: a span for the run, one per step (under its container's
span, if any) and one per attempt, exported over OTLP/HTTP (protobuf).

The exporter is configured by the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`..._TRACES_ENDPOINT`, `..._HEADERS`, `..._TIMEOUT`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`); a `TRACEPARENT` variable (W3C trace context, as CI systems
and `otel-cli` set it) makes the run span a child of the caller's span. Span times are the
events' own timestamps, so the trace shows the run as it happened, not as it was exported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from wfctl import __version__
from wfctl.events import (
    CircuitChanged,
    Event,
    HandlerRan,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepStateChanged,
)
from wfctl.model import StepStatus, WorkflowState
from wfctl.secrets import Masker

if TYPE_CHECKING:
    from opentelemetry.context import Context

__all__ = ["TraceExporter"]

# How each end state of a step or run shows as a span status.
_STEP_CODES = {StepStatus.COMPLETED: StatusCode.OK, StepStatus.FAILED: StatusCode.ERROR}
_RUN_CODES = {
    WorkflowState.COMPLETED: StatusCode.OK,
    WorkflowState.FAILED: StatusCode.ERROR,
    WorkflowState.TIMEOUT: StatusCode.ERROR,
    WorkflowState.CANCELLED: StatusCode.ERROR,
}


def _ns(ts: float) -> int:
    return int(ts * 1e9)


def _resource(env: Mapping[str, str]) -> Resource:
    """The SDK's resource from the environment; service.name `wfctl` unless it names one."""
    named = "OTEL_SERVICE_NAME" in env or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    own: dict[str, Any] = {"service.version": __version__}
    if not named:
        own["service.name"] = "wfctl"
    return Resource.create(own)


def _attributes(event: StepStateChanged) -> dict[str, Any]:
    """The attributes a step event adds to its spans (only those that are set)."""
    values = {
        "wfctl.step.status": event.status.value,
        "wfctl.attempt": event.attempt or None,
        "wfctl.max_attempts": event.max_attempts,
        "wfctl.agent": event.agent,
        "wfctl.agent.reason": event.agent_reason,
        "wfctl.container": event.container,
        "wfctl.iteration": event.iteration,
        "wfctl.skipped_reason": event.reason,
        "wfctl.duration": event.duration,
    }
    return {k: v for k, v in values.items() if v is not None}


class TraceExporter:
    """Event subscriber that turns a run's events into spans and exports them at its end."""

    def __init__(
        self,
        masker: Masker | None = None,
        env: Mapping[str, str] | None = None,
        exporter: Any = None,
    ) -> None:
        env = os.environ if env is None else env
        self.masker = masker or Masker()
        self.provider = TracerProvider(resource=_resource(env))
        # Batched, in the SDK's own thread: no network round trip on the engine's loop.
        self.provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("wfctl", __version__)
        self.parent = self._caller_context(env)
        self.run: Span | None = None
        self.steps: dict[str, Span] = {}
        self.attempts: dict[str, Span] = {}
        self.closed = False

    @staticmethod
    def _caller_context(env: Mapping[str, str]) -> Context | None:
        carrier = {"traceparent": env.get("TRACEPARENT", "")}
        if env.get("TRACESTATE"):
            carrier["tracestate"] = env["TRACESTATE"]
        if not carrier["traceparent"]:
            return None
        return TraceContextTextMapPropagator().extract(carrier)

    def __call__(self, event: Event) -> None:
        match event:
            case StepStateChanged():
                self._step(event)
            case RetryScheduled():
                self._retry(event)
            case RunStarted():
                self._start_run(event)
            case CircuitChanged() | HandlerRan():
                self._note(event)
            case RunFinished():
                self._finish_run(event)

    def _start_run(self, event: RunStarted) -> None:
        self.run = self.tracer.start_span(
            f"run {event.workflow_id}",
            context=self.parent,
            kind=trace.SpanKind.INTERNAL,
            attributes={
                "wfctl.run_id": event.run_id,
                "wfctl.workflow_id": event.workflow_id,
                "wfctl.workflow_name": event.workflow_name,
                "wfctl.steps": len(event.step_ids),
            },
            start_time=_ns(event.ts),
        )

    def _context_for(self, event: StepStateChanged) -> Context | None:
        """A step's parent: its container's span while that is open, else the run's."""
        parent = self.steps.get(event.container or "") or self.run
        return None if parent is None else trace.set_span_in_context(parent)

    def _step_span(self, event: StepStateChanged) -> Span:
        span = self.steps.get(event.step_id)
        if span is None:
            span = self.tracer.start_span(
                f"step {event.step_id}",
                context=self._context_for(event),
                attributes={"wfctl.step_id": event.step_id},
                start_time=_ns(event.ts),
            )
            self.steps[event.step_id] = span
        return span

    def _step(self, event: StepStateChanged) -> None:
        match event.status:
            case StepStatus.RUNNING:
                self._start_attempt(event)
            case StepStatus.RETRYING:
                self._end_attempt(event, StatusCode.ERROR)
            case StepStatus.WAITING:
                self._step_span(event).set_attributes(_attributes(event))
            case status if status.terminal:
                self._end_step(event)

    def _start_attempt(self, event: StepStateChanged) -> None:
        step = self._step_span(event)
        if event.step_id in self.attempts:
            return  # a loop's next iteration, within the same attempt
        attempt = self.tracer.start_span(
            f"{event.step_id} attempt {event.attempt or 1}",
            context=trace.set_span_in_context(step),
            attributes=_attributes(event),
            start_time=_ns(event.ts),
        )
        self.attempts[event.step_id] = attempt

    def _end_attempt(self, event: StepStateChanged, code: StatusCode) -> None:
        span = self.attempts.pop(event.step_id, None)
        if span is None:
            return
        attrs = _attributes(event)
        if event.error_kind is not None:
            attrs["error.type"] = event.error_kind
        if event.next_attempt_at is not None:
            attrs["wfctl.retry.next_attempt_at"] = event.next_attempt_at
        span.set_attributes(attrs)
        error = self.masker.mask(event.error) if event.error else None
        span.set_status(Status(code, error if code is StatusCode.ERROR else None))
        span.end(end_time=_ns(event.ts))

    def _end_step(self, event: StepStateChanged) -> None:
        code = _STEP_CODES.get(event.status, StatusCode.UNSET)
        self._end_attempt(event, code)
        span = self._step_span(event)  # a skipped step gets a span of its own too
        del self.steps[event.step_id]
        attrs = _attributes(event)
        if event.error_kind is not None:
            attrs["error.type"] = event.error_kind
        span.set_attributes(attrs)
        error = self.masker.mask(event.error) if event.error else None
        span.set_status(Status(code, error if code is StatusCode.ERROR else None))
        span.end(end_time=_ns(event.ts))

    def _retry(self, event: RetryScheduled) -> None:
        step = self.steps.get(event.step_id)
        if step is not None:
            step.add_event(
                "retry_scheduled",
                {
                    "wfctl.attempt": event.attempt,
                    "wfctl.retry.delay": event.delay,
                    "wfctl.retry.error": self.masker.mask(event.error),
                },
                timestamp=_ns(event.ts),
            )
            step.set_attribute("wfctl.retried", True)

    def _note(self, event: CircuitChanged | HandlerRan) -> None:
        """Circuit changes and handler runs as events on the run span."""
        if self.run is None:
            return
        attrs = {k: str(v) for k, v in event.to_json().items() if k not in ("kind", "ts", "output")}
        self.run.add_event(event.kind, self.masker.mask_data(attrs), timestamp=_ns(event.ts))

    def _finish_run(self, event: RunFinished) -> None:
        end = _ns(event.ts)
        for span in [*self.attempts.values(), *reversed(self.steps.values())]:
            span.end(end_time=end)  # still open: waiting for approval, or cut short
        self.attempts.clear()
        self.steps.clear()
        if self.run is not None:
            code = _RUN_CODES.get(event.status, StatusCode.UNSET)
            error = self.masker.mask(event.error) if event.error else None
            self.run.set_attribute("wfctl.run.status", event.status.value)
            self.run.set_attribute("wfctl.run.duration", event.duration)
            self.run.set_status(Status(code, error if code is StatusCode.ERROR else None))
            self.run.end(end_time=end)
            self.run = None
        self.close()

    def close(self) -> None:
        """Export what is left and stop the exporter's thread (idempotent)."""
        if not self.closed:
            self.closed = True
            self.provider.shutdown()
