"""Durable runs end to end: SIGKILL a real `wfctl run` at several points, `wfctl resume` it.

The workflow (tests/data/durable/crash.yaml) is a chain a -> b -> c -> d -> e with a
parallel branch a -> side -> d; every step appends one line to markers/<step id> and
then sleeps, so after k marker lines some steps have completed and one or two are in
flight. Which steps had completed when the process died is read from the journal (the
state store) of the killed process, not guessed from timing.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "data" / "durable"))

from durable_helpers import (
    STEP_DEADLINE,
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
    start,
    stop,
    wait_for,
    wfctl,
)

from wfctl.model import StepStatus
from wfctl.state.lock import RunLock
from wfctl.state.replay import replay

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/environ").exists(), reason="needs Linux /proc to find processes"
)

STEPS = ("a", "b", "side", "c", "d", "e")


def _state_at_kill(tmp_path: Path, run_id: str) -> tuple[set[str], set[str]]:
    """(completed, in flight) per the killed process's journal."""
    replayed = replay(STEPS, journal_events(tmp_path / ".wfctl", run_id))
    completed = {s for s, r in replayed.records.items() if r.status is StepStatus.COMPLETED}
    in_flight = {
        s
        for s, r in replayed.records.items()
        if r.status in (StepStatus.RUNNING, StepStatus.RETRYING)
    }
    return completed, in_flight


def _start_and_signal(tmp_path: Path, after_lines: int, sig: int) -> tuple[str, str]:
    """Start crash.yaml, send `sig` once `after_lines` marker lines exist.

    Returns the run id and its status as `wfctl runs --json` shows it."""
    copy_workflow("crash.yaml", tmp_path)
    proc = start(["run", "crash.yaml", "--no-live"], tmp_path)
    try:
        wait_for(
            lambda: sum(marker_counts(tmp_path).values()) >= after_lines or proc.poll() is not None,
            STEP_DEADLINE,
            f"{after_lines} marker lines",
        )
        assert proc.poll() is None, f"the run ended before the kill point: {output_of(proc)}"
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        stop(proc)
    out, err = output_of(proc)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, (out, err)
        no_traceback(err)
    run = only_run(tmp_path)
    return str(run["run_id"]), str(run["status"])


@pytest.mark.parametrize("kill_after", [1, 2, 3, 4, 5])
def test_sigkill_then_resume_runs_each_completed_step_once(tmp_path: Path, kill_after: int) -> None:
    run_id, status = _start_and_signal(tmp_path, kill_after, signal.SIGKILL)
    try:
        # The kernel released the dead owner's lock: the run shows as interrupted.
        assert status == "interrupted"
        # Steps of the killed process live on (nothing can stop them on SIGKILL); let
        # them finish so the marker counts are final before the resume.
        wait_for(lambda: not processes_of_run(run_id), 20, "orphaned step processes")
        completed, in_flight = _state_at_kill(tmp_path, run_id)
        assert completed | in_flight, "the kill landed before any step started"
        before = marker_counts(tmp_path)

        res = wfctl(["resume", run_id, "--no-live"], tmp_path)
        no_traceback(res.stderr)
        assert res.returncode == 0, (res.stdout, res.stderr)
    finally:
        kill_processes_of_run(run_id)

    after = marker_counts(tmp_path)
    for step in STEPS:
        assert after.get(step, 0) >= 1, (step, after)
        if step in completed:
            assert after[step] == 1, f"completed step {step} ran again: {before} -> {after}"
        elif step in in_flight:
            assert after[step] <= 2, f"in-flight step {step}: {before} -> {after}"
        else:
            assert after[step] == 1, f"step {step} (not started) ran twice: {after}"

    report = load_report(report_path_from(res.stdout, tmp_path))
    assert report["execution_id"] == run_id
    assert report["status"] == "completed"
    assert report["exit_code"] == 0
    assert report["error"] is None
    assert report["waiting_for"] == []
    assert set(report["steps"]) == set(STEPS)
    for step, data in report["steps"].items():
        assert data["status"] == "completed", (step, data)
        attempts = data["attempts"]
        assert [a["number"] for a in attempts] == list(range(1, len(attempts) + 1)), attempts
        assert attempts[-1]["error"] is None
        if step in in_flight:
            # The interrupted attempt of the first process is part of the record.
            assert len(attempts) == 2, (step, attempts)
            assert attempts[0]["error_kind"] == "cancelled", attempts
            assert "interrupted" in attempts[0]["error"], attempts
        else:
            assert len(attempts) == 1, (step, attempts)
    # The report covers the whole run: it starts with the first process.
    first_attempt = min(a["started_at"] for d in report["steps"].values() for a in d["attempts"])
    assert report["started_at"] <= first_attempt
    # Steps completed before the kill kept their recorded outputs (reused, not re-run).
    for step in completed:
        assert report["steps"][step]["output"]["exit_code"] == 0
    assert only_run(tmp_path)["status"] == "completed"


