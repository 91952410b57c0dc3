"""Unit tests of the state store (wfctl/store.py) and the journal (wfctl/journal.py):
the run index, the event journal, approvals, the per-run lock, and `replay`."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from wfctl.events import EventBus, RunFinished, RunStarted, StepStateChanged, VarsChanged
from wfctl.model import StepStatus, WorkflowState
from wfctl.state.journal import Journal
from wfctl.state.lock import RunLock
from wfctl.state.replay import replay
from wfctl.state.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    StateStore,
    StoreError,
    open_store,
)

SHA = "ab" * 32


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = StateStore(tmp_path / "state")
    yield s
    s.close()


def _new(store: StateStore, run_id: str, workflow: str = "wf", **kw: Any) -> None:
    store.create_run(
        run_id,
        workflow,
        workflow.upper(),
        f"{workflow}.yaml",
        SHA,
        kw.get("inputs", {}),
        kw.get("options", {}),
    )


# -- the file ----------------------------------------------------------------------------


def test_a_new_store_is_a_private_wal_file_marked_as_ours(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"
    store = StateStore(directory)
    store.close()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    conn = sqlite3.connect(directory / "state.db")
    try:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"runs", "events", "approvals"} <= tables
    finally:
        conn.close()


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    _new(store, "r1", inputs={"n": 1})
    store.close()
    store = StateStore(tmp_path, create=False)
    try:
        row = store.run("r1")
        assert row is not None
        assert row.inputs == {"n": 1}
    finally:
        store.close()


def test_without_create_a_missing_store_is_an_error_and_nothing_is_made(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no wfctl state"):
        StateStore(tmp_path / "none", create=False)
    assert not (tmp_path / "none").exists()


def test_corrupt_foreign_and_newer_files_are_refused_untouched(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "state.db").write_bytes(b"\x00\x01not sqlite at all" * 512)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    conn = sqlite3.connect(foreign / "state.db")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    newer = tmp_path / "newer"
    StateStore(newer).close()
    conn = sqlite3.connect(newer / "state.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    other_app = tmp_path / "other_app"
    other_app.mkdir()
    conn = sqlite3.connect(other_app / "state.db")
    conn.execute("PRAGMA application_id = 12345")
    conn.close()

    for directory, message in (
        (corrupt, "not a usable wfctl state file"),
        (foreign, "not a wfctl state file"),
        (newer, "newer wfctl"),
        (other_app, "not a wfctl state file"),
    ):
        before = (directory / "state.db").read_bytes()
        with pytest.raises(StoreError, match=message):
            StateStore(directory)
        assert (directory / "state.db").read_bytes() == before, directory


def test_open_store_turns_os_errors_into_store_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot open state"):
        open_store(blocker / "state")


# -- runs --------------------------------------------------------------------------------


def test_create_run_and_set_status(store: StateStore) -> None:
    _new(store, "r1", inputs={"a": 1}, options={"max_parallel": 2})
    row = store.run("r1")
    assert row is not None
    assert (row.workflow_id, row.workflow_name, row.file, row.sha256) == (
        "wf",
        "WF",
        "wf.yaml",
        SHA,
    )
    assert row.status == "running"
    assert row.ended_at is None and row.duration is None
    assert row.inputs == {"a": 1}
    assert row.options == {"max_parallel": 2}

    store.set_status("r1", "waiting_approval", "waiting for approval: gate", report_path="r.json")
    row = store.run("r1")
    assert row is not None
    assert row.status == "waiting_approval"
    assert row.error == "waiting for approval: gate"
    assert row.report_path == "r.json"
    assert row.duration is not None and row.duration >= 0

    # Resuming: running again, not ended; the report path is kept when not given.
    store.set_status("r1", "running", None, ended=False)
    row = store.run("r1")
    assert row is not None
    assert (row.status, row.error, row.ended_at, row.report_path) == (
        "running",
        None,
        None,
        "r.json",
    )


def test_runs_are_listed_newest_first_with_filters(store: StateStore) -> None:
    for i, (wf, status) in enumerate(
        [("alpha", "completed"), ("beta", "failed"), ("alpha", "failed"), ("beta", "completed")]
    ):
        _new(store, f"r{i}", wf)
        store.set_status(f"r{i}", status)
        store.conn.execute("UPDATE runs SET started_at = ? WHERE run_id = ?", (1000 + i, f"r{i}"))
    assert [r.run_id for r in store.runs()] == ["r3", "r2", "r1", "r0"]
    assert [r.run_id for r in store.runs(workflow="alpha")] == ["r2", "r0"]
    assert [r.run_id for r in store.runs(status="failed")] == ["r2", "r1"]
    assert [r.run_id for r in store.runs(workflow="beta", status="completed")] == ["r3"]
    assert [r.run_id for r in store.runs(limit=2)] == ["r3", "r2"]
    assert store.runs(workflow="gamma") == []


def test_run_ids_can_be_given_by_unique_prefix(store: StateStore) -> None:
    _new(store, "20260101T000000Z-aaaa1111")
    _new(store, "20260101T000000Z-aaaa2222")
    _new(store, "20260202T000000Z-bbbb0000")
    found = store.run("20260202")
    assert found is not None and found.run_id == "20260202T000000Z-bbbb0000"
    found = store.run("20260101T000000Z-aaaa2")
    assert found is not None and found.run_id == "20260101T000000Z-aaaa2222"
    # Ambiguous or unknown prefixes name no run.
    assert store.run("20260101T000000Z-aaaa") is None
    assert store.run("2027") is None
    # LIKE wildcards in what was typed are literal characters.
    assert store.run("%") is None
    assert store.run("2026020_") is None
    assert store.run("20260202%") is None


def test_an_exact_id_wins_over_longer_ids_it_prefixes(store: StateStore) -> None:
    _new(store, "r1")
    _new(store, "r10")
    found = store.run("r1")
    assert found is not None and found.run_id == "r1"


# -- events ------------------------------------------------------------------------------


def test_events_are_appended_and_read_in_order(store: StateStore) -> None:
    assert store.next_seq("r1") == 1
    for seq in (1, 2, 3):
        store.append_event("r1", seq, 100.0 + seq, "k", f"s{seq}", json.dumps({"n": seq}))
    store.append_event("r2", 1, 1.0, "k", None, json.dumps({"n": 99}))
    assert store.next_seq("r1") == 4
    assert store.next_seq("r2") == 2
    assert list(store.events("r1")) == [(1, {"n": 1}), (2, {"n": 2}), (3, {"n": 3})]
    assert list(store.events("r1", after=2)) == [(3, {"n": 3})]
    assert list(store.events("nosuch")) == []
    # A sequence number is written once.
    with pytest.raises(StoreError):
        store.append_event("r1", 2, 0.0, "k", None, "{}")


def test_journal_subscriber_writes_each_event_before_the_next_subscriber(
    store: StateStore,
) -> None:
    _new(store, "r1")
    bus = EventBus()
    bus.subscribe(Journal(store, "r1"))
    seen_in_store: list[int] = []
    bus.subscribe(lambda e: seen_in_store.append(len(list(store.events("r1")))))
    bus.emit(RunStarted("r1", 1.0, "wf", "WF", ("a",), {}))
    bus.emit(StepStateChanged("r1", 2.0, "a", StepStatus.RUNNING, attempt=1))
    assert seen_in_store == [1, 2]
    # A second process (a resume) continues the numbering.
    journal = Journal(store, "r1")
    assert journal.seq == 3
    journal(RunFinished("r1", 3.0, WorkflowState.COMPLETED))
    kinds = [e["kind"] for _, e in store.events("r1")]
    assert kinds == ["run_started", "step_state", "run_finished"]


def test_journal_groups_a_tick_but_commits_before_a_step_with_outside_effects(
    tmp_path: Path,
) -> None:
    """Inside an event loop, events wait for the end of the tick, except `running` of a
    step that may touch the outside world: it is committed at once, with what preceded."""
    import anyio

    store = StateStore(tmp_path / "state")
    _new(store, "r1")
    other = StateStore(tmp_path / "state", create=False)  # what another process sees
    journal = Journal(store, "r1", pure_steps=frozenset({"quiet"}))

    def committed() -> list[str]:
        return [f"{e['kind']}:{e.get('step_id')}" for _, e in other.events("r1")]

    async def go() -> list[list[str]]:
        seen = []
        journal(RunStarted("r1", 1.0, "wf", "WF", ("quiet", "shell"), {}))
        journal(StepStateChanged("r1", 2.0, "quiet", StepStatus.RUNNING, attempt=1))
        seen.append(committed())  # nothing yet: grouped until the tick ends
        await anyio.sleep(0)
        seen.append(committed())
        journal(StepStateChanged("r1", 3.0, "quiet", StepStatus.COMPLETED, attempt=1))
        journal(StepStateChanged("r1", 4.0, "shell", StepStatus.RUNNING, attempt=1))
        seen.append(committed())  # the barrier took the completion with it
        return seen

    try:
        before, after_tick, at_barrier = anyio.run(go)
    finally:
        other.close()
        store.close()
    assert before == []
    assert after_tick == ["run_started:None", "step_state:quiet"]
    assert at_barrier == [*after_tick, "step_state:quiet", "step_state:shell"]


def test_a_batch_row_holds_consecutive_events_and_numbering_goes_on(store: StateStore) -> None:
    events = [{"kind": "k", "n": n} for n in range(3)]
    store.append_batch("r1", 1, 1.0, json.dumps(events))
    assert store.next_seq("r1") == 4
    store.append_event("r1", 4, 2.0, "k", None, json.dumps({"kind": "k", "n": 3}))
    assert [seq for seq, _ in store.events("r1")] == [1, 2, 3, 4]
    assert [e["n"] for _, e in store.events("r1")] == [0, 1, 2, 3]
    # `after` may fall inside a batch: only the later events come back.
    assert [(seq, e["n"]) for seq, e in store.events("r1", after=2)] == [(3, 2), (4, 3)]
    rows = store.conn.execute("SELECT seq, kind FROM events WHERE run_id = 'r1'").fetchall()
    assert rows == [(1, "batch"), (4, "k")]


def test_journal_writes_one_row_per_tick(store: StateStore) -> None:
    import anyio

    _new(store, "r1")
    journal = Journal(store, "r1", pure_steps=frozenset({"a", "b"}))

    async def go() -> None:
        journal(RunStarted("r1", 1.0, "wf", "WF", ("a", "b"), {}))
        for step in ("a", "b"):
            journal(StepStateChanged("r1", 2.0, step, StepStatus.RUNNING, attempt=1))
            journal(StepStateChanged("r1", 3.0, step, StepStatus.COMPLETED, attempt=1))
        await anyio.sleep(0)
        journal(RunFinished("r1", 4.0, WorkflowState.COMPLETED))

    anyio.run(go)
    rows = store.conn.execute("SELECT seq, kind FROM events WHERE run_id = 'r1'").fetchall()
    assert rows == [(1, "batch"), (6, "run_finished")]
    replayed = replay(["a", "b"], (e for _, e in store.events("r1")))
    assert {s: r.status for s, r in replayed.records.items()} == {
        "a": StepStatus.COMPLETED,
        "b": StepStatus.COMPLETED,
    }
    assert Journal(store, "r1").seq == 7


# -- approvals ---------------------------------------------------------------------------


def test_approvals_are_recorded_per_step_and_the_last_decision_wins(store: StateStore) -> None:
    assert store.approvals("r1") == {}
    store.record_approval("r1", "gate", True, "alice", "ok")
    store.record_approval("r1", "other", False, "bob", "")
    store.record_approval("r2", "gate", False, "carol", "no")
    assert store.approvals("r1") == {"gate": (True, "alice", "ok"), "other": (False, "bob", "")}
    store.record_approval("r1", "gate", False, "alice", "changed my mind")
    assert store.approvals("r1")["gate"] == (False, "alice", "changed my mind")
    assert store.approvals("r2") == {"gate": (False, "carol", "no")}


def test_two_connections_see_each_others_writes(tmp_path: Path) -> None:
    one = StateStore(tmp_path)
    two = StateStore(tmp_path, create=False)
    try:
        _new(one, "r1")
        two.record_approval("r1", "gate", True, "x", "")
        assert two.run("r1") is not None
        assert one.approvals("r1") == {"gate": (True, "x", "")}
    finally:
        one.close()
        two.close()


# -- the run lock ------------------------------------------------------------------------


def test_run_lock_has_one_owner_at_a_time(tmp_path: Path) -> None:
    first = RunLock(tmp_path, "r1")
    second = RunLock(tmp_path, "r1")
    other = RunLock(tmp_path, "r2")
    assert not first.held_elsewhere()
    assert first.acquire()
    try:
        assert first.path.read_text() == str(os.getpid())
        assert not second.acquire()
        assert second.held_elsewhere()
        assert other.acquire()  # another run is independent
        other.release()
    finally:
        first.release()
    assert not second.held_elsewhere()
    assert second.acquire()
    second.release()
    assert stat.S_IMODE((tmp_path / "locks").stat().st_mode) == 0o700


# -- replay ------------------------------------------------------------------------------


def _state(ts: float, step: str, status: str, attempt: int = 0, **extra: Any) -> dict[str, Any]:
    return {"kind": "step_state", "ts": ts, "step_id": step, "status": status,
            "attempt": attempt, **extra}  # fmt: skip


def _started(ts: float) -> dict[str, Any]:
    return {"kind": "run_started", "ts": ts, "step_ids": ["a", "b", "c"]}


def _finished(ts: float, status: str) -> dict[str, Any]:
    return {"kind": "run_finished", "ts": ts, "status": status}


def test_replay_rebuilds_attempts_outputs_and_completion_order() -> None:
    events = [
        _started(10.0),
        _state(11.0, "a", "running", 1),
        _state(12.0, "a", "retrying", 1, error="boom", error_kind="error"),
        _state(13.0, "a", "running", 2),
        _state(14.0, "a", "completed", 2, output={"x": 1}, duration=3.0),
        _state(14.5, "b", "running", 1),
        _state(15.0, "b", "completed", 1, output="b-out"),
        _state(15.5, "c", "skipped", 0, reason="when is false: no"),
        _finished(16.0, "completed"),
    ]
    out = replay(["a", "b", "c"], events)
    a = out.records["a"]
    assert a.status is StepStatus.COMPLETED
    assert a.output == {"x": 1}
    assert [(t.number, t.started_at, t.ended_at, t.error) for t in a.attempts] == [
        (1, 11.0, 12.0, "boom"),
        (2, 13.0, 14.0, None),
    ]
    assert a.attempts[0].error_kind == "error"
    assert (a.started_at, a.ended_at) == (11.0, 14.0)
    assert out.records["b"].output == "b-out"
    c = out.records["c"]
    assert c.status is StepStatus.SKIPPED
    assert c.reason == "when is false: no"
    assert c.attempts == []
    assert out.completion_order == ["a", "b"]
    assert out.started is not None and out.started["ts"] == 10.0
    assert out.finished is not None and out.finished["status"] == "completed"
    assert out.active_seconds == pytest.approx(6.0)


def test_replay_finds_the_steps_in_flight_when_the_process_died() -> None:
    events = [
        _started(10.0),
        _state(11.0, "a", "running", 1),
        _state(12.0, "a", "completed", 1, output=1),
        _state(12.0, "b", "running", 1),
        _state(12.1, "c", "running", 1),
        _state(12.5, "c", "retrying", 1, error="flaky", error_kind="error"),
        # the process is killed here: no run_finished
    ]
    out = replay(["a", "b", "c"], events)
    assert out.records["a"].status is StepStatus.COMPLETED
    b = out.records["b"]
    assert b.status is StepStatus.RUNNING
    assert len(b.attempts) == 1 and b.attempts[0].ended_at is None
    c = out.records["c"]
    assert c.status is StepStatus.RETRYING
    assert c.attempts[0].ended_at == 12.5
    assert out.finished is None
    assert out.completion_order == ["a"]
    assert out.active_seconds == pytest.approx(2.5)


def test_replay_spans_several_processes() -> None:
    events = [
        _started(10.0),
        _state(11.0, "a", "running", 1),
        _state(12.0, "a", "completed", 1, output=1),
        _state(12.0, "b", "waiting", 0, reason="waiting for approval"),
        _finished(13.0, "waiting_approval"),
        # an hour later: `wfctl resume`
        _started(3613.0),
        _state(3614.0, "b", "completed", 1, output={"approved": True}),
        _state(3614.0, "c", "running", 1),
        _state(3615.0, "c", "failed", 1, error="nope", error_kind="error"),
        _finished(3616.0, "failed"),
    ]
    out = replay(["a", "b", "c"], events)
    assert out.started is not None and out.started["ts"] == 10.0  # the first process
    assert out.finished is not None and out.finished["status"] == "failed"  # the last one
    # Waiting between the processes does not count as running time.
    assert out.active_seconds == pytest.approx(3.0 + 3.0)
    c = out.records["c"]
    assert c.status is StepStatus.FAILED
    assert c.attempts[0].error == "nope"
    assert out.records["b"].output == {"approved": True}
    assert out.completion_order == ["a", "b"]


def test_replay_merges_vars_and_ignores_unknown_steps_and_kinds() -> None:
    events = [
        _started(1.0),
        VarsChanged("r", 2.0, "a", {"x": 1, "y": 2}).to_json(),
        {"kind": "step_output", "ts": 2.1, "step_id": "a", "line": "hello"},
        _state(2.2, "gone", "completed", 1, output=1),
        VarsChanged("r", 3.0, "b", {"y": 3}).to_json(),
    ]
    out = replay(["a", "b"], events)
    assert out.vars == {"x": 1, "y": 3}
    assert set(out.records) == {"a", "b"}
    assert out.completion_order == []


def test_replay_of_a_step_completed_twice_keeps_one_entry_in_completion_order() -> None:
    events = [
        _started(1.0),
        _state(2.0, "a", "running", 1),
        _state(3.0, "a", "completed", 1, output=1),
        _state(4.0, "b", "running", 1),
        _state(5.0, "b", "completed", 1, output=2),
        _state(6.0, "a", "completed", 1, output=3),
    ]
    out = replay(["a", "b"], events)
    assert out.completion_order == ["b", "a"]
    assert out.records["a"].output == 3


def test_replay_of_real_events_round_trips_through_json() -> None:
    events = [
        RunStarted("r", 1.0, "wf", "WF", ("a",), {}),
        StepStateChanged("r", 2.0, "a", StepStatus.RUNNING, attempt=1),
        StepStateChanged("r", 3.0, "a", StepStatus.COMPLETED, attempt=1, output={"ok": 1}),
        RunFinished("r", 4.0, WorkflowState.COMPLETED, None, 3.0),
    ]
    data = [json.loads(json.dumps(e.to_json(), default=str)) for e in events]
    out = replay(["a"], data)
    assert out.records["a"].status is StepStatus.COMPLETED
    assert out.records["a"].output == {"ok": 1}
    assert out.finished is not None and out.finished["status"] == "completed"


def test_replay_keeps_when_a_step_started_waiting() -> None:
    events = [_started(1.0), _state(2.0, "gate", "waiting", 0, reason="waiting for approval")]
    out = replay(["gate"], events)
    assert out.records["gate"].status is StepStatus.WAITING
    assert out.records["gate"].started_at == 2.0
