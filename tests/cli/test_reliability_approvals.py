"""Approvals (issue 15 item 8): a decision from another terminal reaches the live run, an
approval window closes while the run is alive, approvers are checked against who is
deciding (the OS user, or the identity command), and `resume --force` refuses a plan
whose journaled steps are gone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data" / "durable"))

from durable_helpers import (
    STEP_DEADLINE,
    clean_env,
    cli,
    journal_events,
    marker_counts,
    no_traceback,
    only_run,
    output_of,
    start,
    stop,
    wait_for,
    wfctl,
)

# The gate waits while `slow` runs on; `slow` ends only once `deploy` ran (or after a
# bound, failing, so that a run that cannot hear the decision fails instead of hanging).
LIVE = """\
workflow_id: live
name: live
steps:
  - step_id: gate
    step_type: human_approval
    {timeout}
    with: {{message: "go?", on_timeout: approve}}
  - step_id: deploy
    dependencies: [gate]
    action: shell
    with: {{command: "echo x >> markers/deploy"}}
  - step_id: slow
    action: shell
    with:
      command: >-
        for i in $(seq 1 1200); do [ -e markers/deploy ] && exit 0; sleep 0.05; done; exit 1
"""


def _write(tmp_path: Path, text: str, name: str = "wf.yaml") -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "markers").mkdir(exist_ok=True)


def _gate_waiting(tmp_path: Path) -> bool:
    rows = cli(["runs", "--json"], tmp_path)
    if rows.returncode != 0 or rows.stdout.strip() in ("", "[]"):
        return False
    run_id = only_run(tmp_path)["run_id"]
    return any(
        e.get("step_id") == "gate" and e.get("status") == "waiting"
        for e in journal_events(tmp_path / ".wfctl", run_id)
    )


def test_an_approval_from_another_terminal_reaches_the_live_run(tmp_path: Path) -> None:
    _write(tmp_path, LIVE.format(timeout=""))
    proc = start(["run", "wf.yaml", "--no-live"], tmp_path)
    try:
        wait_for(lambda: _gate_waiting(tmp_path) or proc.poll() is not None, STEP_DEADLINE, "gate")
        assert proc.poll() is None, output_of(proc)
        run_id = only_run(tmp_path)["run_id"]
        res = cli(["approve", run_id, "gate", "--comment", "ship it"], tmp_path)
        assert res.returncode == 0, res.stderr
        assert "the live run takes it up now" in res.stdout
        assert proc.wait(timeout=STEP_DEADLINE) == 0, output_of(proc)
    finally:
        stop(proc)
    _, err = output_of(proc)
    no_traceback(err)
    assert marker_counts(tmp_path) == {"deploy": 1}
    assert only_run(tmp_path)["status"] == "completed"
    gate = [
        e
        for e in journal_events(tmp_path / ".wfctl", run_id)
        if e.get("step_id") == "gate" and e.get("status") == "completed"
    ]
    assert gate[0]["output"]["comment"] == "ship it"


def test_an_approval_window_closes_while_the_run_is_alive(tmp_path: Path) -> None:
    _write(tmp_path, LIVE.format(timeout="timeout: 1"))
    res = wfctl(["run", "wf.yaml", "--no-live"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert marker_counts(tmp_path) == {"deploy": 1}
    assert "gate completed" in res.stdout


GATED = """\
workflow_id: gated
name: gated
steps:
  - step_id: gate
    step_type: human_approval
    with: {message: "go?", approvers: [alice]}
  - step_id: deploy
    dependencies: [gate]
    action: shell
    with: {command: "echo x >> markers/deploy"}
"""


def _waiting_gated(tmp_path: Path) -> str:
    _write(tmp_path, GATED)
    assert cli(["run", "wf.yaml", "--no-live"], tmp_path).returncode == 4
    return str(only_run(tmp_path)["run_id"])


def test_approve_by_someone_else_is_refused_under_an_identity(tmp_path: Path) -> None:
    run_id = _waiting_gated(tmp_path)
    as_bob = {"WFCTL_IDENTITY_COMMAND": "echo bob"}
    res = wfctl(["approve", run_id, "gate", "--by", "alice"], tmp_path, **as_bob)
    assert res.returncode == 2
    assert "--by alice: you are 'bob'" in res.stderr
    res = wfctl(["approve", run_id, "gate"], tmp_path, **as_bob)
    assert res.returncode == 2
    assert "'bob' is not an approver of 'gate' (approvers: alice)" in res.stderr
    res = wfctl(["approve", run_id, "gate"], tmp_path, WFCTL_IDENTITY_COMMAND="echo alice")
    assert res.returncode == 0, res.stderr
    assert "approved by alice" in res.stdout
    bad = wfctl(["approve", run_id, "gate"], tmp_path, WFCTL_IDENTITY_COMMAND="false")
    assert bad.returncode == 2
    assert "$WFCTL_IDENTITY_COMMAND (false) exited 1" in bad.stderr


def test_pre_approval_by_someone_not_an_approver_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, GATED)
    res = wfctl(
        ["run", "wf.yaml", "--no-live", "--approve", "gate"],
        tmp_path,
        WFCTL_IDENTITY_COMMAND="echo bob",
    )
    assert res.returncode == 2
    assert "--approve: 'bob' is not an approver of 'gate'" in res.stderr
    assert marker_counts(tmp_path) == {}


def test_the_terminal_prompt_asks_only_an_approver(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    _write(tmp_path, GATED)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "wfctl", "run", "wf.yaml"],
        cwd=str(tmp_path),
        env=clean_env(TERM="xterm", COLUMNS="120", LINES="40", WFCTL_IDENTITY_COMMAND="echo bob"),
        encoding="utf-8",
        timeout=STEP_DEADLINE,
        dimensions=(40, 120),
    )
    try:
        child.expect("waits for one of alice \\(you are bob\\)")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 4, child.before
    assert "approve? [y]es" not in (child.before or "")
    assert marker_counts(tmp_path) == {}


def test_resume_force_refuses_a_renamed_waiting_step(tmp_path: Path) -> None:
    run_id = _waiting_gated(tmp_path)
    (tmp_path / "wf.yaml").write_text(
        GATED.replace("step_id: gate", "step_id: gate2").replace("[gate]", "[gate2]"),
        encoding="utf-8",
    )
    before = len(journal_events(tmp_path / ".wfctl", run_id))
    res = cli(["resume", run_id, "--force", "--no-live"], tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"no longer has step(s) gate of run {run_id} (renamed or removed)" in res.stderr
    assert marker_counts(tmp_path) == {}
    assert len(journal_events(tmp_path / ".wfctl", run_id)) == before
    assert only_run(tmp_path)["status"] == "waiting_approval"
