"""The live table of a run on a terminal (issue #4), and the row rendering the report view shares.

Events only update small per-step records under a lock; Rich's refresh thread builds the
frame (`LiveTable.__rich_console__`) at `refresh_per_second`, so a burst of events costs
dictionary writes, not renders.
"""

from __future__ import annotations

import heapq
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, NotRequired, TypedDict

from rich.cells import cell_len, set_cell_size
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
from wfctl.model import Step, StepStatus, Workflow

GLYPHS: Mapping[str, str] = {
    "pending": "·",
    "waiting": "⏸",
    "running": "▶",
    "retrying": "↻",
    "completed": "✔",
    "failed": "✘",
    "skipped": "⤼",
}
STYLES: Mapping[str, str] = {
    "pending": "dim",
    "waiting": "yellow",
    "running": "cyan",
    "retrying": "yellow",
    "completed": "green",
    "failed": "red",
    "skipped": "dim",
}
RUN_STYLES: Mapping[str, str] = {
    "running": "cyan",
    "completed": "bold green",
    "failed": "bold red",
    "timeout": "bold red",
    "cancelled": "bold yellow",
    "waiting_approval": "bold yellow",
}
# Order of the counts in the header: what needs attention first.
COUNT_ORDER = (
    "failed",
    "running",
    "retrying",
    "waiting",
    "completed",
    "skipped",
    "pending",
)

_ACTIVE = frozenset(
    {StepStatus.RUNNING, StepStatus.RETRYING, StepStatus.WAITING, StepStatus.FAILED}
)
_DONE = frozenset({StepStatus.COMPLETED, StepStatus.SKIPPED})
_FINISHED = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED})
_SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # Rich's "dots"; drawn by hand since rows are plain Text
_SPINNER_INTERVAL = 0.08
_STATUS_WIDTH = 9  # "completed", the longest status word
_ATTEMPT_WIDTH = 5
_TIME_WIDTH = 7
_MAX_NAME_WIDTH = 40
_MAX_BREAKER_LINES = 3
_BREAKER_STYLES: Mapping[str, str] = {"closed": "dim", "half_open": "bold yellow"}
# Output of a step is arbitrary bytes from a subprocess: escape sequences or tabs in it
# would move the cursor and corrupt the frame, so they are stripped when the line arrives.
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|[\x00-\x1f\x7f]")
_MAX_KEPT = 400  # characters kept of an output line / error; the frame is never wider


class RowDict(TypedDict):
    """One table row as plain data: built from events (live) or from a saved report."""

    step_id: str
    status: str  # a StepStatus value
    depth: NotRequired[int]
    attempt: NotRequired[int]
    max_attempts: NotRequired[int | None]  # None: unknown (a saved report)
    duration: NotRequired[float | None]
    retry_in: NotRequired[float | None]  # seconds until the next attempt, while retrying
    iteration: NotRequired[int | None]  # a loop's current (or last) round, 1-based
    detail: NotRequired[str | None]  # last output line, error, skip or wait reason
    notes: NotRequired[list[str]]  # handler / rollback runs


