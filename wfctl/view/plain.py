"""One plain, timestamped line per state change: for CI logs and pipes (no control codes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from wfctl.events import (
    CircuitChanged,
    Event,
    HandlerRan,
    RunFinished,
    RunStarted,
    StepOutputLine,
    StepStateChanged,
)
from wfctl.format.printable import without_colours
from wfctl.model import StepStatus
from wfctl.report.tail import TAIL_LINES, OutputTails, tail_block

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
    """Event subscriber writing lines like `12:00:01.250 ✔ build completed in 1.2s`.

    A failed step's line is followed by the last `tail` lines of its stdout and stderr
    (of the attempt that failed; 0: none), so a CI log shows why it failed.
    """

    def __init__(self, out: IO[str], quiet: bool = False, tail: int = TAIL_LINES) -> None:
        self.out = out
        self.quiet = quiet
        self._tails = OutputTails(tail) if tail > 0 else None

    def __call__(self, event: Event) -> None:
        if type(event) is StepOutputLine:
            if self._tails is not None:
                self._tails.line(event.step_id, event.line, event.stream)
            return
        line = self.format(event)
        tail = self._tail_of(event) if self._tails is not None else None
        if line is not None:
            # Names and errors may carry escape sequences (a workflow's, a step's): colours
            # are dropped, anything else is shown escaped, never passed on to a log.
            self.out.write(f"{_stamp(event.ts)} {without_colours(line)}\n")
            if tail:
                self.out.writelines(f"{t}\n" for t in tail)
            self.out.flush()

    def _tail_of(self, event: Event) -> list[str] | None:
        """The tail block to show after `event`'s line, if it ends a failed attempt."""
        assert self._tails is not None
        if not isinstance(event, StepStateChanged):
            return None
        if event.status is StepStatus.RUNNING:
            self._tails.restart(event.step_id)  # show the attempt that fails, alone
        elif event.status is StepStatus.FAILED:
            kept = self._tails.steps.pop(event.step_id, None)
            return tail_block(event.step_id, kept.to_json()) if kept else None
        elif event.status.terminal:
            self._tails.restart(event.step_id)  # nothing to show: free it
        return None

    def format(self, event: Event) -> str | None:
        """The line for `event` (without its time stamp), or None for no line."""
        match event:
            case StepStateChanged():
                return self._step(event)
            case RunStarted():
                if self.quiet:
                    return None
                n = len(event.step_ids)
                return f"run {event.run_id} started: {event.workflow_name} ({n} steps)"
            case CircuitChanged():
                return f"circuit breaker {event.target} {event.state.replace('_', '-')}"
            case HandlerRan():
                what = "rollback" if event.purpose == "rollback" else "error handler"
                tail = f": {event.error}" if event.error else ""
                return f"{what} {event.step_id} for {event.for_step} {event.status.value}{tail}"
            case RunFinished():
                tail = f": {event.error}" if event.error else ""
                return f"run {event.status.value} in {event.duration:.2f}s{tail}"
        return None  # retries show as the step's `retrying` line; output lines not at all

    def _step(self, e: StepStateChanged) -> str | None:
        s = e.status
        if self.quiet and s not in _QUIET_SHOWN:
            return None
        line = _STEP_LINES.get(s)  # a step back to pending has no line
        return None if line is None else f"{_GLYPHS[s]} {e.step_id} {line(e)}"


def _running(e: StepStateChanged) -> str:
    if e.iteration is not None:
        # A loop counts attempts over all its iterations: say which round it is.
        attempt = f" (iteration {e.iteration + 1})"
    elif e.max_attempts > 1 and e.attempt >= 1:
        # A container has no attempts of its own (0): its children's lines count them.
        attempt = f" (attempt {e.attempt}/{e.max_attempts})"
    else:
        attempt = ""
    agent = f" on agent {e.agent}" if e.agent else ""
    return f"running{attempt}{agent}"


def _completed(e: StepStateChanged) -> str:
    if e.reason:  # a cached step: "completed (cached from run <id>)"
        return f"completed ({e.reason})"
    return "completed" + (f" in {e.duration:.2f}s" if e.duration is not None else "")


def _next_attempt(e: StepStateChanged) -> str:
    at = e.next_attempt_at
    if at is None:
        return ""
    # A day or more away, the time of day alone would read as a retry right now.
    day = time.strftime("%Y-%m-%d ", time.localtime(at)) if at - e.ts >= 86400 else ""
    return f", next attempt at {day}{_stamp(at)}"


def _retrying(e: StepStateChanged) -> str:
    when = _next_attempt(e)
    return f"retrying after attempt {e.attempt}/{e.max_attempts}: {e.error}{when}"


_QUIET_SHOWN = frozenset({StepStatus.FAILED, StepStatus.WAITING})
# The text after `<glyph> <step id> ` for each status of a step.
_STEP_LINES: dict[StepStatus, Callable[[StepStateChanged], str]] = {
    StepStatus.RUNNING: _running,
    StepStatus.COMPLETED: _completed,
    StepStatus.FAILED: lambda e: f"failed: {e.error}",
    StepStatus.RETRYING: _retrying,
    StepStatus.SKIPPED: lambda e: f"skipped: {e.reason}",
    StepStatus.WAITING: lambda e: f"waiting: {e.reason}",
}


def failure_tails(report: Mapping[str, Any]) -> Iterator[str]:
    """For the end summary: each failed step's `output_tail`, controls removed (the
    report keeps the lines as they were written)."""
    for step_id, step in report["steps"].items():
        tail = step.get("output_tail")
        if step["status"] == "failed" and tail:
            yield from tail_block(step_id, tail)
