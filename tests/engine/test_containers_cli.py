"""Containers through the real CLI: a loop of pure actions ends at its timeout, and a run
killed (SIGKILL) inside a group loop's item resumes without re-running what completed."""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data" / "durable"))

from durable_helpers import (
    STEP_DEADLINE,
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
from wfctl.state.replay import replay

DATA = Path(__file__).parents[1] / "data" / "engine" / "containers"


def test_a_loop_of_pure_actions_ends_at_its_timeout(tmp_path: Path) -> None:
    """Issue 15 item 1: the loop never yielded, so its timeout never fired."""
    shutil.copyfile(DATA / "spin.yaml", tmp_path / "spin.yaml")
    # (The subprocess timeout is the failure mode of the defect: the run never ends.)
    res = wfctl(["run", "spin.yaml", "--no-live", "--report", "r.json"], tmp_path, timeout=90)
    no_traceback(res.stderr)
    assert res.returncode == 1, (res.stdout, res.stderr)
    spin = load_report(tmp_path / "r.json")["steps"]["spin"]
    assert spin["status"] == "failed"
    assert spin["error_kind"] == "timeout"
    assert spin["error"] == "loop timed out after 2s"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("workflow", ["group_crash.yaml", "matrix_crash.yaml"])
def test_sigkill_inside_a_group_item_or_matrix_cell_then_resume_reruns_nothing_completed(
    tmp_path: Path, workflow: str
) -> None:
    shutil.copyfile(DATA / workflow, tmp_path / "crash.yaml")
    (tmp_path / "markers").mkdir()
    proc = start(["run", "crash.yaml", "--no-live"], tmp_path)
    try:
        # Killed once item 1's first step has started: item 0 had completed (one item at
        # a time), item 1 is in flight.
        wait_for(
            lambda: marker_counts(tmp_path).get("mark", 0) >= 2 or proc.poll() is not None,
            STEP_DEADLINE,
            "item 1 to start",
        )
        assert proc.poll() is None, f"the run ended before the kill: {output_of(proc)}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop(proc)
    run_id = str(only_run(tmp_path)["run_id"])
    try:
        wait_for(lambda: not processes_of_run(run_id), 20, "orphaned step processes")
        replayed = replay([], journal_events(tmp_path / ".wfctl", run_id))
        completed = {s for s, r in replayed.records.items() if r.status is StepStatus.COMPLETED}
        assert "each[0]" in completed and "each[0].rest" in completed, completed
        before = marker_counts(tmp_path)
        res = wfctl(["resume", run_id, "--no-live"], tmp_path)
        no_traceback(res.stderr)
        assert res.returncode == 0, (res.stdout, res.stderr)
    finally:
        kill_processes_of_run(run_id)
    lines = {name: (tmp_path / "markers" / name).read_text().split() for name in ("mark", "rest")}
    # Every item's steps ran; none that had completed ran again.
    for name in ("mark", "rest"):
        for item in "0123":
            count = lines[name].count(item)
            was_done = f"each[{item}].{name}" in completed
            assert count == 1 if was_done else 1 <= count <= 2, (name, item, before, lines)
    report = load_report(report_path_from(res.stdout, tmp_path))
    assert report["status"] == "completed"
    steps = report["steps"]
    assert {f"each[{i}]" for i in range(4)} <= set(steps)
    assert steps["each[1].mark"]["parent"] == "each[1]"
    assert steps["each[1]"]["parent"] == "each"
    assert all(steps[f"each[{i}].rest"]["status"] == "completed" for i in range(4))
    assert steps["each"]["output"]["iterations"] == 4


def test_validate_names_what_a_loop_body_cannot_hold_with_file_and_line(tmp_path: Path) -> None:
    shutil.copyfile(DATA / "loop_body_approval.yaml", tmp_path / "bad.yaml")
    res = wfctl(["validate", "bad.yaml"], tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    out = res.stdout + res.stderr
    no_traceback(out)
    assert (
        "bad.yaml:9:20 steps[0].steps[0].step_type: 'ok' is a human_approval step inside "
        "the body of loop 'each' (loop-body)"
    ) in out
    assert "bad.yaml:12:19 steps[0].steps[2].step_id: 'undo' runs as a handler" in out


def test_validate_rejects_steps_beside_an_action(tmp_path: Path) -> None:
    (tmp_path / "both.yaml").write_text(
        "workflow_id: both\nname: both\nsteps:\n"
        "  - step_id: each\n    step_type: loop\n    for_each: [1]\n    action: noop\n"
        "    steps:\n      - {step_id: a, action: noop}\n"
    )
    res = wfctl(["validate", "both.yaml"], tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "both.yaml:4:" in res.stdout + res.stderr
    no_traceback(res.stderr)


def test_the_matrix_build_example_runs_every_cell_through_the_cli(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "workflows" / "matrix-build.yaml"
    res = wfctl(["run", str(example), "--no-live", "--report", "r.json"], tmp_path)
    no_traceback(res.stderr)
    assert res.returncode == 0, (res.stdout, res.stderr)
    steps = load_report(tmp_path / "r.json")["steps"]
    assert steps["build"]["output"]["iterations"] == 4
    artifacts = [steps[f"build[{i}].package"]["output"]["artifact"] for i in range(4)]
    assert artifacts == [
        "pkg-linux-3.11.whl",
        "pkg-linux-3.12.whl",
        "pkg-macos-3.12.whl",
        "pkg-windows-3.12.whl",
    ]
    # `when` per cell: lint runs in the first cell only; package still runs (none_failed).
    assert steps["build[0].lint"]["status"] == "completed"
    assert steps["build[3].lint"]["status"] == "skipped"
    assert steps["wait_green"]["output"]["iterations"] == 2
    assert steps["summary"]["output"]["stdout"].strip() == "built 4 cells"


def test_validate_rejects_a_matrix_beside_for_each_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "workflow_id: m\nname: m\nsteps:\n"
        "  - step_id: cells\n    step_type: loop\n    for_each: [1]\n"
        "    matrix: {os: [a]}\n    action: noop\n"
    )
    res = wfctl(["validate", "m.yaml"], tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    no_traceback(res.stderr)
    assert "m.yaml:4:" in res.stdout or "m.yaml:7:" in res.stdout, res.stdout
    assert "matrix" in res.stdout
