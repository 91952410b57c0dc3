"""Ctrl-C and SIGTERM on a real `wfctl run`: exit 130, a `cancelled` report, no process left.

The workflow's shell step runs `sh -c 'echo $$ > pid; sleep 100 & sleep 100'`: a shell
with a background child and a foreground child, in the process group wfctl gives the step.
The tests wait (polling, with deadlines) for the pid file, signal wfctl, and then look
through /proc for anything still carrying the run's WFCTL_RUN_ID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import DATA, clean_env, load_report

START_DEADLINE = 40.0  # a loaded machine takes long to import the engine
EXIT_DEADLINE = 10.0
GONE_DEADLINE = 10.0

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/environ").exists(), reason="needs Linux /proc to find processes"
)


def wait_for(predicate: Callable[[], bool], deadline: float, what: str) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}")
        time.sleep(0.02)


class Wfctl:
    """A `wfctl run` subprocess whose stdout/stderr are collected by threads as they come."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wfctl", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def __repr__(self) -> str:
        return f"rc={self.proc.returncode}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose environment contains `marker` (e.g. WFCTL_RUN_ID=...)."""
    needle = marker.encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[-1].split()[0]
        if needle in env + b"\0" and state != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def cleanup(workdir: Path) -> None:
    """Kill whatever a run in `workdir` left behind: never leak `sleep 100`s into the machine."""
    pid_file = workdir / "pid"
    if pid_file.exists() and pid_file.read_text().strip().isdigit():
        with contextlib.suppress(OSError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    kill_all(processes_with(f"WFCTL_WORKDIR_TEST={workdir}"))


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    shutil.copy(DATA / "signals.yaml", tmp_path / "signals.yaml")
    yield tmp_path
    cleanup(tmp_path)


def start(workdir: Path, workflow: str) -> Wfctl:
    # WFCTL_WORKDIR_TEST tags wfctl and its children, for the cleanup in `workdir`
    env = clean_env(WFCTL_WORKDIR_TEST=str(workdir))
    return Wfctl(["run", workflow, "--no-live", "--report", "r.json"], workdir, env)


def shell_pid(workdir: Path) -> int:
    pid_file = workdir / "pid"
    wait_for(
        lambda: pid_file.exists() and pid_file.read_text().strip().isdigit(),
        START_DEADLINE,
        "the shell step to write its pid",
    )
    return int(pid_file.read_text())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_cancels_the_run(workdir: Path, sig: signal.Signals) -> None:
    run = start(workdir, "signals.yaml")
    try:
        pid = shell_pid(workdir)
        assert alive(pid)
        sent = time.monotonic()
        run.proc.send_signal(sig)
        rc = run.wait(EXIT_DEADLINE)
        took = time.monotonic() - sent
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.wait(5)
    assert rc == 130, run
    assert took < EXIT_DEADLINE
    assert "Traceback" not in run.stderr, run
    assert "interrupted" in run.stderr, run

    report = load_report(workdir / "r.json")
    assert report["status"] == "cancelled"
    assert report["exit_code"] == 130
    assert report["steps"]["hang"]["status"] in ("failed", "cancelled")
    assert "cancel" in (report["steps"]["hang"]["error"] or "")
    assert report["steps"]["never"]["status"] == "skipped"
    assert "not started" in (report["steps"]["never"]["skipped_reason"] or "")
    assert "cancelled" in run.stdout and "report: r.json" in run.stdout, run

    marker = f"WFCTL_RUN_ID={report['execution_id']}"
    wait_for(lambda: not alive(pid), GONE_DEADLINE, f"the step's shell {pid} to die")
    wait_for(
        lambda: not processes_with(marker),
        GONE_DEADLINE,
        f"the step's children to die (left: {processes_with(marker)})",
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_right_after_start_still_writes_a_cancelled_report(
    workdir: Path, sig: signal.Signals
) -> None:
    run = start(workdir, "signals.yaml")
    try:
        wait_for(lambda: "started" in run.stdout, START_DEADLINE, "the 'run ... started' line")
        run.proc.send_signal(sig)
        rc = run.wait(EXIT_DEADLINE)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.wait(5)
    assert rc == 130, run
    assert "Traceback" not in run.stderr, run
    report = load_report(workdir / "r.json")
    assert report["status"] == "cancelled"


@dataclass
class DoubleCtrlC:
    run: Wfctl
    workdir: Path
    shell: int  # pid of the step's shell
    took: float  # seconds from the second ^C to wfctl's exit


@pytest.fixture(scope="module")
def double_ctrl_c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DoubleCtrlC]:
    """^C, then ^C again while the step (which ignores SIGTERM) is still being cancelled."""
    workdir = tmp_path_factory.mktemp("double_ctrl_c")
    shutil.copy(DATA / "stubborn.yaml", workdir / "stubborn.yaml")
    run = start(workdir, "stubborn.yaml")
    try:
        pid = shell_pid(workdir)
        run.proc.send_signal(signal.SIGINT)
        wait_for(lambda: "interrupted" in run.stderr, EXIT_DEADLINE, "the first ^C message")
        sent = time.monotonic()
        run.proc.send_signal(signal.SIGINT)
        run.wait(EXIT_DEADLINE)
        yield DoubleCtrlC(run, workdir, pid, time.monotonic() - sent)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.wait(5)
        cleanup(workdir)


def test_second_ctrl_c_exits_at_once(double_ctrl_c: DoubleCtrlC) -> None:
    """The step ignores SIGTERM, so cancelling takes the 2 s grace; a second ^C doesn't wait."""
    assert double_ctrl_c.run.proc.returncode == 130, double_ctrl_c.run
    assert double_ctrl_c.took < 1.5, f"the second ^C took {double_ctrl_c.took:.2f}s"


def test_second_ctrl_c_leaves_no_process_behind(double_ctrl_c: DoubleCtrlC) -> None:
    pid = double_ctrl_c.shell
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not alive(pid), 1.0, "the stubborn shell to die")
    assert not alive(pid), "the step's shell outlived wfctl"
    # Exiting at once means no report; the journal still has the run (show/resume work).


def test_sla_alert_for_a_step_still_running(tmp_path: Path) -> None:
    """A hung step's SLA breach is reported while it runs, not only once it ends."""
    (tmp_path / "hang.yaml").write_text(
        "workflow_id: hang\nname: Hang\nversion: '1'\ntimeout: 60\n"
        "sla_targets:\n  step_max_duration: {wait: 0.2}\n"
        "steps:\n"
        "  - step_id: wait\n    action: shell\n"
        "    with: {command: 'while [ ! -f release ]; do sleep 0.05; done'}\n",
        encoding="utf-8",
    )
    proc = Wfctl(["run", "hang.yaml", "--report", "report.json"], tmp_path, clean_env())
    try:
        # The step cannot end before the test creates `release`, so an alert seen first
        # was raised while the step was running.
        wait_for(lambda: "SLA ALERT" in proc.stdout, 30, "the SLA alert")
        assert "wait" in proc.stdout.split("SLA ALERT", 1)[1].splitlines()[0]
        (tmp_path / "release").touch()
        assert proc.wait(timeout=30) == 0, proc
    finally:
        (tmp_path / "release").touch()
        if proc.proc.poll() is None:
            proc.proc.kill()
    [breach] = load_report(tmp_path / "report.json")["sla"]["breaches"]
    assert breach["target"] == "step_max_duration"
    assert (breach["step_id"], breach["limit"]) == ("wait", 0.2)
    assert breach["actual"] > 0.2
