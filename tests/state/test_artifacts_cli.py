"""The per-run artifacts directory through the real CLI, on both engines: a step leaves a
file in `$WFCTL_ARTIFACTS` and a later step reads it; the report, `wfctl show` and
`--dry-run` say where it is; a run SIGKILLed and resumed keeps it (same run id, same
directory) and does not run its completed step again."""

from __future__ import annotations

import json
import shutil
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data" / "durable"))

from durable_helpers import (
    cli,
    kill_processes_of_run,
    load_report,
    no_traceback,
    only_run,
    sigkill_once,
    start,
    wfctl,
)

DATA = Path(__file__).parents[1] / "data" / "artifacts"
ENGINES = ("events", "langgraph")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_step_reads_what_an_earlier_step_left_in_wfctl_artifacts(
    tmp_path: Path, engine: str
) -> None:
    shutil.copy(DATA / "handoff.yaml", tmp_path)
    args = ["--state-dir", "state", "--no-live", "--report", "r.json", "--engine", engine]
    res = cli(["run", "handoff.yaml", *args], tmp_path)
    assert res.returncode == 0, (res.stdout, res.stderr)
    report = load_report(tmp_path / "r.json")
    run_id = report["execution_id"]
    where = (tmp_path / "state" / "runs" / run_id / "artifacts").resolve()
    assert report["artifacts_dir"] == str(where)
    # b read a's file; `workflow.artifacts` is the same directory as $WFCTL_ARTIFACTS.
    assert report["steps"]["b"]["output"]["stdout"] == f"built by a\n{where}\n"
    assert (where / "x.txt").read_text() == "built by a\n"
    for level in (where, where.parent, where.parent.parent):
        assert _mode(level) == 0o700, (level, oct(_mode(level)))
    show = cli(["show", run_id, "--state-dir", "state"], tmp_path)
    assert show.returncode == 0, show.stderr
    assert f"artifacts: {where}" in show.stdout.splitlines()


def test_dry_run_says_which_artifacts_directory_a_run_would_use(tmp_path: Path) -> None:
    shutil.copy(DATA / "handoff.yaml", tmp_path)
    expected = str((tmp_path / "state" / "runs" / "RUN_ID" / "artifacts").resolve())
    plan = cli(["run", "handoff.yaml", "--dry-run", "--json", "--state-dir", "state"], tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["artifacts_dir"] == expected
    text = cli(["run", "handoff.yaml", "--dry-run", "--state-dir", "state"], tmp_path)
    assert f"  artifacts (WFCTL_ARTIFACTS): {expected}" in text.stdout.splitlines()
    assert not (tmp_path / "state").exists()  # nothing was run, nor made


@pytest.mark.parametrize("engine", ENGINES)
def test_a_resumed_run_finds_the_files_its_killed_process_left(tmp_path: Path, engine: str) -> None:
    shutil.copy(DATA / "killed.yaml", tmp_path)
    (tmp_path / "markers").mkdir()
    proc = start(["run", "killed.yaml", "--no-live", "--engine", engine], tmp_path)
    sigkill_once(proc, tmp_path / "markers" / "waiting")  # two holds: one has completed
    run_id = str(only_run(tmp_path)["run_id"])
    try:
        kill_processes_of_run(run_id)  # two's shell outlives its killed parent
        (tmp_path / "markers" / "killed").touch()  # two reads the file instead of holding
        res = wfctl(["resume", run_id, "--no-live", "--report", "r.json"], tmp_path)
    finally:
        kill_processes_of_run(run_id)
    no_traceback(res.stderr)
    assert res.returncode == 0, (res.stdout, res.stderr)
    report = load_report(tmp_path / "r.json")
    where = (tmp_path / ".wfctl" / "runs" / run_id / "artifacts").resolve()
    assert report["artifacts_dir"] == str(where)
    assert report["steps"]["two"]["output"]["stdout"] == "from one\n"
    assert (tmp_path / "markers" / "one").read_text() == "one\n"  # completed: not run again
