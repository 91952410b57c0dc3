"""The journal's cap on each step attempt's output lines (wfctl/state/output_cap.py),
through the real journal writer and a real SQLite state file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wfctl.events import Event, StepOutputLine, StepStateChanged, VarsChanged
from wfctl.model import StepStatus
from wfctl.report.tail import OutputTails, truncations
from wfctl.state.journal import Journal
from wfctl.state.output_cap import DROPPED_KIND, LINE_COST
from wfctl.state.replay import replay
from wfctl.state.store import StateStore

RUN = "r1"
LINE = "x" * 99  # 100 bytes with its newline


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state")
    yield s
    s.close()


def _state(step: str, status: StepStatus, attempt: int = 1) -> StepStateChanged:
    return StepStateChanged(RUN, 1.0, step, status, attempt=attempt)


def _line(step: str, text: str = LINE, stream: str | None = None) -> StepOutputLine:
    return StepOutputLine(RUN, 2.0, step, text, stream)


def _events(store: StateStore) -> list[dict[str, Any]]:
    return [e for _, e in store.events(RUN)]


def _lines(store: StateStore, step: str) -> list[str]:
    events = _events(store)
    return [e["line"] for e in events if e["kind"] == "step_output" and e["step_id"] == step]


def _ticks(journal: Journal, *ticks: list[Event]) -> None:
    """Each list of events emitted in one event-loop tick (so journaled as one flush)."""

    async def emit() -> None:
        for tick in ticks:
            for event in tick:
                journal(event)
            await asyncio.sleep(0)

    asyncio.run(emit())


def _print(journal: Journal, step: str, count: int, every: int = 50) -> None:
    """`count` numbered lines of `step`, `every` lines a tick."""
    lines = [_line(step, f"{i:06d} {LINE[:92]}") for i in range(count)]
    _ticks(journal, *(lines[i : i + every] for i in range(0, count, every)))


def test_the_tail_is_kept_within_the_limit_and_the_rest_is_counted(store: StateStore) -> None:
    limit = 20 * (100 + LINE_COST)
    journal = Journal(store, RUN, output_limit=limit)
    journal(_state("a", StepStatus.RUNNING))
    _print(journal, "a", 1000)
    journal(_state("a", StepStatus.COMPLETED))
    journal.flush()

    kept = _lines(store, "a")
    assert kept[-1].startswith("000999")  # the last line
    assert sum(len(k) + 1 + LINE_COST for k in kept) <= limit
    numbers = [int(k.split()[0]) for k in kept]
    assert numbers == list(range(numbers[0], 1000))  # a contiguous tail, in order
    assert truncations(_events(store)) == {
        "a": {"dropped_lines": numbers[0], "dropped_bytes": numbers[0] * 100}
    }
    # Events besides lines are never dropped, and the next seq follows the last row.
    rec = replay(["a"], _events(store)).records["a"]
    assert rec.status is StepStatus.COMPLETED and len(rec.attempts) == 1
    assert store.next_seq(RUN) == journal.seq


def test_rows_are_deleted_in_batches_not_per_line(store: StateStore) -> None:
    limit = 40 * (100 + LINE_COST)
    journal = Journal(store, RUN, output_limit=limit)
    journal(_state("a", StepStatus.RUNNING))
    _print(journal, "a", 4000, every=5)
    markers = [e for e in _events(store) if e["kind"] == DROPPED_KIND]
    # A trim frees at least a quarter of the budget (10 lines): at most one per 10 lines,
    # against 800 flushes of 5 lines each.
    assert 0 < len(markers) <= 4000 / 10
    assert [m["dropped_lines"] for m in markers] == sorted(m["dropped_lines"] for m in markers)


def test_each_attempt_has_its_own_budget_and_steps_do_not_mix(store: StateStore) -> None:
    limit = 25 * (100 + LINE_COST)
    journal = Journal(store, RUN, output_limit=limit)
    journal(_state("a", StepStatus.RUNNING, 1))
    journal(_state("b", StepStatus.RUNNING, 1))
    interleaved = [e for _ in range(30) for e in (_line("a"), _line("b", "b-line", "stderr"))]
    _ticks(
        journal,
        [*interleaved, _state("a", StepStatus.RETRYING, 1)],
        [_state("a", StepStatus.RUNNING, 2), _line("a", "second attempt")],
        [_state("a", StepStatus.COMPLETED, 2)],
    )

    events = _events(store)
    markers = {(m["step_id"], m["attempt"]): m for m in events if m["kind"] == DROPPED_KIND}
    assert set(markers) == {("a", 1)}  # b's short lines fit; attempt 2 printed one line
    # Over the budget, down to three quarters of it: 12 of 30 one-line rows go.
    assert markers[("a", 1)]["dropped_lines"] == 12
    assert _lines(store, "b") == ["b-line"] * 30
    tails = OutputTails(5).feed_journal(events)
    # The tail shows the last attempt only: nothing of attempt 1's drops leaks into it.
    assert tails.steps["a"].to_json()["lines"] == {"stdout": 1, "stderr": 0}
    assert tails.steps["b"].to_json()["lines"] == {"stdout": 0, "stderr": 30}


def test_a_failed_attempts_tail_counts_what_was_dropped(store: StateStore) -> None:
    journal = Journal(store, RUN, output_limit=5 * (100 + LINE_COST))
    journal(_state("a", StepStatus.RUNNING))
    _print(journal, "a", 100, every=7)
    journal(_line("a", "boom", "stderr"))
    journal(_state("a", StepStatus.FAILED))
    journal.flush()
    tail = OutputTails(3).feed_journal(_events(store)).steps["a"].to_json()
    assert tail["lines"] == {"stdout": 100, "stderr": 1}
    assert tail["stdout"][-1].startswith("000099") and tail["stderr"] == ["boom"]


def test_a_line_over_the_limit_alone_is_dropped_whole(store: StateStore) -> None:
    journal = Journal(store, RUN, output_limit=1000)
    journal(_state("a", StepStatus.RUNNING))
    journal(_line("a", "é" * 600))  # 1200 bytes in UTF-8
    journal(_line("a", "short"))
    journal(VarsChanged(RUN, 3.0, "a", {"k": 1}))
    journal.flush()
    assert _lines(store, "a") == ["short"]
    assert truncations(_events(store)) == {"a": {"dropped_lines": 1, "dropped_bytes": 1201}}
    assert replay(["a"], _events(store)).vars == {"k": 1}


def test_without_output_nothing_changes(store: StateStore) -> None:
    journal = Journal(store, RUN)
    journal(_state("a", StepStatus.RUNNING))
    journal(_line("a", "hello"))
    journal(_state("a", StepStatus.COMPLETED))
    journal.flush()
    assert _lines(store, "a") == ["hello"]
    assert truncations(_events(store)) == {}
