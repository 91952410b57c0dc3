"""A failed step's output where CI users look: the plain log, the end summary, the JSON
report (`output_tail`) and the JUnit test case (`system-out`/`system-err`).

The fixture fails a shell step twice, each attempt writing 30 stdout lines and coloured,
control-laden stderr that echoes a secret; every run is the real CLI in a subprocess, and
every JUnit file it writes is checked against the Jenkins XSD.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from ci_schemas import assert_valid_junit
from cli_helpers import ANSI, ROOT, Run, wfctl_many
from junitparser import Failure, JUnitXml, Skipped

from wfctl.report.from_journal import report_from_journal
from wfctl.state.store import open_store

FIXTURE = ROOT / "tests" / "data" / "junit" / "coloured-fail.yaml"
SECRET = "S3cr3t-Value-42"
CONTROL = ("\x1b", "\x01", "\x07")

SCENARIOS = {
    "tail3": ["--tail", "3", "--junit", "junit.xml", "--report", "report.json"],
    "default": ["--junit", "junit.xml", "--report", "report.json"],
    "none": ["--tail", "0", "--junit", "junit.xml", "--report", "report.json"],
    "quiet": ["--quiet", "--tail", "2", "--report", "report.json"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    specs = {}
    for name, extra in SCENARIOS.items():
        cwd = tmp_path_factory.mktemp(name)
        shutil.copy(FIXTURE, cwd / FIXTURE.name)
        specs[name] = (["run", FIXTURE.name, "-i", f"token={SECRET}", *extra], cwd)
    return wfctl_many(specs)


def block(step: str, stream: str, lines: list[str], total: int, indent: str = "  ") -> str:
    head = (
        f"{indent}{step} {stream}"
        + (f" (last {len(lines)} of {total} lines)" if total > len(lines) else "")
        + ":\n"
    )
    return head + "".join(f"{indent}| {line}\n" for line in lines)


def attempt_lines(first: int, last: int, attempt: int = 2) -> list[str]:
    return [f"out {i} of attempt {attempt}" for i in range(first, last + 1)]


STDERR_SHOWN = ["attempt 2 gave up", "error: token *** rejected link"]


def test_plain_log_shows_the_failed_attempts_tail_right_after_its_line(
    runs: dict[str, Run],
) -> None:
    run = runs["tail3"]
    assert run.rc == 1, run
    log = run.stdout
    failed_at = log.index(" build failed: command exited with code 1: error: token *** rejected")
    after = log[log.index("\n", failed_at) + 1 :]
    expected = block("build", "stdout", attempt_lines(28, 30), 30) + block(
        "build", "stderr", STDERR_SHOWN, 2
    )
    assert after.startswith(expected), run
    # The first attempt's output is not mixed in, nothing raw reaches the log.
    assert "of attempt 1" not in log
    assert SECRET not in log + run.stderr
    assert not ANSI.search(log) and not any(c in log for c in CONTROL)


def test_end_summary_repeats_the_tail_before_the_report_line(runs: dict[str, Run]) -> None:
    run = runs["tail3"]
    summary = run.stdout[run.stdout.index("\nfailed: ") + 1 :]
    lines = summary.splitlines()
    assert lines[-1] == "report: report.json"
    expected = block("build", "stdout", attempt_lines(28, 30), 30) + block(
        "build", "stderr", STDERR_SHOWN, 2
    )
    assert expected in summary, run


def test_report_keeps_the_tail_masked_as_written(runs: dict[str, Run]) -> None:
    report = runs["tail3"].report()
    tail = report["steps"]["build"]["output_tail"]
    assert tail["stdout"] == attempt_lines(28, 30)
    assert tail["lines"] == {"stdout": 30, "stderr": 2}
    assert tail["stderr"][0] == "attempt 2 gave up"
    # The report is data: the line as the step wrote it (colours kept), the secret masked.
    assert tail["stderr"][1].startswith("\x1b[1;31merror:\x1b[0m token *** rejected \x01")
    assert SECRET not in str(report)
    assert report["steps"]["prepare"]["output_tail"] is None
    assert report["steps"]["ship"]["output_tail"] is None


def test_default_tail_is_20_lines(runs: dict[str, Run]) -> None:
    run = runs["default"]
    report = run.report()
    assert report["steps"]["build"]["output_tail"]["stdout"] == attempt_lines(11, 30)
    assert block("build", "stdout", attempt_lines(11, 30), 30) in run.stdout


def test_tail_0_shows_and_keeps_none(runs: dict[str, Run]) -> None:
    run = runs["none"]
    assert run.rc == 1, run
    assert "build stdout" not in run.stdout and "| out" not in run.stdout
    assert run.report()["steps"]["build"]["output_tail"] is None
    case = junit_cases(run.cwd / "junit.xml")["build"]
    assert case.system_out is None and case.system_err is None


def test_quiet_still_shows_the_failure_and_its_tail(runs: dict[str, Run]) -> None:
    run = runs["quiet"]
    assert "prepare" not in run.stdout  # quiet: only failures and the end
    assert block("build", "stderr", STDERR_SHOWN, 2) in run.stdout
    assert block("build", "stdout", attempt_lines(29, 30), 30) in run.stdout


def junit_cases(path: Path) -> dict[str, Any]:
    assert_valid_junit(path)
    [suite] = list(JUnitXml.fromfile(str(path)))
    return {case.name: case for case in suite}


def test_junit_is_valid_and_carries_the_tail(runs: dict[str, Run]) -> None:
    run = runs["tail3"]
    raw = (run.cwd / "junit.xml").read_text(encoding="utf-8")
    assert not any(c in raw for c in CONTROL) and SECRET not in raw
    cases = junit_cases(run.cwd / "junit.xml")
    build = cases["build"]
    [failure] = build.result
    assert isinstance(failure, Failure)
    assert failure.type == "exit_code"
    assert failure.message == "command exited with code 1: error: token *** rejected link"
    assert build.system_out == "".join(f"{line}\n" for line in attempt_lines(28, 30))
    assert build.system_err == "attempt 2 gave up\nerror: token *** rejected link\n"
    assert cases["prepare"].is_passed and cases["prepare"].system_out is None
    assert isinstance(cases["ship"].result[0], Skipped)


def test_report_rebuilt_from_the_journal_has_the_same_tail(runs: dict[str, Run]) -> None:
    run = runs["default"]
    report = run.report()
    store = open_store(run.cwd / ".wfctl", create=False)
    try:
        row = store.run(report["execution_id"])
        assert row is not None
        rebuilt = report_from_journal(store, row)
    finally:
        store.close()
    assert rebuilt["steps"]["build"]["output_tail"] == report["steps"]["build"]["output_tail"]
