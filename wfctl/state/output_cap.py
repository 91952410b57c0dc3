"""What the journal keeps of a step attempt's output lines: the tail, within a byte budget.

A step printing 200 MB made a 1.09 GB state file (issue 15): every line was a journal
event. Now each attempt's lines go into journal rows of their own (never mixed with other
events), so that once an attempt's rows cost more than its budget the oldest are deleted,
in batches (down to three quarters of the budget: one delete per quarter budget of
output, O(1) amortised per line). A `step_output_dropped` event, a row of its own too,
says how much each attempt lost so far (cumulative: the last one per attempt counts).
The live view is not affected: it sees every line on the event stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from wfctl.events import Event, StepOutputLine, StepStateChanged
from wfctl.model import StepStatus
from wfctl.state.store import BATCH_KIND

__all__ = [
    "DEFAULT_OUTPUT_LIMIT",
    "DROPPED_KIND",
    "LINE_COST",
    "OutputCap",
    "Row",
    "RowPlan",
]

#: Bytes of journal each step attempt's output lines may take (--journal-output-limit).
DEFAULT_OUTPUT_LIMIT: Final = 1024 * 1024
#: The journal event saying how much of an attempt's output was dropped.
DROPPED_KIND: Final = "step_output_dropped"
#: What a journal row spends on a line besides its text (kind, time, step id), so that the
#: budget bounds the file and not only the text: one-character lines (`yes`) cost 70 bytes.
LINE_COST: Final = 64
# A row of lines holds at most this share of the budget, so deleting whole rows keeps
# close to the budget.
_ROW_SHARE: Final = 8

# A journal row: (first seq, ts, kind, step id, the event, or a batch's list of events).
Row = tuple[int, float, str, str | None, Any]


def line_size(line: str) -> int:
    """The bytes `line` had in the output (UTF-8, with its newline)."""
    return (len(line) if line.isascii() else len(line.encode("utf-8", "replace"))) + 1


@dataclass
class _Group:
    """Consecutive events bound for one row (numbered from `seq`): one step's lines
    (`step_id`), or anything else."""

    seq: int
    step_id: str | None = None
    events: list[Event] = field(default_factory=list)
    cost: int = 0
    size: int = 0
    stderr: int = 0
    written: bool = False  # by an earlier flush
    deleted: bool = False


@dataclass
class _Attempt:
    """One attempt's lines in the journal: their rows and what they cost, and what was
    dropped (output bytes, lines per stream)."""

    number: int
    rows: deque[_Group] = field(default_factory=deque)
    cost: int = 0
    dropped_bytes: int = 0
    dropped_stdout: int = 0
    dropped_stderr: int = 0
    changed: bool = False

    def drop(self, size: int, stdout: int, stderr: int) -> None:
        self.dropped_bytes += size
        self.dropped_stdout += stdout
        self.dropped_stderr += stderr
        self.changed = True

    def trim(self, low: int) -> Iterator[_Group]:
        """Drop the oldest rows until the lines cost at most `low`; the rows dropped."""
        while len(self.rows) > 1 and self.cost > low:  # the newest row holds the last line
            group = self.rows.popleft()
            self.cost -= group.cost
            lines = len(group.events)
            self.drop(group.size, lines - group.stderr, group.stderr)
            group.deleted = True
            yield group

    def marker(self, step_id: str, ts: float) -> dict[str, Any]:
        self.changed = False
        return {
            "kind": DROPPED_KIND,
            "ts": ts,
            "step_id": step_id,
            "attempt": self.number,
            "dropped_lines": self.dropped_stdout + self.dropped_stderr,
            "dropped_stderr_lines": self.dropped_stderr,
            "dropped_bytes": self.dropped_bytes,
        }


@dataclass
class RowPlan:
    """What one flush writes: rows to insert, rows to delete, the next free seq."""

    rows: list[Row]
    deleted: list[int]
    next_seq: int


class OutputCap:
    """Splits a flush's events into journal rows and keeps each attempt's lines within
    `limit` bytes (0: no lines are kept, only counted)."""

    def __init__(self, limit: int = DEFAULT_OUTPUT_LIMIT) -> None:
        self.limit = max(0, limit)
        self._row_cost = max(1, self.limit // _ROW_SHARE)
        self._low = self.limit - self.limit // 4  # what a trim leaves at most
        self._attempts: dict[str, _Attempt] = {}
        self._numbers: dict[str, int] = {}  # step id -> its attempt now running
        self._ended: list[tuple[str, _Attempt]] = []  # ended in this flush

    def plan(
        self, events: Sequence[Event], seq: int, to_json: Callable[[Event], dict[str, Any]]
    ) -> RowPlan:
        """The rows for `events` (in order), numbered from `seq`."""
        groups, seq = self._group(events, seq)
        touched = [*self._ended, *self._attempts.items()]
        self._ended = []
        deleted = [
            g.seq
            for _, attempt in touched
            if attempt.cost > self.limit
            for g in attempt.trim(self._low)
            if g.written
        ]
        rows = [_row(g, to_json) for g in groups if not g.deleted]
        ts = events[-1].ts
        for step_id, attempt in touched:
            if attempt.changed:
                rows.append((seq, ts, DROPPED_KIND, step_id, attempt.marker(step_id, ts)))
                seq += 1
        for group in groups:
            group.written = True
        return RowPlan(rows, deleted, seq)

    def _group(self, events: Sequence[Event], seq: int) -> tuple[list[_Group], int]:
        groups: list[_Group] = []
        other: _Group | None = None
        for event in events:
            if type(event) is StepOutputLine:
                other = None
                seq += self._line(event, groups, seq)
                continue
            if type(event) is StepStateChanged:
                self._state(event)
            if other is None:
                other = _Group(seq)
                groups.append(other)
            other.events.append(event)
            seq += 1
        return groups, seq

    def _line(self, event: StepOutputLine, groups: list[_Group], seq: int) -> int:
        """Put a line into its step's row (1), or drop it (0: it is over the budget alone)."""
        size = line_size(event.line)
        cost = size + LINE_COST
        stderr = int(event.stream == "stderr")
        attempt = self._attempt(event.step_id)
        if cost > self.limit:
            attempt.drop(size, 1 - stderr, stderr)
            return 0
        last = groups[-1] if groups else None
        if last is None or last.step_id != event.step_id or last.cost + cost > self._row_cost:
            last = _Group(seq, event.step_id)
            groups.append(last)
            attempt.rows.append(last)
        last.events.append(event)
        last.cost += cost
        last.size += size
        last.stderr += stderr
        attempt.cost += cost
        return 1

    def _state(self, event: StepStateChanged) -> None:
        step_id = event.step_id
        if event.status is StepStatus.RUNNING:
            self._end(step_id)
            self._numbers[step_id] = event.attempt
        elif event.status.terminal:
            self._end(step_id)
            self._numbers.pop(step_id, None)

    def _end(self, step_id: str) -> None:
        attempt = self._attempts.pop(step_id, None)
        if attempt is not None and (attempt.changed or attempt.cost > self.limit):
            self._ended.append((step_id, attempt))  # trimmed and reported in this flush

    def _attempt(self, step_id: str) -> _Attempt:
        attempt = self._attempts.get(step_id)
        if attempt is None:
            attempt = self._attempts[step_id] = _Attempt(self._numbers.get(step_id, 0))
        return attempt


def _row(group: _Group, to_json: Callable[[Event], dict[str, Any]]) -> Row:
    events, seq = group.events, group.seq
    first = events[0]
    if len(events) == 1:
        return (seq, first.ts, first.kind, getattr(first, "step_id", None), to_json(first))
    return (seq, first.ts, BATCH_KIND, group.step_id, [to_json(e) for e in events])
