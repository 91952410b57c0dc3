"""One plain, timestamped line per state change: for CI logs and pipes (no control codes)."""

from __future__ import annotations

import time
from typing import IO

from wfctl.events import (
    CircuitChanged,
    Event,
    HandlerRan,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepStateChanged,
)
from wfctl.model import StepStatus

_GLYPHS = {
    StepStatus.PENDING: "·",
    StepStatus.WAITING: "⏸",
    StepStatus.RUNNING: "▶",
    StepStatus.RETRYING: "↻",
    StepStatus.COMPLETED: "✔",
    StepStatus.FAILED: "✘",
    StepStatus.SKIPPED: "⤼",
}


def _stamp(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts % 1 * 1000):03d}"


class PlainLog:
    """Event subscriber writing lines like `12:00:01.250 ✔ build completed in 1.2s`."""

    def __init__(self, out: IO[str], quiet: bool = False) -> None:
        self.out = out
        self.quiet = quiet

    def __call__(self, event: Event) -> None:
        line = self.format(event)
        if line is not None:
            self.out.write(f"{_stamp(event.ts)} {line}\n")
            self.out.flush()

    def format(self, event: Event) -> str | None:
        if isinstance(event, RunStarted):
            if self.quiet:
                return None
            return (
                f"run {event.run_id} started: {event.workflow_name} ({len(event.step_ids)} steps)"
            )
        if isinstance(event, StepStateChanged):
            return self._step(event)
        if isinstance(event, RetryScheduled):
            return None
        if isinstance(event, CircuitChanged):
            return f"circuit breaker {event.target} {event.state.replace('_', '-')}"
        if isinstance(event, HandlerRan):
            what = "rollback" if event.purpose == "rollback" else "error handler"
            tail = f": {event.error}" if event.error else ""
            return f"{what} {event.step_id} for {event.for_step} {event.status.value}{tail}"
        if isinstance(event, RunFinished):
            tail = f": {event.error}" if event.error else ""
            return f"run {event.status.value} in {event.duration:.2f}s{tail}"
        return None

    def _step(self, e: StepStateChanged) -> str | None:
        s = e.status
        if self.quiet and s not in (StepStatus.FAILED, StepStatus.WAITING):
            return None
        glyph = _GLYPHS[s]
        name = e.step_id
        if s is StepStatus.RUNNING:
            if e.iteration is not None:
                # A loop counts attempts over all its iterations: say which round it is.
                attempt = f" (iteration {e.iteration + 1})"
            elif e.max_attempts > 1:
                attempt = f" (attempt {e.attempt}/{e.max_attempts})"
            else:
                attempt = ""
            agent = f" on agent {e.agent}" if e.agent else ""
            return f"{glyph} {name} running{attempt}{agent}"
        if s is StepStatus.COMPLETED:
            took = f" in {e.duration:.2f}s" if e.duration is not None else ""
            return f"{glyph} {name} completed{took}"
        if s is StepStatus.FAILED:
            return f"{glyph} {name} failed: {e.error}"
        if s is StepStatus.RETRYING:
            when = ""
            if e.next_attempt_at is not None:
                when = f", next attempt at {_stamp(e.next_attempt_at)}"
            tries = f"{e.attempt}/{e.max_attempts}"
            return f"{glyph} {name} retrying after attempt {tries}: {e.error}{when}"
        if s is StepStatus.SKIPPED:
            return f"{glyph} {name} skipped: {e.reason}"
        if s is StepStatus.WAITING:
            return f"{glyph} {name} waiting: {e.reason}"
        return None
