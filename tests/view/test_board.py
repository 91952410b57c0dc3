"""The live table's row board gives exactly what scanning every row gives, at any size.

The oracle below is the scan the table used before the board (`select_rows`, verbatim):
a frame's rows and summary lines must not change, only the cost of finding them.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text

from wfctl.model import StepStatus
from wfctl.view._board import RowBoard
from wfctl.view._select import _ACTIVE, _DONE, Row, Selection

FINISHED = {StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED}


# -- the oracle: every row scanned on every frame ----------------------------------------
def _is_idle(r: Row) -> bool:
    return r.idle_handler and r.status is StepStatus.PENDING


def _pending(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.status is StepStatus.PENDING and not r.idle_handler]


def _done(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.status in _DONE or _is_idle(r)]


def _hidden_line(done: Sequence[Row], pending: Sequence[Row], *, hidden_pending: bool) -> Text:
    counts: dict[str, int] = {"completed": 0, "skipped": 0, "idle handlers": 0}
    for r in done:
        key = "idle handlers" if _is_idle(r) else r.status.value
        counts[key] = counts.get(key, 0) + 1
    if hidden_pending and pending:
        counts["pending"] = len(pending)
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    return Text(f"… {', '.join(parts)} hidden", style="dim", end="\n")


def oracle(rows: Sequence[Row], budget: int) -> Selection:
    if len(rows) <= budget:
        return list(rows), None, None
    active = [r for r in rows if r.status in _ACTIVE]
    if len(active) > budget - 2:
        keep = max(0, budget - 2)
        more = Text(f"… {len(active) - keep} more running/failed", style="bold", end="\n")
        if len(rows) == len(active):
            return active[:keep], None, more
        return active[:keep], _hidden_line(_done(rows), _pending(rows), hidden_pending=True), more
    pending, done = _pending(rows), _done(rows)
    room = budget - len(active) - (1 if done else 0)
    if len(pending) <= room:
        shown_pending, room = pending, room - len(pending)
    else:
        shown_pending, room = pending[: max(0, room - 1)], 0
    if done and len(done) <= room + 1:
        shown_done, hidden_done = done, []
    else:
        shown_done = heapq.nlargest(room, done, key=lambda r: r.finished_seq) if room else []
        kept = {id(r) for r in shown_done}
        hidden_done = [r for r in done if id(r) not in kept]
    chosen = {id(r) for r in (*active, *shown_pending, *shown_done)}
    shown = [r for r in rows if id(r) in chosen]
    done_line = _hidden_line(hidden_done, [], hidden_pending=False) if hidden_done else None
    hidden = len(pending) - len(shown_pending)
    pending_line = Text(f"… {hidden} pending", style="dim", end="\n") if hidden else None
    return shown, done_line, pending_line


# -- the same state changes the live table makes ------------------------------------------
class Table:
    def __init__(self, n: int, idle: set[int]) -> None:
        self.board = RowBoard()
        self.seq = 0
        for i in range(n):
            row = Row(f"s{i}", i, 0, 1)
            self.board.add(row)
            if i in idle:
                self.board.mark_idle(row)

    def change(self, index: int, status: StepStatus) -> None:
        row = self.board.rows[index]
        old, was_idle = row.status, row.idle_handler
        row.idle_handler = False
        row.status = status
        if status in FINISHED:
            self.seq += 1
            row.finished_seq = self.seq
        self.board.moved(row, old, was_idle)


def _plain(line: Text | None) -> str | None:
    return None if line is None else line.plain


def assert_same(table: Table, budget: int) -> None:
    got = table.board.select(budget)
    want = oracle(table.board.rows, budget)
    assert [r.step_id for r in got[0]] == [r.step_id for r in want[0]]
    assert (_plain(got[1]), _plain(got[2])) == (_plain(want[1]), _plain(want[2]))


STATUSES = st.sampled_from(list(StepStatus))


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 700),
    idle=st.sets(st.integers(0, 699), max_size=20),
    changes=st.lists(st.tuples(st.integers(0, 699), STATUSES), max_size=400),
    budgets=st.lists(st.integers(3, 60), min_size=1, max_size=4),
)
def test_the_board_selects_what_a_full_scan_selects(
    n: int, idle: set[int], changes: list[tuple[int, StepStatus]], budgets: list[int]
) -> None:
    table = Table(n, {i for i in idle if i < n})
    for step, (index, status) in enumerate(changes):
        table.change(index % n, status)
        if step % 37 == 0:
            assert_same(table, budgets[step % len(budgets)])
    for budget in budgets:
        assert_same(table, budget)


def test_rows_that_finish_again_keep_one_place_in_the_recent_list() -> None:
    """A loop finishes the same row every round: it shows once, at its latest finish."""
    table = Table(50, set())
    for _ in range(3000):
        table.change(0, StepStatus.RUNNING)
        table.change(0, StepStatus.COMPLETED)
    table.change(1, StepStatus.COMPLETED)
    assert_same(table, 5)
    assert len(table.board._finished) <= 2 * 50 + 1024 + 2


def test_a_frame_reads_a_screenful_not_every_row() -> None:
    """At 100,000 rows, half finished, a frame touches a bounded number of rows."""
    table = Table(100_000, set())
    for i in range(50_000):
        table.change(i, StepStatus.RUNNING)
        table.change(i, StepStatus.COMPLETED)
    reads = 0
    original = Row.__getattribute__

    class Counting(Row):
        __slots__ = ()

    def counting(self: Row, name: str) -> object:
        nonlocal reads
        if name == "status":
            reads += 1
        return original(self, name)

    for row in table.board.rows:
        row.__class__ = Counting
    Counting.__getattribute__ = counting  # type: ignore[method-assign,assignment]
    shown, done_line, pending_line = table.board.select(37)
    assert len(shown) == 37 - 2 and done_line is not None and pending_line is not None
    assert reads < 1_000, reads
