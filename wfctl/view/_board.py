"""Which rows fit on the screen, in time that does not grow with the workflow.

`select_rows` in `_select` says which rows a frame shows by scanning every row: 13 ms a
frame at 40,000 steps, eight frames a second, under the lock the engine's events wait on.
`RowBoard` keeps the same answer up to date as rows change state (active rows in a dict,
pending rows counted per block, finished rows in the order they finished), so a frame costs
what it shows: the active rows, one screen of pending and finished rows, a few block counts.
"""

from __future__ import annotations

from rich.text import Text

from wfctl.model import StepStatus
from wfctl.view._select import (
    _ACTIVE,
    _DONE,
    Row,
    Selection,
    fold_lines,
    hidden_line,
    overflow_lines,
)

__all__ = ["RowBoard"]

_BLOCK = 256  # rows per pending counter: a frame skips whole blocks with nothing pending


class RowBoard:
    """The rows of a live table and the indexes a frame reads; told of every state change."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self._active: dict[int, Row] = {}
        self._pending_in_block: list[int] = []
        self._pending = 0
        self._finished: list[tuple[int, Row]] = []  # (finished_seq, row), oldest first
        self._idle: list[Row] = []  # handler rows that have not run, in workflow order
        self._done_counts = {StepStatus.COMPLETED: 0, StepStatus.SKIPPED: 0}

    # -- upkeep (the engine's thread, under the table's lock) --------------------------
    def add(self, row: Row) -> None:
        """A new row, pending (or an idle handler when `row.idle_handler` is set)."""
        if row.index // _BLOCK == len(self._pending_in_block):
            self._pending_in_block.append(0)
        self.rows.append(row)
        self._enter(row)

    def mark_idle(self, row: Row) -> None:
        """`row` is a handler that has not run: it folds with the finished rows."""
        self._leave(row, row.status, idle=False)
        row.idle_handler = True
        self._enter(row)

    def moved(self, row: Row, old: StepStatus, was_idle: bool) -> None:
        """`row` changed from status `old` (idle handler or not) to its current one."""
        self._leave(row, old, was_idle)
        self._enter(row)

    def _enter(self, row: Row) -> None:
        status = row.status
        if status is StepStatus.PENDING:
            if row.idle_handler:
                self._idle.append(row)
            else:
                self._pending += 1
                self._pending_in_block[row.index // _BLOCK] += 1
        elif status in _ACTIVE:
            self._active[row.index] = row
        elif status in _DONE:
            self._done_counts[status] += 1
            self._finished.append((row.finished_seq, row))
            if len(self._finished) > 2 * len(self.rows) + 1024:
                self._compact()

    def _leave(self, row: Row, old: StepStatus, idle: bool) -> None:
        if old is StepStatus.PENDING:
            if idle:
                self._idle.remove(row)  # handlers are few, and each leaves at most once
            else:
                self._pending -= 1
                self._pending_in_block[row.index // _BLOCK] -= 1
        elif old in _ACTIVE:
            self._active.pop(row.index, None)
        elif old in _DONE:
            self._done_counts[old] -= 1  # its entry in _finished goes stale (see _recent)

    def _compact(self) -> None:
        """Drop the entries of rows that finished again since (loops finish rows often)."""
        self._finished = [
            (seq, row)
            for seq, row in self._finished
            if row.finished_seq == seq and row.status in _DONE
        ]

    # -- a frame (the renderer's thread, under the same lock) -------------------------
    def select(self, budget: int) -> Selection:
        """What `_select.select_rows(self.rows, budget)` returns, without reading every row."""
        if len(self.rows) <= budget:
            return list(self.rows), None, None
        active = [self._active[i] for i in sorted(self._active)]
        done_total = sum(self._done_counts.values()) + len(self._idle)
        if len(active) > budget - 2:
            counts = self._counts_line_parts(hidden_pending=self._pending)
            everything_active = len(self.rows) == len(active)
            return overflow_lines(active, budget, None if everything_active else counts)
        room = budget - len(active) - (1 if done_total else 0)
        if self._pending <= room:
            shown_pending, room = self._first_pending(self._pending), room - self._pending
        else:
            shown_pending, room = self._first_pending(max(0, room - 1)), 0
        if done_total and done_total <= room + 1:
            shown_done, hidden = self._recent(done_total), {}
        else:
            shown_done = self._recent(room) if room else []
            hidden = self._hidden_counts(shown_done)
        shown = sorted((*active, *shown_pending, *shown_done), key=lambda r: r.index)
        return shown, *fold_lines(hidden, self._pending - len(shown_pending))

    def _first_pending(self, n: int) -> list[Row]:
        """The first `n` pending rows in workflow order (whole blocks without one skipped)."""
        found: list[Row] = []
        for block, count in enumerate(self._pending_in_block):
            if len(found) >= n:
                break
            if not count:
                continue
            for row in self.rows[block * _BLOCK : (block + 1) * _BLOCK]:
                if row.status is StepStatus.PENDING and not row.idle_handler:
                    found.append(row)
                    if len(found) == n:
                        break
        return found

    def _recent(self, n: int) -> list[Row]:
        """The `n` most recently finished rows, then handlers that never ran (as a stable
        sort on `finished_seq` would give them: idle handlers have 0)."""
        found: list[Row] = []
        seen: set[int] = set()
        for seq, row in reversed(self._finished):
            if len(found) >= n:
                break
            # A row finished again later (a loop round) has a newer entry: skip the old one.
            if row.finished_seq == seq and row.status in _DONE and row.index not in seen:
                seen.add(row.index)
                found.append(row)
        found.extend(self._idle[: max(0, n - len(found))])
        return found

    def _hidden_counts(self, shown: list[Row]) -> dict[str, int]:
        counts = {
            "completed": self._done_counts[StepStatus.COMPLETED],
            "skipped": self._done_counts[StepStatus.SKIPPED],
            "idle handlers": len(self._idle),
        }
        for row in shown:
            key = "idle handlers" if row.idle_handler else row.status.value
            counts[key] -= 1
        return counts

    def _counts_line_parts(self, hidden_pending: int) -> Text:
        counts = self._hidden_counts([])
        if hidden_pending:
            counts["pending"] = hidden_pending
        return hidden_line(counts)
