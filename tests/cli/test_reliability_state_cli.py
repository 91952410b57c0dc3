"""Issue 15: `runs --status` finds old runs, an empty run id matches nothing, state files are
private, `wfctl report` reads a bounded amount, `show --follow` streams in a pipe and exits
as the run's result."""

from __future__ import annotations

import json
import resource
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_helpers import RUN_TIMEOUT, clean_env, cli, wfctl

from wfctl.state.lock import RunLock
from wfctl.state.store import StateStore

SHA = "ab" * 32


def _runs(state: Path, statuses: list[str]) -> list[str]:
    """Runs created oldest first with these stored statuses; their ids."""
    store = StateStore(state)
    ids = []
    try:
        for n, status in enumerate(statuses):
            run_id = f"2026010{n // 10}T0000{n % 10:02d}Z-run{n:03d}"
            store.create_run(run_id, "wf", "WF", "wf.yaml", SHA, {}, {})
            store.conn.execute(
                "UPDATE runs SET status = ?, started_at = ? WHERE run_id = ?",
                (status, 1_000_000 + n, run_id),
            )
            ids.append(run_id)
    finally:
        store.close()
    return ids


def test_runs_status_finds_an_old_failed_run_behind_many_newer_ones(tmp_path: Path) -> None:
    ids = _runs(tmp_path / ".wfctl", ["failed"] + ["completed"] * 150)
    res = cli(["runs", "--status", "failed", "-n", "1", "--json"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert [r["run_id"] for r in json.loads(res.stdout)] == [ids[0]]


def test_runs_status_interrupted_means_running_with_no_owner(tmp_path: Path) -> None:
    ids = _runs(tmp_path / ".wfctl", ["running", "running"] + ["completed"] * 30)
    lock = RunLock(tmp_path / ".wfctl", ids[1])
    assert lock.acquire()  # ids[1] has a live owner (this process): running
    try:
        res = cli(["runs", "--status", "interrupted", "--json"], tmp_path)
        assert [r["run_id"] for r in json.loads(res.stdout)] == [ids[0]]
    finally:
        lock.release()


@pytest.mark.parametrize("command", [["resume", ""], ["show", ""], ["approve", "", "a"]])
def test_an_empty_run_id_matches_no_run(tmp_path: Path, command: list[str]) -> None:
    _runs(tmp_path / ".wfctl", ["waiting_approval"])  # the only run: "" must not pick it
    res = cli(command, tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "no run ''" in res.stderr


def test_an_open_state_dir_and_database_are_made_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    StateStore(state).close()
    state.chmod(0o777)
    (state / "state.db").chmod(0o644)
    StateStore(state).close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "state.db").stat().st_mode) == 0o600


def test_a_new_state_database_and_lock_are_private(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s")
    try:
        store.create_run("r1", "wf", "WF", "wf.yaml", SHA, {}, {})  # writes the -wal file
        for name in ("state.db", "state.db-wal"):
            assert stat.S_IMODE((tmp_path / "s" / name).stat().st_mode) == 0o600, name
        lock = RunLock(tmp_path / "s", "r1")
        assert lock.acquire()
        lock.release()
        assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600
    finally:
        store.close()


def _limit_memory() -> None:
    # Today's main reads /dev/zero until memory runs out: let that be this process only.
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_report_of_dev_zero_is_refused_at_once(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "wfctl", "report", "/dev/zero"],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        preexec_fn=_limit_memory,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert "/dev/zero is not a JSON report" in res.stderr


FOLLOWED = """\
workflow_id: followed
name: followed
steps:
  - step_id: a
    action: shell
    with: {command: "until [ -e go ]; do sleep 0.02; done"}
  - {step_id: b, action: fail, dependencies: [a]}
"""


def test_show_follow_streams_in_a_pipe_and_exits_as_the_run(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(FOLLOWED, encoding="utf-8")
    env = clean_env()
    run = subprocess.Popen(
        [sys.executable, "-m", "wfctl", "run", "wf.yaml", "--no-live"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Should no line come, `go` is made anyway after a while and the check below fails.
    watchdog = threading.Timer(RUN_TIMEOUT / 2, (tmp_path / "go").touch)
    try:
        assert run.stdout is not None
        while "a running" not in run.stdout.readline():
            assert run.poll() is None, run.stderr.read() if run.stderr else ""
        run_id = json.loads(cli(["runs", "--json"], tmp_path).stdout)[0]["run_id"]
        show = subprocess.Popen(
            [sys.executable, "-m", "wfctl", "show", run_id, "--follow"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert show.stdout is not None
        watchdog.start()
        # Streamed: the running line arrives while the run is still waiting on `go`.
        while "▶ a running" not in (line := show.stdout.readline()):
            assert line, show.stderr.read() if show.stderr else ""
        assert not (tmp_path / "go").exists() and run.poll() is None
        (tmp_path / "go").touch()
        out, err = show.communicate(timeout=RUN_TIMEOUT)
        assert show.returncode == 1, err  # b failed: as `wfctl run` exits
        assert "✘ b failed" in out
        assert run.wait(timeout=RUN_TIMEOUT) == 1
    finally:
        (tmp_path / "go").touch()
        run.wait(timeout=RUN_TIMEOUT)
        watchdog.cancel()


def test_show_follow_of_an_ended_run_exits_as_its_result(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(FOLLOWED, encoding="utf-8")
    (tmp_path / "go").touch()
    ran = wfctl(["run", "wf.yaml", "--no-live"], tmp_path)
    assert ran.rc == 1, ran
    run_id = json.loads(cli(["runs", "--json"], tmp_path).stdout)[0]["run_id"]
    assert cli(["show", run_id, "--follow"], tmp_path).returncode == 1
    assert cli(["show", run_id], tmp_path).returncode == 0  # without --follow: shown, 0
