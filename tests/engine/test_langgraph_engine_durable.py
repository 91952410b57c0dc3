"""`--engine langgraph` end to end: real `wfctl` processes, the run's LangGraph SQLite
checkpoint file, SIGKILL during a step then `wfctl resume` (no completed step runs
again), an approval decided from another process and continued from the checkpoint.

tests/data/durable/crash.yaml: a -> b -> c -> d -> e and a -> side -> d; every step
appends a line to markers/<step id> and sleeps.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data" / "durable"))

from durable_helpers import (
    STEP_DEADLINE,
    checkpoint_channels,
    cli,
    copy_workflow,
    journal_events,
    kill_processes_of_run,
    load_report,
    marker_counts,
    no_traceback,
    only_run,
    output_of,
    processes_of_run,
    report_path_from,
    sigkill_once,
    start,
    stop,
    wait_for,
    wfctl,
)

from wfctl.model import StepStatus
from wfctl.state.replay import replay

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/environ").exists(), reason="needs Linux /proc to find processes"
)

STEPS = ("a", "b", "side", "c", "d", "e")


def _checkpointed(tmp_path: Path, run_id: str) -> set[str]:
    """Node names with a checkpoint write in the run's LangGraph file."""
    return checkpoint_channels(tmp_path / ".wfctl", run_id)


