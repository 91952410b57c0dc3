"""The live table of a run on a terminal (issue #4).

Events only update small per-step records under a lock; Rich's refresh thread builds the
frame (`LiveTable.__rich_console__`) at `refresh_per_second`, so a burst of events costs
dictionary writes, not renders. Rows are rendered by `wfctl.view.rows`, shared with
`wfctl report`; which rows fit is `wfctl.view._board`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import IO

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.text import Text

from wfctl.events import (
    CircuitChanged,
    Event,
    HandlerRan,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepOutputLine,
    StepStateChanged,
)
from wfctl.format.printable import printable
from wfctl.model import Step, StepStatus, Workflow
from wfctl.view._board import RowBoard
from wfctl.view._select import Row
from wfctl.view.rows import (
    COUNT_ORDER,
    GLYPHS,
    RUN_STYLES,
    STYLES,
    clean_line,
    column_header,
    fmt_duration,
    name_width_for,
    progress_bar,
    render_rows,
)

_FINISHED = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED})
_SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # Rich's "dots"; drawn by hand since rows are plain Text
_SPINNER_INTERVAL = 0.08
_MAX_BREAKER_LINES = 3
_BREAKER_STYLES: Mapping[str, str] = {"closed": "dim", "half_open": "bold yellow"}


def _tree_order(workflow: Workflow) -> list[tuple[Step, int]]:
    """Every step with its depth: parents before their children, in file order."""
    out: list[tuple[Step, int]] = []

    def walk(steps: Iterable[Step], depth: int) -> None:
        for step in steps:
            out.append((step, depth))
            walk(step.children, depth + 1)

    walk(workflow.steps, 0)
    return out


class LiveTable:
    """Event subscriber that keeps a live table of step statuses on a terminal.

    `max_rows` caps the lines below the column titles (summary lines included); by default
    they are what the terminal height leaves after the header. `console` is for tests.
    """

    def __init__(
        self,
        workflow: Workflow,
        out: IO[str],
        *,
        refresh_per_second: float = 8,
        max_rows: int | None = None,
        console: Console | None = None,
    ) -> None:
        self.workflow = workflow
        self.console = console or Console(file=out, no_color=bool(os.environ.get("NO_COLOR")))
        self.refresh_per_second = refresh_per_second
        self.max_rows = max_rows
        self.alerts: list[str] = []
        self.run_id: str | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.run_status: str | None = None
        self.run_error: str | None = None
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._seq = 0
        self._circuits: dict[str, tuple[str, int]] = {}
        self._counts: dict[StepStatus, int] = dict.fromkeys(StepStatus, 0)
        self._board = RowBoard()
        self._by_id: dict[str, Row] = {}
        handles: dict[str, list[str]] = {}
        for step in workflow.all_steps.values():
            for h in step.error_handlers:
                handles.setdefault(h, []).append(f"error handler for {step.step_id}")
            for h in step.rollback_actions:
                handles.setdefault(h, []).append(f"rollback for {step.step_id}")
        for step, depth in _tree_order(workflow):
            row = self._add_row(step.step_id, depth, step.retry_policy.max_attempts)
            if step.step_id in workflow.handlers:
                self._board.mark_idle(row)
                row.detail_for_idle = ", ".join(handles.get(step.step_id, ["handler"]))
                self._counts[StepStatus.PENDING] -= 1
        self._name_width = name_width_for(
            [
                {"step_id": r.step_id, "status": "pending", "depth": r.depth}
                for r in self._board.rows
            ]
        )

    def _add_row(self, step_id: str, depth: int, max_attempts: int) -> Row:
        row = Row(step_id, len(self._board.rows), depth, max_attempts)
        self._board.add(row)
        self._by_id[step_id] = row
        self._counts[StepStatus.PENDING] += 1
        return row

    # -- events (the engine's thread; keep O(1)) ------------------------------
    def __call__(self, event: Event) -> None:
        with self._lock:
            match event:
                case StepStateChanged():
                    self._step_state(event)
                case StepOutputLine():
                    self._output_line(event)
                case RetryScheduled():
                    row = self._row(event.step_id)
                    row.next_attempt_at = event.next_attempt_at
                    row.error = clean_line(event.error, last=False)
                case CircuitChanged():
                    self._circuits[event.target] = (event.state, event.failures)
                case HandlerRan():
                    self._handler_ran(event)
                case RunStarted():
                    self._run_started(event)
                case RunFinished():
                    self.finished_at = event.ts
                    self.run_status = event.status.value
                    self.run_error = event.error

    def _output_line(self, event: StepOutputLine) -> None:
        line = clean_line(event.line, last=True)
        if line:
            self._row(event.step_id).last_line = line

    def _run_started(self, event: RunStarted) -> None:
        self.run_id = event.run_id
        self.started_at = event.ts
        for step_id in event.step_ids:
            if step_id not in self._by_id:
                self._add_row(step_id, 0, 1)

    def _row(self, step_id: str, container: str | None = None) -> Row:
        row = self._by_id.get(step_id)
        if row is not None:
            return row
        # An iteration of a group loop (`each[2]`, `each[2].fetch`: made as the run goes),
        # nested under its container's row; or a step the workflow does not list (should
        # not happen): shown rather than failing.
        parent = self._by_id.get(container) if container is not None else None
        row = self._add_row(step_id, parent.depth + 1 if parent is not None else 0, 1)
        self._name_width = max(self._name_width, name_width_for([row.as_dict(0.0)]))
        return row

    def _step_state(self, e: StepStateChanged) -> None:
        row = self._row(e.step_id, e.container)
        old, was_idle = row.status, row.idle_handler
        if row.idle_handler:
            row.idle_handler = False
        else:
            self._counts[row.status] -= 1
        self._counts[e.status] += 1
        row.status = e.status
        row.attempt = e.attempt
        row.max_attempts = e.max_attempts
        row.agent = e.agent
        if e.status is StepStatus.RUNNING:
            if row.started_at is None:
                row.started_at = e.ts
            row.next_attempt_at = None
            row.iteration = None if e.iteration is None else e.iteration + 1
        elif e.status is StepStatus.RETRYING and e.next_attempt_at is not None:
            row.next_attempt_at = e.next_attempt_at
        if e.error:
            row.error = clean_line(e.error, last=False)
        if e.reason:
            row.reason = clean_line(e.reason, last=False)
        if e.status in _FINISHED:
            self._finished(row, e)
        self._board.moved(row, old, was_idle)

    def _finished(self, row: Row, e: StepStateChanged) -> None:
        self._seq += 1
        row.finished_seq = self._seq
        if e.duration is not None:
            row.duration = e.duration
        elif row.started_at is not None:
            row.duration = e.ts - row.started_at

    def _handler_ran(self, e: HandlerRan) -> None:
        what = "rollback" if e.purpose == "rollback" else "handler"
        mark = GLYPHS.get(e.status.value, "?")
        self._row(e.for_step).notes.append(f"{what} {e.step_id} {mark}")
        self._row(e.step_id).notes.append(f"{what} for {e.for_step}")

    # -- display ----------------------------------------------------------------
    def start(self) -> None:
        self._live = Live(
            self,
            console=self.console,
            refresh_per_second=self.refresh_per_second,
            transient=False,
        )
        self._live.start()

    def stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            # Live.stop() draws the final frame; clearing _live first makes that frame show ▶
            # for any step still running instead of a frozen spinner.
            live.stop()

    def pause(self) -> None:
        """Stop redrawing (the last frame stays) so a prompt can use the terminal."""
        self.stop()

    def resume(self) -> None:
        """Redraw again after a prompt."""
        if self._live is None:
            self.start()

    def alert(self, message: str) -> None:
        self.alerts.append(message)
        target = self._live.console if self._live is not None else self.console
        target.print(Text(f"SLA ALERT: {message}", style="bold red", no_wrap=True))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.render(options.max_width, options.size.height)

    def render(self, width: int, height: int) -> Group:
        """The whole frame: header, column titles and as many rows as `height` allows."""
        now = time.time()
        with self._lock:
            header = self._header(width, now)
            budget = self.max_rows if self.max_rows is not None else height - len(header) - 1
            shown, done_line, pending_line = self._board.select(max(3, budget))
            rows = [r.as_dict(now) for r in shown]
        spinner = None
        if self._live is not None and self.finished_at is None:
            frame = int(time.monotonic() / _SPINNER_INTERVAL) % len(_SPINNER_FRAMES)
            spinner = _SPINNER_FRAMES[frame]
        lines = [*header, column_header(width, self._name_width)]
        if done_line is not None:
            done_line.truncate(width, overflow="ellipsis")
            lines.append(done_line)
        lines.extend(render_rows(rows, width, name_width=self._name_width, spinner=spinner))
        if pending_line is not None:
            pending_line.truncate(width, overflow="ellipsis")
            lines.append(pending_line)
        return Group(*lines)

    def _header(self, width: int, now: float) -> list[Text]:
        lines = [*self._title(now, width), self._counts_line(), self._progress(width)]
        if self.run_error:
            lines.append(Text(clean_line(self.run_error, last=False), style="red", end="\n"))
        lines.extend(self._breaker_lines())
        for line in lines:
            line.truncate(width, overflow="ellipsis")
        return lines

    def _title(self, now: float, width: int) -> list[Text]:
        """The title line; the run id on a line of its own when both do not fit (it is
        what `resume` and `show` take: never cut)."""
        title = self._title_line(now, with_run_id=True)
        if self.run_id is None or title.cell_len <= width:
            return [title]
        own = Text(f"run {self.run_id}", style="dim", no_wrap=True, end="\n")
        return [self._title_line(now, with_run_id=False), own]

    def _title_line(self, now: float, with_run_id: bool) -> Text:
        title = Text(no_wrap=True, overflow="ellipsis", end="\n")
        title.append(printable(self.workflow.name), style="bold")
        if with_run_id and self.run_id is not None:
            title.append(f"  run {self.run_id}", style="dim")
        if self.started_at is None:
            title.append("  starting…", style="dim")
        else:
            end = self.finished_at if self.finished_at is not None else now
            title.append(f"  {fmt_duration(end - self.started_at)}")
            status = self.run_status or "running"
            title.append(f"  {status}", style=RUN_STYLES.get(status, ""))
        if self.alerts:
            n = len(self.alerts)
            title.append(f"  ⚠ {n} SLA alert{'s' if n > 1 else ''}", style="bold red")
        return title

    def _counts_line(self) -> Text:
        counts = Text(no_wrap=True, overflow="ellipsis", end="\n")
        for key in COUNT_ORDER:
            n = self._counts[StepStatus(key)]
            if n:
                if counts:
                    counts.append("  ")
                counts.append(f"{GLYPHS[key]} {n} {key}", style=STYLES[key])
        return counts

    def _progress(self, width: int) -> Text:
        c = self._counts
        total = sum(c.values())
        finished = sum(c[s] for s in _FINISHED)
        progress = Text(no_wrap=True, overflow="ellipsis", end="\n")
        progress.append_text(progress_bar(finished, total, max(10, min(40, width - 20))))
        percent = f" ({100 * finished // total}%)" if total else ""
        progress.append(f" {finished}/{total} done{percent}")
        return progress

    def _breaker_lines(self) -> list[Text]:
        breakers = list(self._circuits.items())
        lines = []
        for target, (state, failures) in breakers[:_MAX_BREAKER_LINES]:
            style = _BREAKER_STYLES.get(state, "bold red")
            line = Text(no_wrap=True, overflow="ellipsis", end="\n")
            line.append(f"breaker {target} {state.replace('_', '-')}", style=style)
            line.append(f" ({failures} failures)", style="dim")
            lines.append(line)
        if len(breakers) > _MAX_BREAKER_LINES:
            more = len(breakers) - _MAX_BREAKER_LINES
            lines.append(Text(f"… {more} more breakers", style="dim", end="\n"))
        return lines