def clean_line(text: str, *, last: bool) -> str:
    """One printable line of `text` (its last or first non-empty line), control codes removed."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[-1] if last else lines[0]
    return _CONTROL.sub("", line[: _MAX_KEPT * 2].replace("\t", "    ")).strip()[:_MAX_KEPT]


def fmt_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        m, s = divmod(int(seconds), 60)
        return f"{m}m{s:02d}s"
    h, rest = divmod(int(seconds), 3600)
    return f"{h}h{rest // 60:02d}m"


def name_width_for(rows: Iterable[RowDict]) -> int:
    """Width of the step column that fits every (indented) id, capped so details keep room."""
    widest = max((2 * r.get("depth", 0) + cell_len(r["step_id"]) for r in rows), default=4)
    return max(4, min(widest, _MAX_NAME_WIDTH))


def _cell(text: str, width: int, *, right: bool = False) -> str:
    if cell_len(text) > width:
        return set_cell_size(text[: max(0, width - 1)], width - 1) + "…"
    pad = " " * (width - cell_len(text))
    return pad + text if right else text + pad


def column_header(width: int, name_width: int) -> Text:
    """The dim column titles above the rows, aligned with `render_rows`."""
    text = (
        "  "
        + _cell("step", name_width)
        + "  "
        + _cell("status", _STATUS_WIDTH)
        + " "
        + _cell("try", _ATTEMPT_WIDTH, right=True)
        + " "
        + _cell("time", _TIME_WIDTH, right=True)
        + "  detail"
    )
    line = Text(text, style="dim", no_wrap=True, overflow="ellipsis", end="\n")
    line.truncate(width, overflow="ellipsis")
    return line


def render_rows(
    rows: Sequence[RowDict],
    width: int,
    *,
    name_width: int | None = None,
    spinner: str | None = None,
) -> list[Text]:
    """One line per row: glyph, indented id, status, attempt, duration, detail and notes.

    Lines are cut to `width` with an ellipsis rather than wrapped, so a frame's height is the
    number of rows. `spinner` replaces the ▶ of running rows (the live view animates it).
    """
    if name_width is None:
        name_width = name_width_for(rows)
    lines: list[Text] = []
    for row in rows:
        status = row["status"]
        style = STYLES.get(status, "")
        depth = row.get("depth", 0)
        glyph = spinner if spinner is not None and status == "running" else GLYPHS.get(status, "?")
        line = Text(no_wrap=True, overflow="ellipsis", end="\n")
        line.append(glyph, style=style)
        line.append(" ")
        name = _cell("  " * depth + row["step_id"], name_width)
        line.append(name, style="" if depth else "bold")
        line.append("  ")
        line.append(_cell(status, _STATUS_WIDTH), style=style)
        line.append(" ")
        attempt = row.get("attempt", 0)
        max_attempts = row.get("max_attempts")
        tries = ""
        iteration = row.get("iteration")
        if iteration is not None:
            # A loop counts attempts over all its rounds; its round says more.
            tries = f"↻{iteration}"
            attempt = 1
        elif max_attempts is None:
            tries = f"#{attempt}" if attempt > 1 else ""
        elif attempt >= 1 and (max_attempts > 1 or attempt > 1):
            tries = f"{attempt}/{max_attempts}"
        tries_style = "yellow" if attempt > 1 else "dim"
        line.append(_cell(tries, _ATTEMPT_WIDTH, right=True), style=tries_style)
        line.append(" ")
        duration = row.get("duration")
        took = fmt_duration(duration) if duration is not None else ""
        took_style = "cyan" if status == "running" else ""
        line.append(_cell(took, _TIME_WIDTH, right=True), style=took_style)
        line.append("  ")
        retry_in = row.get("retry_in")
        if retry_in is not None:
            line.append(f"retry in {fmt_duration(retry_in)}", style="yellow")
        detail = row.get("detail")
        if detail:
            if retry_in is not None:
                line.append(" · ", style="dim")
            line.append(detail, style=_DETAIL_STYLES.get(status, "dim"))
        for note in row.get("notes", ()):
            line.append(" · ", style="dim")
            line.append(note, style="magenta")
        line.rstrip()
        line.truncate(width, overflow="ellipsis")
        lines.append(line)
    return lines


_DETAIL_STYLES: Mapping[str, str] = {"failed": "red", "waiting": "yellow", "retrying": "yellow"}


def progress_bar(finished: int, total: int, width: int) -> Text:
    """A bar that reads without colour too: heavy for done, light for to do."""
    filled = round(width * finished / total) if total else width
    bar = Text(no_wrap=True, end="")
    bar.append("━" * filled, style="green")
    bar.append("─" * (width - filled), style="dim")
    return bar


class _Row:
    """What the table knows of one step; written by the event thread, read by the renderer."""

    __slots__ = (
        "agent",
        "attempt",
        "depth",
        "detail_for_idle",
        "duration",
        "error",
        "finished_seq",
        "idle_handler",
        "index",
        "iteration",
        "last_line",
        "max_attempts",
        "next_attempt_at",
        "notes",
        "reason",
        "started_at",
        "status",
        "step_id",
    )

    def __init__(self, step_id: str, index: int, depth: int, max_attempts: int) -> None:
        self.step_id = step_id
        self.index = index
        self.depth = depth
        self.status = StepStatus.PENDING
        self.attempt = 0
        self.iteration: int | None = None
        self.max_attempts = max_attempts
        self.started_at: float | None = None
        self.duration: float | None = None
        self.next_attempt_at: float | None = None
        self.last_line: str | None = None
        self.error: str | None = None
        self.reason: str | None = None
        self.agent: str | None = None
        self.notes: list[str] = []
        self.finished_seq = 0
        # Handler steps run only on failure or rollback: until they do, they are not part
        # of the run's progress (a successful run would otherwise never reach 100%).
        self.idle_handler = False
        self.detail_for_idle: str | None = None

    def as_dict(self, now: float) -> RowDict:
        status = self.status
        if self.started_at is not None and status in (StepStatus.RUNNING, StepStatus.RETRYING):
            duration: float | None = now - self.started_at
        else:
            duration = self.duration
        retry_in = None
        if status is StepStatus.RETRYING and self.next_attempt_at is not None:
            retry_in = max(0.0, self.next_attempt_at - now)
        if status is StepStatus.FAILED or status is StepStatus.RETRYING:
            detail = self.error
        elif status is StepStatus.SKIPPED or status is StepStatus.WAITING:
            detail = self.reason
        elif status is StepStatus.PENDING:
            detail = self.detail_for_idle if self.idle_handler else None
        else:
            detail = self.last_line
            if self.agent and status is StepStatus.RUNNING and not detail:
                detail = f"on agent {self.agent}"
        return {
            "step_id": self.step_id,
            "status": status.value,
            "depth": self.depth,
            "attempt": self.attempt,
            "iteration": self.iteration,
            "max_attempts": self.max_attempts,
            "duration": duration,
            "retry_in": retry_in,
            "detail": detail,
            "notes": list(self.notes),
        }


def _tree_order(workflow: Workflow) -> list[tuple[Step, int]]:
    """Every step with its depth: parents before their children, in file order."""
    out: list[tuple[Step, int]] = []

    def walk(steps: Iterable[Step], depth: int) -> None:
        for step in steps:
            out.append((step, depth))
            walk(step.parallel_steps, depth + 1)

    walk(workflow.steps, 0)
    return out


def select_rows(rows: Sequence[_Row], budget: int) -> tuple[list[_Row], Text | None, Text | None]:
    """Which rows fit in `budget` lines: (rows in order, hidden-finished line, hidden-pending line).

    Running, retrying, waiting and failed rows always show (unless they alone overflow);
    pending rows come next, in workflow order; finished rows take what space is left, the
    most recently finished first, and the rest fold into one summary line.
    """
    if len(rows) <= budget:
        return list(rows), None, None
    active = [r for r in rows if r.status in _ACTIVE]
    pending = [r for r in rows if r.status is StepStatus.PENDING and not r.idle_handler]
    done = [r for r in rows if r.status in _DONE or _is_idle(r)]

    if len(active) > budget - 2:
        # Too many to show at all: keep what fits and say how many more there are.
        keep = max(0, budget - 2)
        shown = active[:keep]
        more = Text(f"… {len(active) - keep} more running/failed", style="bold", end="\n")
        hidden = len(rows) - len(active)
        return shown, _hidden_line(done, pending, hidden_pending=True) if hidden else None, more

    room = budget - len(active) - (1 if done else 0)
    if len(pending) <= room:
        shown_pending = pending
        room -= len(pending)
    else:
        shown_pending = pending[: max(0, room - 1)]
        room = 0
    if done and len(done) <= room + 1:
        shown_done, hidden_done = done, []
    else:
        shown_done = heapq.nlargest(room, done, key=lambda r: r.finished_seq) if room else []
        kept = {id(r) for r in shown_done}
        hidden_done = [r for r in done if id(r) not in kept]
    chosen = {id(r) for r in active} | {id(r) for r in shown_pending} | {id(r) for r in shown_done}
    shown = [r for r in rows if id(r) in chosen]
    done_line = _hidden_line(hidden_done, [], hidden_pending=False) if hidden_done else None
    left = len(pending) - len(shown_pending)
    pending_line = Text(f"… {left} pending", style="dim", end="\n") if left else None
    return shown, done_line, pending_line


def _is_idle(r: _Row) -> bool:
    return r.idle_handler and r.status is StepStatus.PENDING


def _hidden_line(done: Sequence[_Row], pending: Sequence[_Row], *, hidden_pending: bool) -> Text:
    counts: dict[str, int] = {"completed": 0, "skipped": 0, "idle handlers": 0}
    for r in done:
        key = "idle handlers" if _is_idle(r) else r.status.value
        counts[key] = counts.get(key, 0) + 1
    if hidden_pending and pending:
        counts["pending"] = len(pending)
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    return Text(f"… {', '.join(parts)} hidden", style="dim", end="\n")


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
        self._rows: list[_Row] = []
        self._by_id: dict[str, _Row] = {}
        handles: dict[str, list[str]] = {}
        for step in workflow.all_steps.values():
            for h in step.error_handlers:
                handles.setdefault(h, []).append(f"error handler for {step.step_id}")
            for h in step.rollback_actions:
                handles.setdefault(h, []).append(f"rollback for {step.step_id}")
        for step, depth in _tree_order(workflow):
            row = self._add_row(step.step_id, depth, step.retry_policy.max_attempts)
            if step.step_id in workflow.handlers:
                row.idle_handler = True
                row.detail_for_idle = ", ".join(handles.get(step.step_id, ["handler"]))
                self._counts[StepStatus.PENDING] -= 1
        self._name_width = name_width_for(
            [{"step_id": r.step_id, "status": "pending", "depth": r.depth} for r in self._rows]
        )

    def _add_row(self, step_id: str, depth: int, max_attempts: int) -> _Row:
        row = _Row(step_id, len(self._rows), depth, max_attempts)
        self._rows.append(row)
        self._by_id[step_id] = row
        self._counts[StepStatus.PENDING] += 1
        return row

    # -- events (the engine's thread; keep O(1)) ------------------------------
    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, StepStateChanged):
                self._step_state(event)
            elif isinstance(event, StepOutputLine):
                row = self._row(event.step_id)
                line = clean_line(event.line, last=True)
                if line:
                    row.last_line = line
            elif isinstance(event, RetryScheduled):
                row = self._row(event.step_id)
                row.next_attempt_at = event.next_attempt_at
                row.error = clean_line(event.error, last=False)
            elif isinstance(event, CircuitChanged):
                self._circuits[event.target] = (event.state, event.failures)
            elif isinstance(event, HandlerRan):
                self._handler_ran(event)
            elif isinstance(event, RunStarted):
                self.run_id = event.run_id
                self.started_at = event.ts
                for step_id in event.step_ids:
                    if step_id not in self._by_id:
                        self._add_row(step_id, 0, 1)
            elif isinstance(event, RunFinished):
                self.finished_at = event.ts
                self.run_status = event.status.value
                self.run_error = event.error

    def _row(self, step_id: str) -> _Row:
        row = self._by_id.get(step_id)
        # A step the workflow does not list (should not happen): show it rather than fail.
        return row if row is not None else self._add_row(step_id, 0, 1)

    def _step_state(self, e: StepStateChanged) -> None:
        row = self._row(e.step_id)
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
            shown, done_line, pending_line = select_rows(self._rows, max(3, budget))
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
        title = Text(no_wrap=True, overflow="ellipsis", end="\n")
        title.append(self.workflow.name, style="bold")
        if self.run_id is not None:
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

        c = self._counts
        total = sum(c.values())
        finished = c[StepStatus.COMPLETED] + c[StepStatus.FAILED] + c[StepStatus.SKIPPED]
        counts = Text(no_wrap=True, overflow="ellipsis", end="\n")
        for key in COUNT_ORDER:
            n = c[StepStatus(key)]
            if n:
                if counts:
                    counts.append("  ")
                counts.append(f"{GLYPHS[key]} {n} {key}", style=STYLES[key])
        progress = Text(no_wrap=True, overflow="ellipsis", end="\n")
        progress.append_text(progress_bar(finished, total, max(10, min(40, width - 20))))
        percent = f" ({100 * finished // total}%)" if total else ""
        progress.append(f" {finished}/{total} done{percent}")

        lines = [title, counts, progress]
        if self.run_error:
            lines.append(Text(clean_line(self.run_error, last=False), style="red", end="\n"))
        breakers = list(self._circuits.items())
        for target, (state, failures) in breakers[:_MAX_BREAKER_LINES]:
            style = _BREAKER_STYLES.get(state, "bold red")
            line = Text(no_wrap=True, overflow="ellipsis", end="\n")
            line.append(f"breaker {target} {state.replace('_', '-')}", style=style)
            line.append(f" ({failures} failures)", style="dim")
            lines.append(line)
        if len(breakers) > _MAX_BREAKER_LINES:
            more = len(breakers) - _MAX_BREAKER_LINES
            lines.append(Text(f"… {more} more breakers", style="dim", end="\n"))
        for line in lines:
            line.truncate(width, overflow="ellipsis")
        return lines