def _no_checkpoint_tables(state_db: Path) -> None:
    conn = sqlite3.connect(state_db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert not tables & {"checkpoints", "writes"}, tables


@pytest.mark.parametrize("kill_after", [1, 3, 5])
def test_sigkill_during_a_step_then_resume_runs_no_completed_step_again(
    tmp_path: Path, kill_after: int
) -> None:
    copy_workflow("crash.yaml", tmp_path)
    proc = start(["run", "crash.yaml", "--no-live", "--engine", "langgraph"], tmp_path)
    try:
        wait_for(
            lambda: sum(marker_counts(tmp_path).values()) >= kill_after or proc.poll() is not None,
            STEP_DEADLINE,
            f"{kill_after} marker lines",
        )
        assert proc.poll() is None, f"the run ended before the kill point: {output_of(proc)}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop(proc)
    run_id = str(only_run(tmp_path)["run_id"])
    try:
        assert only_run(tmp_path)["status"] == "interrupted"
        wait_for(lambda: not processes_of_run(run_id), 20, "orphaned step processes")
        replayed = replay(STEPS, journal_events(tmp_path / ".wfctl", run_id))
        completed = {s for s, r in replayed.records.items() if r.status is StepStatus.COMPLETED}
        assert (tmp_path / ".wfctl" / "langgraph" / f"{run_id}.sqlite").is_file()
        res = wfctl(["resume", run_id, "--no-live"], tmp_path)
        no_traceback(res.stderr)
        assert res.returncode == 0, (res.stdout, res.stderr)
    finally:
        kill_processes_of_run(run_id)
    after = marker_counts(tmp_path)
    for step in STEPS:
        assert after.get(step, 0) >= 1, (step, after)
        if step in completed:
            assert after[step] == 1, f"completed step {step} ran again: {after}"
        assert after[step] <= 2, (step, after)
    report = load_report(report_path_from(res.stdout, tmp_path))
    assert report["status"] == "completed"
    assert all(d["status"] == "completed" for d in report["steps"].values()), report["steps"]
    for step in completed:
        assert report["steps"][step]["output"]["exit_code"] == 0
    # The resumed run went on from LangGraph's checkpoint: every step's node wrote its
    # record there (the steps' own state, not a control loop's).
    assert "steps" in _checkpointed(tmp_path, run_id)
    _no_checkpoint_tables(tmp_path / ".wfctl" / "state.db")


def test_approval_waits_then_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    copy_workflow("approval.yaml", tmp_path)
    res = cli(["run", "approval.yaml", "--no-live", "--engine", "langgraph"], tmp_path)
    no_traceback(res.stderr)
    assert res.returncode == 4, (res.stdout, res.stderr)
    run_id = str(only_run(tmp_path)["run_id"])
    # The independent branch ran to its end before the graph paused at the gate.
    assert marker_counts(tmp_path) == {"prep": 1, "b1": 1, "b2": 1, "b3": 1}
    assert "__interrupt__" in _checkpointed(tmp_path, run_id)

    res = wfctl(["resume", run_id, "--no-live"], tmp_path)  # nobody decided: still waiting
    assert res.returncode == 4, (res.stdout, res.stderr)
    assert marker_counts(tmp_path) == {"prep": 1, "b1": 1, "b2": 1, "b3": 1}

    assert wfctl(["approve", run_id, "gate"], tmp_path).returncode == 0
    res = wfctl(["resume", run_id, "--no-live"], tmp_path)
    no_traceback(res.stderr)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert marker_counts(tmp_path) == {"prep": 1, "b1": 1, "b2": 1, "b3": 1, "deploy": 1}
    report = load_report(report_path_from(res.stdout, tmp_path))
    assert report["status"] == "completed"
    assert report["steps"]["gate"]["status"] == "completed"
    assert report["steps"]["deploy"]["status"] == "completed"


def test_the_default_engine_writes_no_langgraph_checkpoint(tmp_path: Path) -> None:
    copy_workflow("approval.yaml", tmp_path)
    res = cli(["run", "approval.yaml", "--no-live"], tmp_path)
    assert res.returncode == 4, (res.stdout, res.stderr)
    assert not (tmp_path / ".wfctl" / "langgraph").exists()
    _no_checkpoint_tables(tmp_path / ".wfctl" / "state.db")


def test_ctrl_c_cancels_the_running_steps_then_resume_completes_the_run(tmp_path: Path) -> None:
    copy_workflow("crash.yaml", tmp_path)
    proc = start(["run", "crash.yaml", "--no-live", "--engine", "langgraph"], tmp_path)
    try:
        wait_for(
            lambda: sum(marker_counts(tmp_path).values()) >= 2 or proc.poll() is not None,
            STEP_DEADLINE,
            "2 marker lines",
        )
        assert proc.poll() is None, f"the run ended before Ctrl-C: {output_of(proc)}"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        stop(proc)
    out, err = output_of(proc)
    assert proc.returncode == 130, (out, err)
    no_traceback(err)
    assert "Event loop is closed" not in out + err
    run_id = str(only_run(tmp_path)["run_id"])
    first = load_report(report_path_from(out, tmp_path))
    assert first["status"] == "cancelled"
    # Every step the cancel stopped recorded it before the report was written.
    states = {s: d["status"] for s, d in first["steps"].items()}
    assert "running" not in states.values(), states
    try:
        res = cli(["resume", run_id, "--no-live"], tmp_path)
        no_traceback(res.stderr)
        assert res.returncode == 0, (res.stdout, res.stderr)
    finally:
        kill_processes_of_run(run_id)
    after = marker_counts(tmp_path)
    assert set(after) == set(STEPS), after
    assert after["a"] == 1
    assert all(n <= 2 for n in after.values()), after
    assert load_report(report_path_from(res.stdout, tmp_path))["status"] == "completed"


GATE = """\
workflow_id: gate
name: Gate
steps:
  - {step_id: prepare, action: set, with: {values: {n: 1}}}
  - step_id: approve
    step_type: human_approval
    dependencies: [prepare]
    with: {message: "ok?", approvers: [alice]}
  - {step_id: ship, action: set, dependencies: [approve], with: {values: {shipped: true}}}
"""


def test_resume_run_from_python_continues_a_langgraph_run_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    """`wfctl.approve_run` + `wfctl.resume_run` on a run the langgraph engine started: the
    run's own engine resumes it (the journal names it), from the interrupt."""
    import anyio

    import wfctl
    from wfctl.state.store import StateStore

    (tmp_path / "gate.yaml").write_text(GATE, encoding="utf-8")
    store = StateStore(tmp_path / "st", create=True)
    try:
        options = wfctl.RunOptions(store=store, engine="langgraph")
        first = anyio.run(
            wfctl.run_workflow, wfctl.load_workflow(tmp_path / "gate.yaml"), {}, options
        )
    finally:
        store.close()
    assert first.status is wfctl.WorkflowState.WAITING_APPROVAL
    assert "__interrupt__" in checkpoint_channels(tmp_path / "st", first.run_id)
    wfctl.approve_run(
        tmp_path / "st", first.run_id, "approve", wfctl.ApprovalDecision(True, "alice")
    )
    result = anyio.run(wfctl.resume_run, tmp_path / "st", first.run_id)
    assert result.status is wfctl.WorkflowState.COMPLETED
    assert result.vars == {"n": 1, "shipped": True}
    assert result.steps["approve"].output == {"approved": True, "by": "alice", "comment": ""}
    assert len(result.steps["prepare"].attempts) == 1  # not run again


def test_sigkill_in_an_error_recovery_node_then_resume_runs_the_handlers_again(
    tmp_path: Path,
) -> None:
    """Killed while the failed step's `<id>.error_recovery` node runs its handler: the
    resumed run does not take the step for a failure of the run; the handler runs again
    (at-least-once) and recovers it, and its dependent runs. The failed step is not run
    again."""
    copy_workflow("handled.yaml", tmp_path)
    proc = start(["run", "handled.yaml", "--no-live", "--engine", "langgraph"], tmp_path)
    sigkill_once(proc, tmp_path / "markers" / "fallback")
    run_id = str(only_run(tmp_path)["run_id"])
    try:
        wait_for(lambda: not processes_of_run(run_id), 20, "orphaned step processes")
        res = wfctl(["resume", run_id, "--no-live"], tmp_path)
        no_traceback(res.stderr)
        assert res.returncode == 0, (res.stdout, res.stderr)
    finally:
        kill_processes_of_run(run_id)
    assert marker_counts(tmp_path) == {"fetch": 1, "fallback": 2, "use": 1}
    report = load_report(report_path_from(res.stdout, tmp_path))
    assert report["status"] == "completed"
    assert report["steps"]["fetch"]["status"] == "completed"
    assert report["steps"]["fetch"]["output"] == {"cached": True}
    assert report["steps"]["use"]["status"] == "completed"
