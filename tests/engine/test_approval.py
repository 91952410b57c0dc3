"""Human approval without a terminal: the run waits (exit 4) after the independent branch
finished, `wfctl approve` records a decision from another process, `wfctl resume`
continues from the LangGraph checkpoint; rejection fails the gate and rolls back.

tests/data/durable/approval.yaml: prep -> gate (human_approval) -> deploy, and an
independent branch b1 -> b2 -> b3; every shell step appends a line to markers/<step id>;
prep's rollback handler undo_prep writes markers/undo_prep.
"""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data" / "durable"))

from durable_helpers import (
    STEP_DEADLINE,
    clean_env,
    cli,
    copy_workflow,
    journal_events,
    load_report,
    marker_counts,
    no_traceback,
    only_run,
    report_path_from,
    wait_for,
    wfctl,
)

from wfctl.state.store import StateStore

BRANCH_B = {"b1": 1, "b2": 1, "b3": 1}


def _wait_for_approval(tmp_path: Path, separate: bool) -> str:
    """Run approval.yaml with no terminal; check it stopped waiting; the run id."""
    copy_workflow("approval.yaml", tmp_path)
    run = wfctl if separate else cli
    res = run(["run", "approval.yaml", "--no-live"], tmp_path)
    no_traceback(res.stderr)
    assert res.returncode == 4, (res.stdout, res.stderr)
    row = only_run(tmp_path)
    run_id = str(row["run_id"])
    assert row["status"] == "waiting_approval"
    # The independent branch ran to its end; nothing after the gate ran.
    assert marker_counts(tmp_path) == {"prep": 1, **BRANCH_B}
    # The exact commands to continue are printed.
    assert f"wfctl approve {run_id} gate\n" in res.stdout
    assert f"wfctl approve {run_id} gate --reject" in res.stdout
    assert f"wfctl resume {run_id}\n" in res.stdout
    return run_id


