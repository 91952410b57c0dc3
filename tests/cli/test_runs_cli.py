"""`wfctl runs` / `wfctl show` over the state store, several processes on one state file,
and a state file that is not ours (corrupt or foreign): a clear error, never a traceback,
never a change to the file."""

from __future__ import annotations

import json
import random
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data" / "durable"))

from cli_helpers import parse_utc
from durable_helpers import (
    DURABLE,
    STEP_DEADLINE,
    clean_env,
    cli,
    copy_workflow,
    marker_counts,
    no_traceback,
    only_run,
    output_of,
    runs_json,
    start,
    stop,
    wait_for,
    wfctl,
)

from wfctl.state.lock import RunLock
from wfctl.state.store import StateStore

QUICK = """\
workflow_id: quick
name: Quick
version: "1.0"
steps:
  - {step_id: one, action: noop}
  - {step_id: two, action: noop, dependencies: [one]}
"""

FAILING = """\
workflow_id: failing
name: Failing
version: "1.0"
steps:
  - {step_id: ok, action: noop}
  - {step_id: boom, action: fail, dependencies: [ok], with: {message: "on purpose"}}
  - {step_id: after, action: noop, dependencies: [boom]}
"""

GATED = """\
workflow_id: gated
name: Gated
version: "1.0"
steps:
  - {step_id: gate, step_type: human_approval, with: {message: "go?"}}
  - {step_id: deploy, action: noop, dependencies: [gate]}
"""


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A directory with three finished runs: quick (completed), failing (failed), gated
    (waiting_approval), started in that order."""
    root = tmp_path_factory.mktemp("history")
    ids: dict[str, str] = {}
    for name, text, code in (("quick", QUICK, 0), ("failing", FAILING, 1), ("gated", GATED, 4)):
        (root / f"{name}.yaml").write_text(text, encoding="utf-8")
        res = cli(["run", f"{name}.yaml", "--no-live"], root)
        assert res.returncode == code, (res.stdout, res.stderr)
        ids[name] = str(runs_json(root)[0]["run_id"])
    return {"root": root, "ids": ids}


# -- wfctl runs --------------------------------------------------------------------------


def test_runs_json_lists_every_run_newest_first(history: dict[str, Any]) -> None:
    rows = runs_json(history["root"])
    ids = history["ids"]
    assert [r["run_id"] for r in rows] == [ids["gated"], ids["failing"], ids["quick"]]
    by_wf = {r["workflow_id"]: r for r in rows}
    assert by_wf["quick"]["status"] == "completed"
    assert by_wf["failing"]["status"] == "failed"
    assert by_wf["gated"]["status"] == "waiting_approval"
    assert "on purpose" in by_wf["failing"]["error"]
    assert by_wf["quick"]["error"] is None
    for row in rows:
        assert set(row) >= {"run_id", "workflow_id", "status", "started_at", "duration"}
        assert row["duration"] is not None and row["duration"] >= 0
        assert (history["root"] / row["report"]).is_file()
        assert Path(row["file"]).name == f"{row['workflow_id']}.yaml"
        # ISO 8601 UTC like the report's own times, and the same instant as the report's.
        started = parse_utc(row["started_at"])
        report = json.loads((history["root"] / row["report"]).read_text("utf-8"))
        assert abs((parse_utc(report["started_at"]) - started).total_seconds()) < 1.0


def test_runs_filters_by_workflow_and_status(history: dict[str, Any]) -> None:
    root, ids = history["root"], history["ids"]
    assert [r["run_id"] for r in runs_json(root, "--workflow", "quick")] == [ids["quick"]]
    assert [r["run_id"] for r in runs_json(root, "--status", "failed")] == [ids["failing"]]
    assert [r["run_id"] for r in runs_json(root, "--status", "waiting_approval")] == [ids["gated"]]
    assert runs_json(root, "--workflow", "quick", "--status", "failed") == []
    assert runs_json(root, "--workflow", "nosuch") == []
    assert [r["run_id"] for r in runs_json(root, "--limit", "1")] == [ids["gated"]]


def test_runs_table_on_a_wide_terminal(history: dict[str, Any]) -> None:
    res = cli(["runs"], history["root"], COLUMNS="200")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    for column in ("run id", "workflow", "status", "started", "duration"):
        assert column in lines[0]
    for name, run_id in history["ids"].items():
        line = next(ln for ln in lines if run_id in ln)
        assert name in line
    assert "waiting_approval" in res.stdout
    res = cli(["runs", "--status", "completed"], history["root"], COLUMNS="200")
    assert history["ids"]["quick"] in res.stdout
    assert history["ids"]["failing"] not in res.stdout


def test_runs_table_shows_whole_run_ids_when_piped(history: dict[str, Any]) -> None:
    res = wfctl(["runs"], history["root"])
    assert res.returncode == 0, res.stderr
    for run_id in history["ids"].values():
        assert run_id in res.stdout, res.stdout
    assert "waiting_approval" in res.stdout, res.stdout


def test_runs_with_no_state_yet(tmp_path: Path) -> None:
    res = cli(["runs", "--json"], tmp_path)
    assert res.returncode == 0
    assert json.loads(res.stdout) == []
    res = cli(["runs"], tmp_path)
    assert res.returncode == 0
    no_traceback(res.stderr)
    assert not (tmp_path / ".wfctl").exists(), "listing created the state directory"


def test_a_running_row_is_interrupted_once_no_process_owns_it(tmp_path: Path) -> None:
    state = tmp_path / ".wfctl"
    store = StateStore(state)
    try:
        store.create_run("20990101T000000Z-0000aaaa", "wf", "WF", "wf.yaml", "0" * 64, {}, {})
    finally:
        store.close()
    lock = RunLock(state, "20990101T000000Z-0000aaaa")
    assert lock.acquire()
    try:
        assert only_run(tmp_path)["status"] == "running"
        assert runs_json(tmp_path, "--status", "interrupted") == []
    finally:
        lock.release()
    assert only_run(tmp_path)["status"] == "interrupted"
    assert len(runs_json(tmp_path, "--status", "interrupted")) == 1
    assert runs_json(tmp_path, "--status", "running") == []


# -- wfctl show --------------------------------------------------------------------------


def test_show_a_finished_run_lists_every_step_and_status(history: dict[str, Any]) -> None:
    root, ids = history["root"], history["ids"]
    res = cli(["show", ids["failing"]], root, COLUMNS="120")
    assert res.returncode == 0, res.stderr
    no_traceback(res.stderr)
    lines = res.stdout.splitlines()
    assert ids["failing"] in res.stdout
    for step, status in (("ok", "completed"), ("boom", "failed"), ("after", "skipped")):
        row = next((ln for ln in lines if f" {step} " in ln), None)
        assert row is not None and status in row, (step, res.stdout)
    assert "on purpose" in res.stdout
    # A unique prefix works; the waiting run shows its waiting gate.
    res = cli(["show", ids["gated"][:22]], root, COLUMNS="120")
    assert res.returncode == 0, res.stderr
    assert "gate" in res.stdout
    assert "waiting" in res.stdout


def test_show_an_unknown_run_is_a_usage_error(history: dict[str, Any]) -> None:
    res = cli(["show", "20990101T000000Z-deadbeef"], history["root"])
    assert res.returncode == 2
    assert "no run" in res.stderr
    no_traceback(res.stderr)


def test_show_follow_ends_when_the_run_ends(tmp_path: Path) -> None:
    copy_workflow("crash.yaml", tmp_path)
    proc = start(["run", "crash.yaml", "--no-live"], tmp_path)
    try:
        wait_for(
            lambda: bool(marker_counts(tmp_path)) or proc.poll() is not None,
            STEP_DEADLINE,
            "the first step",
        )
        assert proc.poll() is None, output_of(proc)
        row = only_run(tmp_path)
        assert row["status"] == "running"
        follow = subprocess.run(
            [sys.executable, "-m", "wfctl", "show", row["run_id"], "--follow"],
            cwd=tmp_path,
            env=clean_env(COLUMNS="120"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert follow.returncode == 0, follow.stderr
        no_traceback(follow.stderr)
        assert proc.wait(timeout=30) == 0, output_of(proc)
    finally:
        stop(proc)
    # It followed the run to its end: the last view has every step completed.
    final = follow.stdout
    for step in ("a", "b", "side", "c", "d", "e"):
        assert any(f" {step} " in ln and "completed" in ln for ln in final.splitlines()), final
    assert "6 completed" in final


# -- several processes on one state file --------------------------------------------------


def _loop(tmp_path: Path, n: int, go: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(DURABLE / "cli_loop.py"), str(n), str(go), "--", *args],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_listing_and_approving_while_a_run_writes(tmp_path: Path) -> None:
    (tmp_path / "gated.yaml").write_text(GATED, encoding="utf-8")
    res = cli(["run", "gated.yaml", "--no-live"], tmp_path)
    assert res.returncode == 4, res.stderr
    waiting = only_run(tmp_path)["run_id"]
    busy_text = (DURABLE / "concurrent.yaml").read_text(encoding="utf-8")
    (tmp_path / "busy.yaml").write_text(busy_text, encoding="utf-8")

    go = tmp_path / "go"
    busy = start(["run", "busy.yaml", "--no-live"], tmp_path)
    lister = _loop(tmp_path, 20, go, "runs", "--json")
    approver = _loop(tmp_path, 10, go, "approve", waiting, "gate", "--comment", "ok")
    procs: list[subprocess.Popen[str]] = [busy, lister, approver]
    try:
        # Release both loops together once the busy run is writing its journal.
        wait_for(
            lambda: (
                busy.poll() is not None
                or any(r["workflow_id"] == "durable-busy" for r in runs_json(tmp_path))
            ),
            STEP_DEADLINE,
            "the busy run to start",
        )
        go.touch()
        lister_out, lister_err = lister.communicate(timeout=90)
        approver_out, approver_err = approver.communicate(timeout=90)
        assert busy.wait(timeout=90) == 0, output_of(busy)
    finally:
        for proc in procs:
            stop(proc)
    busy_out, busy_err = output_of(busy)
    for err in (lister_err, approver_err, busy_err, busy_out):
        assert "database is locked" not in err, err
        no_traceback(err)
    listed = json.loads(lister_out)
    approved = json.loads(approver_out)
    assert listed["codes"] == [0] * 20, listed
    assert approved["codes"] == [0] * 10, approved
    for text in listed["stderr"] + approved["stderr"]:
        assert "locked" not in text, text
    for text in listed["stdout"]:
        rows = json.loads(text)
        assert {r["run_id"] for r in rows} >= {waiting}
    # At least some listings saw the busy run while it was running.
    seen = [
        r["status"]
        for text in listed["stdout"]
        for r in json.loads(text)
        if r["workflow_id"] == "durable-busy"
    ]
    assert "running" in seen, seen

    res = cli(["resume", waiting, "--no-live"], tmp_path)
    assert res.returncode == 0, (res.stdout, res.stderr)
    statuses = {r["workflow_id"]: r["status"] for r in runs_json(tmp_path)}
    assert statuses == {"gated": "completed", "durable-busy": "completed"}


def test_runs_started_at_once_on_a_fresh_state_directory(tmp_path: Path) -> None:
    (tmp_path / "quick.yaml").write_text(QUICK, encoding="utf-8")
    procs = [start(["run", "quick.yaml", "--no-live"], tmp_path) for _ in range(3)]
    try:
        codes = [p.wait(timeout=90) for p in procs]
    finally:
        for p in procs:
            stop(p)
    outputs = [output_of(p) for p in procs]
    assert codes == [0, 0, 0], outputs
    for out, err in outputs:
        assert "locked" not in out + err
        no_traceback(err)
    rows = runs_json(tmp_path)
    assert len(rows) == 3
    assert {r["status"] for r in rows} == {"completed"}


# -- a state file that is not ours ----------------------------------------------------


def _corrupt(directory: Path) -> bytes:
    directory.mkdir(mode=0o700)
    data = random.Random(5).randbytes(16384)
    (directory / "state.db").write_bytes(data)
    return data


def _foreign(directory: Path) -> bytes:
    import sqlite3

    directory.mkdir(mode=0o700)
    conn = sqlite3.connect(directory / "state.db")
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('someone else')")
    conn.commit()
    conn.close()
    return (directory / "state.db").read_bytes()


@pytest.fixture(params=["corrupt", "foreign"])
def bad_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    state = tmp_path / ".wfctl"
    data = _corrupt(state) if request.param == "corrupt" else _foreign(state)
    (tmp_path / "quick.yaml").write_text(QUICK, encoding="utf-8")
    yield state, data
    # Whatever the command did, the file is byte-for-byte what it was, and alone.
    assert (state / "state.db").read_bytes() == data
    assert sorted(p.name for p in state.iterdir()) == ["state.db"]


def _clear_error(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 2, (res.stdout, res.stderr)
    no_traceback(res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "state.db" in lines[0]
    assert "untouched" in lines[0]


def test_run_refuses_a_state_file_that_is_not_ours(
    tmp_path: Path, bad_state: tuple[Path, bytes]
) -> None:
    res = wfctl(["run", "quick.yaml", "--no-live"], tmp_path)
    _clear_error(res)
    assert res.stdout == ""


def test_show_approve_resume_refuse_a_state_file_that_is_not_ours(
    tmp_path: Path, bad_state: tuple[Path, bytes]
) -> None:
    for args in (
        ["show", "20990101T000000Z-deadbeef"],
        ["approve", "20990101T000000Z-deadbeef", "gate"],
        ["resume", "20990101T000000Z-deadbeef"],
    ):
        _clear_error(cli(args, tmp_path))


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_runs_refuses_a_state_file_that_is_not_ours(
    tmp_path: Path, bad_state: tuple[Path, bytes], as_json: bool
) -> None:
    res = cli(["runs", "--json"] if as_json else ["runs"], tmp_path)
    _clear_error(res)


def test_state_directory_is_private(tmp_path: Path) -> None:
    (tmp_path / "quick.yaml").write_text(QUICK, encoding="utf-8")
    assert cli(["run", "quick.yaml", "--no-live"], tmp_path).returncode == 0
    assert stat.S_IMODE((tmp_path / ".wfctl").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / ".wfctl" / "locks").stat().st_mode) == 0o700
    nested = tmp_path / "some" / "state"
    res = cli(["run", "quick.yaml", "--no-live", "--state-dir", str(nested)], tmp_path)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(nested.stat().st_mode) == 0o700
    assert (nested / "state.db").is_file()
    assert len(runs_json(tmp_path, "--state-dir", str(nested))) == 1
    # WFCTL_HOME chooses the directory too.
    home = tmp_path / "home"
    res = cli(["run", "quick.yaml", "--no-live"], tmp_path, WFCTL_HOME=str(home))
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