def test_cancelled_run_can_be_resumed_to_completion(tmp_path: Path) -> None:
    run_id, status = _start_and_signal(tmp_path, 2, signal.SIGINT)
    try:
        assert status == "cancelled"
        completed, _ = _state_at_kill(tmp_path, run_id)
        assert "a" in completed
        res = cli(["resume", run_id, "--no-live"], tmp_path)
        no_traceback(res.stderr)
        assert res.returncode == 0, (res.stdout, res.stderr)
    finally:
        kill_processes_of_run(run_id)
    after = marker_counts(tmp_path)
    assert set(after) == set(STEPS), after
    for step in completed:
        assert after[step] == 1, after
    assert all(n <= 2 for n in after.values()), after
    report = load_report(report_path_from(res.stdout, tmp_path))
    assert report["status"] == "completed"
    assert all(s["status"] == "completed" for s in report["steps"].values()), report["steps"]
    # The steps Ctrl-C stopped keep their cancelled attempt.
    cancelled = [
        step
        for step, s in report["steps"].items()
        if any(a["error_kind"] == "cancelled" for a in s["attempts"])
    ]
    assert cancelled, report["steps"]
    for step in cancelled:
        assert len(report["steps"][step]["attempts"]) == 2
    assert only_run(tmp_path)["status"] == "completed"


# -- resume semantics ------------------------------------------------------------------

QUICK = """\
workflow_id: quick
name: Quick
version: "1.0"
steps:
  - step_id: one
    action: shell
    with: {command: "echo x >> markers/$WFCTL_STEP_ID"}
  - step_id: two
    dependencies: [one]
    action: shell
    with: {command: "echo x >> markers/$WFCTL_STEP_ID"}
"""


