"""Fault injection on the state file (issue 15 item 7): disk full while a run writes its
journal, and damaged content (a bad JSON row, a damaged index row, a dropped table,
flipped bytes). Each gives one clear error naming the file and what is damaged, never a
traceback; other runs stay readable; `wfctl doctor` names every problem; nothing that
completed is lost or run again."""

from __future__ import annotations

import json
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import RUN_TIMEOUT, clean_env, cli, wfctl

MARKED = """\
workflow_id: marked
name: marked
steps:
  - {step_id: a, action: shell, with: {command: "echo x >> markers/a"}}
  - step_id: b
    dependencies: [a]
    action: shell
    with: {command: "echo x >> markers/b; seq 1 300000"}
  - {step_id: c, action: shell, dependencies: [b], with: {command: "echo x >> markers/c"}}
"""

QUICK = """\
workflow_id: quick
name: quick
steps:
  - {step_id: a, action: noop}
  - {step_id: b, action: noop, dependencies: [a]}
"""


def _markers(cwd: Path) -> dict[str, int]:
    return {
        p.name: len(p.read_text(encoding="utf-8").splitlines())
        for p in sorted((cwd / "markers").iterdir())
    }


def _file_size_limit(limit: int) -> object:
    def limit_files() -> None:
        # A disk that fills: writes past `limit` bytes fail with EFBIG, not a signal.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files


def _run_ids(cwd: Path) -> list[str]:
    res = cli(["runs", "--json"], cwd)
    assert res.returncode == 0, res.stderr
    return [r["run_id"] for r in json.loads(res.stdout)]


def test_disk_full_stops_the_run_with_one_error_and_resume_finishes_it(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(MARKED, encoding="utf-8")
    (tmp_path / "markers").mkdir()
    full = subprocess.run(
        [sys.executable, "-m", "wfctl", "run", "wf.yaml", "--no-live"],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT * 2,
        preexec_fn=_file_size_limit(2_000_000),
        check=False,
    )
    assert full.returncode == 70, full.stderr
    assert "Traceback" not in full.stderr and "internal error" not in full.stderr
    assert "error: cannot write .wfctl/state.db" in full.stderr
    (run_id,) = _run_ids(tmp_path)
    assert f"wfctl resume {run_id}" in full.stderr
    assert _markers(tmp_path) == {"a": 1, "b": 1}
    # With space again: a (completed and journaled) is not run again; b and c run.
    resumed = wfctl(["resume", run_id, "--no-live"], tmp_path, timeout=RUN_TIMEOUT * 2)
    assert resumed.rc == 0, resumed
    assert _markers(tmp_path) == {"a": 1, "b": 2, "c": 1}


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, str, str]:
    """A state dir with two completed runs: (cwd, older id, newer id)."""
    (tmp_path / "wf.yaml").write_text(QUICK, encoding="utf-8")
    for _ in range(2):
        assert cli(["run", "wf.yaml", "--no-live"], tmp_path).returncode == 0
    newer, older = _run_ids(tmp_path)
    return tmp_path, older, newer


def _sql(cwd: Path, sql: str, *params: str) -> None:
    conn = sqlite3.connect(cwd / ".wfctl" / "state.db")
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def _one_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 70, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: .wfctl/state.db"), res.stderr
    for needle in needles:
        assert needle in lines[0]


def test_a_bad_journal_row_is_named_and_other_runs_stay_readable(
    two_runs: tuple[Path, str, str],
) -> None:
    cwd, older, newer = two_runs
    _sql(cwd, "UPDATE events SET data = '{bad' WHERE run_id = ? AND seq = 1", older)
    _one_error(cli(["show", older], cwd), f"run {older}'s journal row 1 is damaged")
    _one_error(cli(["approve", older, "a"], cwd), "journal row 1")
    assert cli(["show", newer], cwd).returncode == 0
    assert _run_ids(cwd) == [newer, older]  # the index is fine
    doctor = cli(["doctor"], cwd)
    assert doctor.returncode == 1
    assert f"run {older}'s journal row 1 is damaged" in doctor.stdout
    assert newer not in doctor.stdout.split("damaged (")[0].replace(older, "")


def test_a_damaged_index_row_hides_only_its_run(two_runs: tuple[Path, str, str]) -> None:
    cwd, older, newer = two_runs
    _sql(cwd, "UPDATE runs SET inputs = '[[' WHERE run_id = ?", older)
    res = cli(["runs", "--json"], cwd)
    assert res.returncode == 0
    assert [r["run_id"] for r in json.loads(res.stdout)] == [newer]
    assert f"the index row of run {older} is damaged" in res.stderr
    _one_error(cli(["resume", older], cwd), f"the index row of run {older} is damaged")


def test_a_dropped_table_is_named_by_doctor_and_commands(two_runs: tuple[Path, str, str]) -> None:
    cwd, older, _ = two_runs
    _sql(cwd, "DROP TABLE events")
    _one_error(cli(["show", older], cwd), "no such table: events")
    doctor = cli(["doctor"], cwd)
    assert doctor.returncode == 1
    assert "table 'events' is missing" in doctor.stdout


def test_flipped_bytes_are_found_by_doctor_without_a_traceback(
    two_runs: tuple[Path, str, str],
) -> None:
    cwd, older, newer = two_runs
    db = cwd / ".wfctl" / "state.db"
    data = bytearray(db.read_bytes())
    for offset in range(2 * 4096 + 100, len(data), 997):
        data[offset] ^= 0xFF
    db.write_bytes(bytes(data))
    doctor = cli(["doctor"], cwd)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "damaged" in doctor.stdout
    for command in (["runs"], ["show", older], ["show", newer]):
        res = cli(command, cwd)
        assert res.returncode in (0, 70), res.stderr
        assert "Traceback" not in res.stderr and "internal error" not in res.stderr


def test_doctor_on_a_sound_file_says_ok(two_runs: tuple[Path, str, str]) -> None:
    cwd, _, _ = two_runs
    doctor = cli(["doctor"], cwd)
    assert doctor.returncode == 0, doctor.stdout
    assert ".wfctl/state.db: ok: 2 runs," in doctor.stdout
