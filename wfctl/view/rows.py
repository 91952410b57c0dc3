"""Table rows as plain data and their rendering: shared by the live table and `wfctl report`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NotRequired, TypedDict

from rich.cells import cell_len, set_cell_size
from rich.text import Text

from wfctl.format.printable import printable

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

_STATUS_WIDTH = 9  # "completed", the longest status word
_ATTEMPT_WIDTH = 5
_TIME_WIDTH = 7
_MAX_NAME_WIDTH = 40
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


#: Everything on a row but the step id and the detail: glyph, gaps, status, try, time.
_FIXED_WIDTH = 2 + 2 + _STATUS_WIDTH + 1 + _ATTEMPT_WIDTH + 1 + _TIME_WIDTH + 2
_MIN_NAME_WIDTH = 6
_MIN_DETAIL_WIDTH = 8


def fit_name_width(width: int, name_width: int) -> int:
    """The step column for a `width`-column terminal: narrowed (ids cut with an ellipsis)
    before the status, time or detail columns are pushed off a narrow screen."""
    room = width - _FIXED_WIDTH - _MIN_DETAIL_WIDTH
    return max(_MIN_NAME_WIDTH, min(name_width, room))


def _cell(text: str, width: int, *, right: bool = False) -> str:
    if cell_len(text) > width:
        return set_cell_size(text[: max(0, width - 1)], width - 1) + "…"
    pad = " " * (width - cell_len(text))
    return pad + text if right else text + pad


def column_header(width: int, name_width: int) -> Text:
    """The dim column titles above the rows, aligned with `render_rows`."""
    name_width = fit_name_width(width, name_width)
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


_DETAIL_STYLES: Mapping[str, str] = {"failed": "red", "waiting": "yellow", "retrying": "yellow"}


def _tries(row: RowDict) -> tuple[str, str]:
    """The try column's text and style: `2/3`, `#2` (max unknown) or a loop's round `↻2`."""
    attempt = row.get("attempt", 0)
    max_attempts = row.get("max_attempts")
    iteration = row.get("iteration")
    tries = ""
    if iteration is not None:
        # A loop counts attempts over all its rounds; its round says more.
        tries = f"↻{iteration}"
        attempt = 1
    elif max_attempts is None:
        tries = f"#{attempt}" if attempt > 1 else ""
    elif attempt >= 1 and (max_attempts > 1 or attempt > 1):
        tries = f"{attempt}/{max_attempts}"
    return tries, "yellow" if attempt > 1 else "dim"


def _append_detail(line: Text, row: RowDict, status: str) -> None:
    """`retry in 2.0s`, the detail, and the handler notes, each after a dot."""
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


def _render_row(row: RowDict, width: int, name_width: int, spinner: str | None) -> Text:
    status = row["status"]
    style = STYLES.get(status, "")
    depth = row.get("depth", 0)
    glyph = spinner if spinner is not None and status == "running" else GLYPHS.get(status, "?")
    line = Text(no_wrap=True, overflow="ellipsis", end="\n")
    line.append(glyph, style=style)
    line.append(" ")
    step_id = printable(row["step_id"])  # from the workflow: no raw escape sequences
    line.append(_cell("  " * depth + step_id, name_width), style="" if depth else "bold")
    line.append("  ")
    line.append(_cell(status, _STATUS_WIDTH), style=style)
    line.append(" ")
    tries, tries_style = _tries(row)
    line.append(_cell(tries, _ATTEMPT_WIDTH, right=True), style=tries_style)
    line.append(" ")
    duration = row.get("duration")
    took = fmt_duration(duration) if duration is not None else ""
    line.append(_cell(took, _TIME_WIDTH, right=True), style="cyan" if status == "running" else "")
    line.append("  ")
    _append_detail(line, row, status)
    line.rstrip()
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
    name_width = fit_name_width(width, name_width)
    return [_render_row(row, width, name_width, spinner) for row in rows]


def progress_bar(finished: int, total: int, width: int) -> Text:
    """A bar that reads without colour too: heavy for done, light for to do."""
    filled = round(width * finished / total) if total else width
    bar = Text(no_wrap=True, end="")
    bar.append("━" * filled, style="green")
    bar.append("─" * (width - filled), style="dim")
    return bar