def test_waiting_run_is_approved_from_another_process_and_resumed(tmp_path: Path) -> None:
    run_id = _wait_for_approval(tmp_path, separate=True)
    events = journal_events(tmp_path / ".wfctl", run_id)
    kinds = [(e["kind"], e.get("step_id"), e.get("status")) for e in events]
    # Branch B completed before the run stopped to wait; the gate was waiting.
    finished = kinds.index(("run_finished", None, "waiting_approval"))
    assert kinds.index(("step_state", "b3", "completed")) < finished
    assert ("step_state", "gate", "waiting") in kinds[:finished]
    assert ("step_state", "deploy", "running") not in kinds

    res = wfctl(["approve", run_id, "gate", "--comment", "ok"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"wfctl resume {run_id}" in res.stdout
    store = StateStore(tmp_path / ".wfctl", create=False)
    try:
        assert store.approvals(run_id) == {"gate": (True, getpass.getuser(), "ok")}
    finally:
        store.close()

    res = wfctl(["resume", run_id, "--no-live"], tmp_path)
    no_traceback(res.stderr)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert marker_counts(tmp_path) == {"prep": 1, **BRANCH_B, "deploy": 1}
    assert only_run(tmp_path)["status"] == "completed"

    report = load_report(report_path_from(res.stdout, tmp_path))
    assert report["status"] == "completed"
    assert report["waiting_for"] == []
    gate = report["steps"]["gate"]
    assert gate["status"] == "completed"
    assert gate["output"] == {"approved": True, "by": getpass.getuser(), "comment": "ok"}
    assert report["steps"]["deploy"]["status"] == "completed"
    assert report["steps"]["undo_prep"]["status"] == "skipped"
    assert report["rollbacks"] == []
    # The whole run: steps of the first process are in the report, run once each.
    for step in ("prep", "b1", "b2", "b3", "deploy"):
        assert report["steps"][step]["status"] == "completed"
        assert len(report["steps"][step]["attempts"]) == 1, report["steps"][step]

    # Deciding again after the run ended is refused.
    res = cli(["approve", run_id, "gate"], tmp_path)
    assert res.returncode == 2
    assert "already completed" in res.stderr


def test_rejected_approval_fails_the_gate_and_rolls_back(tmp_path: Path) -> None:
    run_id = _wait_for_approval(tmp_path, separate=False)
    res = wfctl(["approve", run_id, "gate", "--reject", "--comment", "not today"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "rejected" in res.stdout

    res = cli(["resume", run_id, "--no-live"], tmp_path)
    no_traceback(res.stderr)
    assert res.returncode == 1, (res.stdout, res.stderr)
    # deploy never ran; prep's rollback handler did, once.
    assert marker_counts(tmp_path) == {"prep": 1, **BRANCH_B, "undo_prep": 1}
    report = load_report(report_path_from(res.stdout, tmp_path))
    assert report["status"] == "failed"
    assert report["exit_code"] == 1
    gate = report["steps"]["gate"]
    assert gate["status"] == "failed"
    assert gate["error_kind"] == "rejected"
    assert "rejected" in gate["error"]
    assert "not today" in gate["error"]
    assert report["steps"]["deploy"]["status"] == "skipped"
    assert [
        (r["step_id"], r["for_step"], r["purpose"], r["status"]) for r in report["rollbacks"]
    ] == [("undo_prep", "prep", "rollback", "completed")]
    assert only_run(tmp_path)["status"] == "failed"
    # A failed (rolled back) run is not resumed again.
    res = cli(["resume", run_id, "--no-live"], tmp_path)
    assert res.returncode == 1
    assert marker_counts(tmp_path)["undo_prep"] == 1


def test_pre_approval_on_the_command_line_does_not_wait(tmp_path: Path) -> None:
    copy_workflow("approval.yaml", tmp_path)
    res = cli(["run", "approval.yaml", "--no-live", "--approve", "gate"], tmp_path)
    no_traceback(res.stderr)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert "wfctl approve" not in res.stdout
    assert marker_counts(tmp_path) == {"prep": 1, **BRANCH_B, "deploy": 1}
    report = load_report(report_path_from(res.stdout, tmp_path))
    assert report["steps"]["gate"]["output"] == {
        "approved": True,
        "by": "--approve",
        "comment": "",
    }
    assert only_run(tmp_path)["status"] == "completed"


def test_pre_approving_an_unknown_step_is_a_usage_error(tmp_path: Path) -> None:
    copy_workflow("approval.yaml", tmp_path)
    res = cli(["run", "approval.yaml", "--no-live", "--approve", "nosuch"], tmp_path)
    assert res.returncode == 2
    assert "nosuch" in res.stderr
    assert marker_counts(tmp_path) == {}


def test_approve_refuses_unknown_runs_and_steps(tmp_path: Path) -> None:
    run_id = _wait_for_approval(tmp_path, separate=False)
    res = cli(["approve", "20990101T000000Z-deadbeef", "gate"], tmp_path)
    assert res.returncode == 2
    assert "no run" in res.stderr
    res = cli(["approve", run_id, "nosuch"], tmp_path)
    assert res.returncode == 2
    assert "no step 'nosuch'" in res.stderr
    assert "gate" in res.stderr  # the known steps are listed
    res = cli(["approve", run_id, "b1"], tmp_path)
    assert res.returncode == 2
    assert "already completed" in res.stderr
    store = StateStore(tmp_path / ".wfctl", create=False)
    try:
        assert store.approvals(run_id) == {}
    finally:
        store.close()
    no_traceback(res.stderr)


def test_approve_with_by_records_who_decided(tmp_path: Path) -> None:
    run_id = _wait_for_approval(tmp_path, separate=False)
    assert cli(["approve", run_id, "gate", "--by", "alice"], tmp_path).returncode == 0
    res = cli(["resume", run_id, "--no-live", "--quiet"], tmp_path)
    assert res.returncode == 0, (res.stdout, res.stderr)
    report_path = Path(only_run(tmp_path)["report"])
    report = load_report(tmp_path / report_path)
    assert report["steps"]["gate"]["output"]["by"] == "alice"


def test_approve_refuses_a_step_that_is_not_an_approval(tmp_path: Path) -> None:
    run_id = _wait_for_approval(tmp_path, separate=False)
    res = cli(["approve", run_id, "deploy"], tmp_path)
    assert res.returncode == 2, res.stdout
    assert "human_approval" in res.stderr


def test_approve_refuses_someone_not_in_approvers(tmp_path: Path) -> None:
    (tmp_path / "markers").mkdir()
    (tmp_path / "gated.yaml").write_text(
        """\
workflow_id: gated
name: Gated
version: "1.0"
steps:
  - step_id: gate
    step_type: human_approval
    with: {message: "go?", approvers: [alice]}
  - step_id: deploy
    dependencies: [gate]
    action: shell
    with: {command: "echo x >> markers/$WFCTL_STEP_ID"}
""",
        encoding="utf-8",
    )
    assert cli(["run", "gated.yaml", "--no-live"], tmp_path).returncode == 4
    run_id = only_run(tmp_path)["run_id"]
    res = cli(["approve", run_id, "gate", "--by", "mallory"], tmp_path)
    assert res.returncode == 2, res.stdout
    assert "alice" in res.stderr


def test_rejected_gate_attempt_records_the_rejection(tmp_path: Path) -> None:
    run_id = _wait_for_approval(tmp_path, separate=False)
    assert cli(["approve", run_id, "gate", "--reject"], tmp_path).returncode == 0
    res = cli(["resume", run_id, "--no-live"], tmp_path)
    assert res.returncode == 1
    gate = load_report(report_path_from(res.stdout, tmp_path))["steps"]["gate"]
    assert gate["attempts"], gate
    assert gate["attempts"][-1]["error_kind"] == "rejected"
    assert "rejected" in (gate["attempts"][-1]["error"] or "")


def test_approval_timeout_applies_when_resumed_after_the_window(tmp_path: Path) -> None:
    (tmp_path / "markers").mkdir()
    (tmp_path / "gated.yaml").write_text(
        """\
workflow_id: gated
name: Gated
version: "1.0"
steps:
  - step_id: gate
    step_type: human_approval
    timeout: 1
    with: {message: "go?", on_timeout: approve}
  - step_id: deploy
    dependencies: [gate]
    action: shell
    with: {command: "echo x >> markers/$WFCTL_STEP_ID"}
""",
        encoding="utf-8",
    )
    assert cli(["run", "gated.yaml", "--no-live"], tmp_path).returncode == 4
    run_id = only_run(tmp_path)["run_id"]
    waiting_since = next(
        e["ts"]
        for e in journal_events(tmp_path / ".wfctl", run_id)
        if e.get("step_id") == "gate" and e.get("status") == "waiting"
    )
    wait_for(lambda: time.time() > waiting_since + 1.2, 10, "the approval window to close")
    res = cli(["resume", run_id, "--no-live"], tmp_path)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert marker_counts(tmp_path) == {"deploy": 1}
    report = load_report(report_path_from(res.stdout, tmp_path))
    assert report["steps"]["gate"]["output"]["by"] == "timeout"


def test_terminal_prompt_is_answered_while_another_branch_runs(tmp_path: Path) -> None:
    """On a terminal the prompt appears as soon as the gate is ready; the other branch
    keeps running meanwhile (journal timestamps), and the decision is journaled."""
    pexpect = pytest.importorskip("pexpect")
    copy_workflow("interactive.yaml", tmp_path)
    env = clean_env(TERM="xterm", COLUMNS="120", LINES="40")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "wfctl", "run", "interactive.yaml", "--report", "report.json"],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        timeout=STEP_DEADLINE,
        dimensions=(40, 120),
    )
    try:
        child.expect("approval needed for step 'gate'")
        child.expect("Ship build interactive-approval\\?")
        child.expect("approve\\? \\[y\\]es")
        child.sendline("y")
        child.expect("comment \\(optional\\): ")
        child.sendline("looks good")
        # Only now may the independent branch end.
        wait_for(lambda: (tmp_path / "markers" / "ship").exists(), STEP_DEADLINE, "ship")
        (tmp_path / "go").touch()
        child.expect(pexpect.EOF)
    finally:
        (tmp_path / "go").touch()
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    assert marker_counts(tmp_path) == {"slow": 1, "ship": 1}

    run_id = str(only_run(tmp_path)["run_id"])
    events = journal_events(tmp_path / ".wfctl", run_id)

    def ts(step: str, status: str) -> float:
        [found] = [
            e["ts"]
            for e in events
            if e["kind"] == "step_state" and e.get("step_id") == step and e["status"] == status
        ]
        return float(found)

    decided = ts("gate", "completed")
    assert ts("slow", "running") < decided < ts("slow", "completed")
    assert ts("gate", "waiting") < decided
    assert ts("ship", "completed") < ts("slow", "completed")
    report = load_report(tmp_path / "report.json")
    assert report["steps"]["gate"]["output"] == {
        "approved": True,
        "by": getpass.getuser(),
        "comment": "looks good",
    }
