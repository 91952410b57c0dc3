"""wfctl.durable: deciding a waiting approval of a journaled run from Python."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli

import wfctl
from wfctl.durable import RunNotFound, approve_run
from wfctl.state.store import StateStore

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


def _waiting_run(tmp_path: Path) -> str:
    (tmp_path / "gate.yaml").write_text(GATE, encoding="utf-8")
    done = cli(["run", "gate.yaml", "--no-input", "--state-dir", "st"], tmp_path)
    assert done.returncode == 4, done.stderr  # waiting for approval
    store = StateStore(tmp_path / "st", create=False)
    try:
        (row,) = store.runs()
        return row.run_id
    finally:
        store.close()


def test_approve_run_records_the_decision_and_resume_continues(tmp_path: Path) -> None:
    run_id = _waiting_run(tmp_path)
    decision = wfctl.ApprovalDecision(True, by="alice", comment="go")
    full = approve_run(tmp_path / "st", run_id[:8], "approve", decision)
    assert full == run_id
    store = StateStore(tmp_path / "st", create=False)
    try:
        assert store.approvals(run_id) == {"approve": (True, "alice", "go")}
    finally:
        store.close()
    resumed = cli(["resume", run_id, "--state-dir", "st"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr


def test_approve_run_refuses_what_cannot_be_decided(tmp_path: Path) -> None:
    run_id = _waiting_run(tmp_path)
    st = tmp_path / "st"
    with pytest.raises(RunNotFound, match="no step 'nope'"):
        approve_run(st, run_id, "nope", wfctl.ApprovalDecision(True, by="alice"))
    with pytest.raises(RunNotFound, match="already completed"):
        approve_run(st, run_id, "prepare", wfctl.ApprovalDecision(True, by="alice"))
    with pytest.raises(RunNotFound, match="'bob' is not an approver"):
        approve_run(st, run_id, "approve", wfctl.ApprovalDecision(True, by="bob"))
    store = StateStore(st, create=False)
    try:
        assert store.approvals(run_id) == {}  # nothing recorded by a refused call
    finally:
        store.close()


def test_resume_run_from_python_continues_a_waiting_run(tmp_path: Path) -> None:
    import anyio

    run_id = _waiting_run(tmp_path)
    st = tmp_path / "st"
    options = wfctl.RunOptions(approvals={"approve": wfctl.ApprovalDecision(True, by="alice")})
    result = anyio.run(wfctl.resume_run, st, run_id, None, options)
    assert result.run_id == run_id
    assert result.status is wfctl.WorkflowState.COMPLETED
    assert result.steps["prepare"].attempts and len(result.steps["prepare"].attempts) == 1
    assert result.vars == {"n": 1, "shipped": True}
    with pytest.raises(wfctl.durable.ResumeRefused, match="already ended"):
        anyio.run(wfctl.resume_run, st, run_id)
