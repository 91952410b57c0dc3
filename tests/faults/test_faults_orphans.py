"""SIGKILL of `wfctl run` with a step in flight, then `wfctl resume` (issue 15 item 5): the
dead owner's step processes are stopped before the step runs again, so no second copy
runs beside the first, and no process of the run is left at the end. Two resumers at
once: one runs, the other is refused."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "data" / "durable"))

from durable_helpers import (
    STEP_DEADLINE,
    kill_processes_of_run,
    marker_counts,
    no_traceback,
    only_run,
    output_of,
    processes_of_run,
    start,
    stop,
    wait_for,
    wfctl,
)

# Step `a` holds an flock while it runs: a second copy beside the first cannot take it
# and says so in markers/clash. A copy runs until `release` exists; the group leader is a
# shell, its child `sleep`s, and the first copy's grandchild leaves the group (setsid)
# keeping the run's environment.
HOLDER = """\
workflow_id: holder
name: holder
steps:
  - step_id: a
    action: shell
    with:
      command: >-
        flock -n held -c 'echo x >> markers/a;
        [ -e markers/escaped.pid ] || { setsid sleep 300 & echo $! > markers/escaped.pid; };
        until [ -e release ]; do sleep 0.05; done'
        || echo x >> markers/clash
  - {step_id: b, action: shell, dependencies: [a], with: {command: "echo x >> markers/b"}}
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _killed_in_flight(tmp_path: Path) -> str:
    """Start the run, SIGKILL it while `a` runs; the run id."""
    (tmp_path / "wf.yaml").write_text(HOLDER, encoding="utf-8")
    (tmp_path / "markers").mkdir()
    proc = start(["run", "wf.yaml", "--no-live"], tmp_path)
    try:
        wait_for(
            lambda: (tmp_path / "markers" / "escaped.pid").exists() or proc.poll() is not None,
            STEP_DEADLINE,
            "step a to start",
        )
        assert proc.poll() is None, output_of(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop(proc)
    return str(only_run(tmp_path)["run_id"])


def test_resume_stops_the_dead_owners_step_before_running_it_again(tmp_path: Path) -> None:
    run_id = _killed_in_flight(tmp_path)
    try:
        escaped = int((tmp_path / "markers" / "escaped.pid").read_text())
        assert processes_of_run(run_id), "the killed run's step should still be running"
        assert _alive(escaped)
        resumer = start(["resume", run_id, "--no-live"], tmp_path)
        try:
            wait_for(
                lambda: marker_counts(tmp_path).get("a", 0) >= 2 or resumer.poll() is not None,
                STEP_DEADLINE,
                "step a to run again",
            )
            # The first copy (and its setsid grandchild) is gone before the second runs.
            assert not _alive(escaped)
            (tmp_path / "release").touch()
            assert resumer.wait(timeout=STEP_DEADLINE) == 0, output_of(resumer)
        finally:
            (tmp_path / "release").touch()
            stop(resumer)
        _, err = output_of(resumer)
        no_traceback(err)
        assert "that the earlier, dead owner of run" in err
        assert "step(s) a" in err
        counts = marker_counts(tmp_path)
        assert "clash" not in counts, "a second copy of step a ran beside the first"
        assert counts["a"] == 2 and counts["b"] == 1
        assert [p for p in processes_of_run(run_id) if p != os.getpid()] == []
    finally:
        kill_processes_of_run(run_id)


def test_two_resumers_at_once_one_runs_the_other_is_refused(tmp_path: Path) -> None:
    run_id = _killed_in_flight(tmp_path)
    try:
        first = start(["resume", run_id, "--no-live"], tmp_path)
        try:
            wait_for(
                lambda: marker_counts(tmp_path).get("a", 0) >= 2 or first.poll() is not None,
                STEP_DEADLINE,
                "the first resumer to run step a",
            )
            second = wfctl(["resume", run_id, "--no-live"], tmp_path)
            assert second.returncode == 2, second.stderr
            assert "is being run by another wfctl process now" in second.stderr
            (tmp_path / "release").touch()
            assert first.wait(timeout=STEP_DEADLINE) == 0, output_of(first)
        finally:
            (tmp_path / "release").touch()
            stop(first)
        counts = marker_counts(tmp_path)
        assert "clash" not in counts
        assert counts["a"] == 2 and counts["b"] == 1
    finally:
        kill_processes_of_run(run_id)
