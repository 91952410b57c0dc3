"""A run SIGKILLed inside a sub-workflow's step, at the top level, inside a matrix cell and
in a call of a workflow of the file's `workflows:`, resumes inside the child: nothing that
had completed runs again (each step appends its tag to markers/<step>), and the run
completes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data" / "durable"))

from durable_helpers import (
    journal_events,
    kill_processes_of_run,
    load_report,
    no_traceback,
    only_run,
    report_path_from,
    sigkill_once,
    start,
    wfctl,
)

from wfctl.model import StepStatus
from wfctl.state.replay import replay

DATA = Path(__file__).parents[1] / "data" / "subflow"
LOCAL = Path(__file__).parents[1] / "data" / "subflow_templates"

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")


def _kill_while_held(
    tmp_path: Path,
    workflow: str,
    data: Path = DATA,
    ids: tuple[str, ...] = ("before", "call", "call.first", "call.gate", "call.last", "after"),
) -> tuple[str, set[str]]:
    """Run `workflow` until its held gate step starts, SIGKILL it; (run id, completed)."""
    shutil.copytree(data, tmp_path, dirs_exist_ok=True)
    (tmp_path / "markers").mkdir()
    sigkill_once(start(["run", workflow, "--no-live"], tmp_path), tmp_path / "markers" / "waiting")
    run_id = str(only_run(tmp_path)["run_id"])
    kill_processes_of_run(run_id)  # the held gate's shell outlives its killed parent
    (tmp_path / "markers" / "killed").touch()
    ids = (*ids, "cells")
    replayed = replay(ids, journal_events(tmp_path / ".wfctl", run_id))
    completed = {s for s, r in replayed.records.items() if r.status is StepStatus.COMPLETED}
    return run_id, completed


def _resume(tmp_path: Path, run_id: str) -> dict[str, dict[str, object]]:
    try:
        res = wfctl(["resume", run_id, "--no-live"], tmp_path)
    finally:
        kill_processes_of_run(run_id)
    no_traceback(res.stderr)
    assert res.returncode == 0, (res.stdout, res.stderr)
    report = load_report(report_path_from(res.stdout, tmp_path))
    assert report["status"] == "completed"
    steps: dict[str, dict[str, object]] = report["steps"]
    return steps


def _lines(tmp_path: Path, name: str) -> list[str]:
    return (tmp_path / "markers" / name).read_text().split()


def test_sigkill_inside_a_sub_workflow_then_resume_runs_nothing_completed_again(
    tmp_path: Path,
) -> None:
    run_id, completed = _kill_while_held(tmp_path, "crash_call.yaml")
    assert {"before", "call.first"} <= completed and "call.gate" not in completed, completed
    steps = _resume(tmp_path, run_id)
    assert _lines(tmp_path, "before") == ["c"]
    assert _lines(tmp_path, "first") == ["c"]  # completed inside the child: not again
    assert _lines(tmp_path, "gate") == ["c", "c"]  # in flight when killed: runs again
    assert _lines(tmp_path, "last") == ["c"]
    assert _lines(tmp_path, "after") == ["c"]
    assert steps["call.last"]["parent"] == "call"
    assert steps["call"]["status"] == "completed"


def test_sigkill_inside_a_matrix_cells_sub_workflow_then_resume_runs_nothing_completed(
    tmp_path: Path,
) -> None:
    run_id, completed = _kill_while_held(tmp_path, "crash_matrix.yaml")
    assert {"cells[0]", "cells[0].call", "cells[1].call.first"} <= completed, completed
    steps = _resume(tmp_path, run_id)
    assert _lines(tmp_path, "first") == ["p", "q", "r"]
    assert _lines(tmp_path, "gate") == ["p", "q", "q", "r"]
    assert _lines(tmp_path, "last") == ["p", "q", "r"]
    assert steps["cells[1].call.gate"]["parent"] == "cells[1].call"
    assert steps["cells"]["output"]["iterations"] == 3  # type: ignore[index]


def test_sigkill_inside_a_call_of_a_local_workflow_then_resume_runs_nothing_completed(
    tmp_path: Path,
) -> None:
    ids = tuple(f"{c}{s}" for c in ("a", "b") for s in ("", ".first", ".gate", ".last"))
    run_id, completed = _kill_while_held(tmp_path, "crash.yaml", LOCAL, ids)
    assert {"a", "b.first"} <= completed and "b.gate" not in completed, completed
    steps = _resume(tmp_path, run_id)
    assert _lines(tmp_path, "first") == ["a", "b"]  # completed before the kill: not again
    assert _lines(tmp_path, "gate") == ["a", "b", "b"]  # in flight when killed: again
    assert _lines(tmp_path, "last") == ["a", "b"]
    assert steps["b.last"]["parent"] == "b"
    assert steps["b"]["status"] == "completed"
