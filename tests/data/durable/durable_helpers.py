"""Helpers shared by the durability tests (test_durable_crash, test_approval, test_runs_cli).

Every wfctl process here is a real `python -m wfctl` subprocess with a clean environment,
started in the test's temporary directory, with stdin from /dev/null (no terminal).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from cli_helpers import clean_env, cli  # noqa: E402, F401 (re-exported to the durable tests)
DURABLE = Path(__file__).resolve().parent
STEP_DEADLINE = 60.0  # a loaded machine takes long to import the engine
CMD_TIMEOUT = 90.0


def wfctl(
    args: Iterable[str], cwd: Path, timeout: float = CMD_TIMEOUT, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `python -m wfctl ARGS` to its end; stdout/stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "wfctl", *args],
        cwd=cwd,
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(args: Iterable[str], cwd: Path, **env: str) -> subprocess.Popen[str]:
    """Start `python -m wfctl ARGS` in the background; stdout/stderr to files in cwd."""
    n = len(list(cwd.glob(".proc-*.out")))
    out = (cwd / f".proc-{n}.out").open("w")
    err = (cwd / f".proc-{n}.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wfctl", *args],
        cwd=cwd,
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        text=True,
    )
    out.close()
    err.close()
    proc.out_path = cwd / f".proc-{n}.out"  # type: ignore[attr-defined]
    proc.err_path = cwd / f".proc-{n}.err"  # type: ignore[attr-defined]
    return proc


def output_of(proc: subprocess.Popen[str]) -> tuple[str, str]:
    return (
        proc.out_path.read_text(encoding="utf-8"),  # type: ignore[attr-defined]
        proc.err_path.read_text(encoding="utf-8"),  # type: ignore[attr-defined]
    )


def stop(proc: subprocess.Popen[str]) -> None:
    """Kill a background wfctl that a failed test left behind (by its own pid)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def wait_for(predicate: Callable[[], bool], deadline: float, what: str) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}")
        time.sleep(0.01)


def sigkill_once(proc: subprocess.Popen[str], ready: Path) -> None:
    """SIGKILL `proc` once the file `ready` exists (failing if it ended before)."""
    try:
        wait_for(lambda: ready.exists() or proc.poll() is not None, STEP_DEADLINE, str(ready))
        assert proc.poll() is None, f"the run ended before the kill: {output_of(proc)}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop(proc)


def copy_workflow(name: str, dest: Path, as_name: str | None = None) -> Path:
    """Copy a fixture workflow into dest (plus an empty markers/ directory)."""
    target = dest / (as_name or name)
    shutil.copyfile(DURABLE / name, target)
    (dest / "markers").mkdir(exist_ok=True)
    return target


def marker_counts(directory: Path) -> dict[str, int]:
    """Lines in each markers/<step id> file."""
    markers = directory / "markers"
    if not markers.is_dir():
        return {}
    return {
        p.name: len(p.read_text(encoding="utf-8").splitlines())
        for p in sorted(markers.iterdir())
        if p.is_file()
    }


def runs_json(cwd: Path, *args: str, separate: bool = False) -> list[dict[str, Any]]:
    """`wfctl runs --json ARGS` (in this process unless `separate`: then a subprocess)."""
    res = (wfctl if separate else cli)(["runs", "--json", *args], cwd)
    assert res.returncode == 0, res.stderr
    data: list[dict[str, Any]] = json.loads(res.stdout)
    return data


def only_run(cwd: Path, *args: str, separate: bool = False) -> dict[str, Any]:
    rows = runs_json(cwd, *args, separate=separate)
    assert len(rows) == 1, rows
    return rows[0]


def report_path_from(stdout: str, cwd: Path) -> Path:
    """The `report: PATH` line of a run's summary, resolved against cwd."""
    found = re.findall(r"^report: (.+)$", stdout, re.M)
    assert found, f"no 'report:' line in:\n{stdout}"
    path = Path(found[-1])
    return path if path.is_absolute() else cwd / path


@functools.cache
def _report_validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads((ROOT / "schemas" / "report.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def load_report(path: Path) -> dict[str, Any]:
    """A report, validated against schemas/report.schema.json."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in _report_validator().iter_errors(data)
    ]
    assert not errors, errors
    return data


def journal_events(state_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """Every journaled event of a run, in order (read through the StateStore)."""
    from wfctl.state.store import StateStore

    store = StateStore(state_dir, create=False)
    try:
        return [e for _, e in store.events(run_id)]
    finally:
        store.close()


def processes_of_run(run_id: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries WFCTL_RUN_ID=<run_id>."""
    needle = f"WFCTL_RUN_ID={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if needle in environ.split(b"\0") and stat.rsplit(")", 1)[-1].split()[0] != "Z":
            found.append(int(entry.name))
    return found


def kill_processes_of_run(run_id: str) -> None:
    """Clean-up only: SIGKILL what a run left behind (found by its own run id)."""
    for pid in processes_of_run(run_id):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text
    assert "internal error" not in text, text


def checkpoint_channels(state_dir: Path, run_id: str) -> set[str]:
    """Channels with a write in the run's LangGraph checkpoint file (`__interrupt__`,
    `steps`, ...)."""
    import sqlite3

    conn = sqlite3.connect(state_dir / "langgraph" / f"{run_id}.sqlite")
    try:
        return {str(r[0]) for r in conn.execute("SELECT DISTINCT channel FROM writes")}
    finally:
        conn.close()