def test_resuming_a_completed_run_says_so_and_runs_nothing(tmp_path: Path) -> None:
    (tmp_path / "quick.yaml").write_text(QUICK, encoding="utf-8")
    (tmp_path / "markers").mkdir()
    first = cli(["run", "quick.yaml", "--no-live"], tmp_path)
    assert first.returncode == 0, first.stderr
    run_id = only_run(tmp_path)["run_id"]
    events = len(journal_events(tmp_path / ".wfctl", run_id))

    res = cli(["resume", run_id], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "already completed" in res.stdout + res.stderr
    assert marker_counts(tmp_path) == {"one": 1, "two": 1}
    assert len(journal_events(tmp_path / ".wfctl", run_id)) == events

    # A unique prefix of the id names the run too.
    res = cli(["resume", run_id[:20]], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "already completed" in res.stdout + res.stderr


def test_resuming_an_unknown_run_is_a_usage_error(tmp_path: Path) -> None:
    # Nothing ever ran here: no state at all.
    res = cli(["resume", "20990101T000000Z-deadbeef"], tmp_path)
    assert res.returncode == 2
    no_traceback(res.stderr)
    assert res.stderr.strip(), "no message"
    assert not (tmp_path / ".wfctl" / "state.db").exists(), "resume created a state file"

    (tmp_path / "quick.yaml").write_text(QUICK, encoding="utf-8")
    (tmp_path / "markers").mkdir()
    assert cli(["run", "quick.yaml", "--no-live"], tmp_path).returncode == 0
    res = cli(["resume", "20990101T000000Z-deadbeef"], tmp_path)
    assert res.returncode == 2
    no_traceback(res.stderr)
    assert "no run '20990101T000000Z-deadbeef'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


APPROVAL_ONLY = """\
workflow_id: gated
name: Gated
version: "1.0"
steps:
  - step_id: gate
    step_type: human_approval
    with: {message: "go?"}
  - step_id: deploy
    dependencies: [gate]
    action: shell
    with: {command: "echo x >> markers/$WFCTL_STEP_ID"}
"""


def _waiting_run(tmp_path: Path) -> str:
    (tmp_path / "gated.yaml").write_text(APPROVAL_ONLY, encoding="utf-8")
    (tmp_path / "markers").mkdir(exist_ok=True)
    res = cli(["run", "gated.yaml", "--no-live"], tmp_path)
    assert res.returncode == 4, (res.stdout, res.stderr)
    return str(only_run(tmp_path)["run_id"])


def test_resume_is_refused_after_the_workflow_file_changed_unless_forced(
    tmp_path: Path,
) -> None:
    run_id = _waiting_run(tmp_path)
    assert cli(["approve", run_id, "gate"], tmp_path).returncode == 0
    wf = tmp_path / "gated.yaml"
    wf.write_text(wf.read_text(encoding="utf-8") + "# edited after the run started\n")

    res = cli(["resume", run_id, "--no-live"], tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    no_traceback(res.stderr)
    assert "--force" in res.stderr
    assert "changed" in res.stderr
    assert marker_counts(tmp_path) == {}

    res = cli(["resume", run_id, "--no-live", "--force"], tmp_path)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert marker_counts(tmp_path) == {"deploy": 1}


def test_resume_is_refused_while_another_process_owns_the_run(tmp_path: Path) -> None:
    run_id = _waiting_run(tmp_path)
    assert cli(["approve", run_id, "gate"], tmp_path).returncode == 0
    state = tmp_path / ".wfctl"
    events = len(journal_events(state, run_id))
    lock = RunLock(state, run_id)
    assert lock.acquire()
    try:
        res = wfctl(["resume", run_id, "--no-live"], tmp_path)  # a separate process
        assert res.returncode == 2, (res.stdout, res.stderr)
        no_traceback(res.stderr)
        assert "another wfctl process" in res.stderr
        assert run_id in res.stderr
    finally:
        lock.release()
    # The refused resume touched nothing.
    assert marker_counts(tmp_path) == {}
    assert len(journal_events(state, run_id)) == events
    res = cli(["resume", run_id, "--no-live"], tmp_path)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert marker_counts(tmp_path) == {"deploy": 1}


def test_waiting_run_resumed_without_a_decision_waits_again(tmp_path: Path) -> None:
    run_id = _waiting_run(tmp_path)
    res = cli(["resume", run_id, "--no-live"], tmp_path)
    assert res.returncode == 4, (res.stdout, res.stderr)
    assert f"wfctl approve {run_id} gate" in res.stdout
    assert marker_counts(tmp_path) == {}
    assert only_run(tmp_path)["status"] == "waiting_approval"


def test_resuming_a_timed_out_run_does_not_roll_back_twice(tmp_path: Path) -> None:
    (tmp_path / "markers").mkdir()
    (tmp_path / "slow.yaml").write_text(
        """\
workflow_id: slow
name: Slow
version: "1.0"
timeout: 1
steps:
  - step_id: a
    action: shell
    with: {command: "echo x >> markers/$WFCTL_STEP_ID"}
    rollback_actions: [undo_a]
  - step_id: slow
    dependencies: [a]
    action: shell
    with: {command: "sleep 5"}
  - step_id: undo_a
    action: shell
    with: {command: "echo x >> markers/$WFCTL_STEP_ID"}
""",
        encoding="utf-8",
    )
    first = cli(["run", "slow.yaml", "--no-live"], tmp_path)
    assert first.returncode == 3, (first.stdout, first.stderr)
    assert marker_counts(tmp_path) == {"a": 1, "undo_a": 1}
    run_id = only_run(tmp_path)["run_id"]
    res = cli(["resume", run_id, "--no-live"], tmp_path)
    no_traceback(res.stderr)
    assert res.returncode != 0
    # The run was already rolled back once: the rollback must not run again.
    assert marker_counts(tmp_path) == {"a": 1, "undo_a": 1}


def test_resume_from_another_directory_with_an_explicit_state_dir(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state = tmp_path / "state"
    (project / "gated.yaml").write_text(APPROVAL_ONLY, encoding="utf-8")
    (project / "markers").mkdir()
    res = cli(["run", "gated.yaml", "--no-live", "--state-dir", str(state)], project)
    assert res.returncode == 4, res.stderr
    run_id = only_run(project, "--state-dir", str(state))["run_id"]
    assert cli(["approve", run_id, "gate", "--state-dir", str(state)], elsewhere).returncode == 0
    res = cli(["resume", run_id, "--no-live", "--state-dir", str(state)], elsewhere)
    no_traceback(res.stderr)
    assert res.returncode == 0, (res.stdout, res.stderr)
    # The step ran where the run started.
    assert marker_counts(project) == {"deploy": 1}
