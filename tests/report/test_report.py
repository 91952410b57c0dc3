"""The JSON report of `wfctl run`, its JUnit rendering and `wfctl report PATH`.

Every report read here is validated against schemas/report.schema.json (Draft 2020-12,
with format checking): completed, failed, timed-out and waiting runs here, cancelled ones
in test_run_signals.py. The runs are real `python -m wfctl run` subprocesses, each in a
temporary working directory, started together by the `runs` fixture.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ci_schemas import assert_valid_junit
from cli_helpers import (
    ANSI,
    ROOT,
    RUN_TIMEOUT,
    Run,
    clean_env,
    load_report,
    parse_utc,
    report_validator,
    wfctl,
    workspace,
)
from junitparser import Failure, JUnitXml, Skipped, TestSuite

SECRET = "S3cr3t-Value-42"
RELEASE_STEPS = (
    "build",
    "checks",
    "unit",
    "lint",
    "typecheck",
    "approve",
    "deploy",
    "smoke_test",
    "health_check",
    "undeploy",
)


def timestamps(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (where, value) timestamp of a report that is not null."""
    found = [("run.started_at", report["started_at"]), ("run.ended_at", report["ended_at"])]
    for step_id, step in report["steps"].items():
        found += [(f"{step_id}.started_at", step.get("started_at"))]
        found += [(f"{step_id}.ended_at", step.get("ended_at"))]
        for a in step["attempts"]:
            found += [(f"{step_id}#{a['number']}.started_at", a["started_at"])]
            found += [(f"{step_id}#{a['number']}.ended_at", a["ended_at"])]
    found += [(f"breach {b['target']}", b["at"]) for b in report["sla"]["breaches"]]
    return [(where, ts) for where, ts in found if ts is not None]


# -- the runs ------------------------------------------------------------------------------

# name -> (command line, split on spaces; the fixture workflows it needs)
SCENARIOS: dict[str, tuple[str, tuple[str, ...]]] = {
    "completed": (
        f"run release.yaml --approve approve -i deploy_token={SECRET} "
        "--report out/report.json --junit out/junit.xml",
        ("release.yaml",),
    ),
    # default report path, JUnit with a failure and a skip
    "failed": ("run fail.yaml --junit junit.xml", ("fail.yaml",)),
    "timeout": ("run timeout.yaml --report report.json", ("timeout.yaml",)),
    "waiting": ("run approval.yaml --report report.json", ("approval.yaml",)),
    # a secret echoed by a step and put in a failure message
    "secret": (
        f"run inputs.yaml -i who=bob -i flag=true -i token={SECRET} "
        "--report report.json --junit junit.xml",
        ("inputs.yaml",),
    ),
    "json": ("run fail.yaml --json", ("fail.yaml",)),
    "sla": ("run sla.yaml --report report.json", ("sla.yaml",)),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("report")
    began = time.time()
    procs = {}
    for name, (line, files) in SCENARIOS.items():
        args = line.split()
        cwd = workspace(base / name, *files)
        procs[name] = (
            args,
            cwd,
            subprocess.Popen(
                [sys.executable, "-m", "wfctl", *args],
                cwd=cwd,
                env=clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    results: dict[str, Run] = {}
    try:
        for name, (args, cwd, proc) in procs.items():
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
            results[name] = Run(args, cwd, proc.returncode, out, err, began, time.time())
    finally:
        for _, _, proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def report_of(run: Run) -> dict[str, Any]:
    """The report a run wrote: --report PATH, else the path it printed at the end."""
    if "--report" in run.args:
        return load_report(run.cwd / run.args[run.args.index("--report") + 1])
    printed = re.findall(r"^report: (.+)$", run.stdout + run.stderr, re.M)
    if printed:
        return load_report(run.cwd / printed[-1])
    [only] = (run.cwd / ".wfctl" / "reports").glob("*.json")
    return load_report(only)


# -- schema, per final status --------------------------------------------------------------

EXPECTED = {
    "completed": ("completed", 0),
    "failed": ("failed", 1),
    "timeout": ("timeout", 3),
    "waiting": ("waiting_approval", 4),
    "secret": ("failed", 1),
    "json": ("failed", 1),
    "sla": ("completed", 0),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_report_validates_against_its_schema(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    status, code = EXPECTED[name]
    assert run.rc == code, run
    report = report_of(run)  # validates
    assert report["status"] == status
    assert report["exit_code"] == code
    assert report["execution_id"]
    assert report["report_format"] == 1
    counts = report["metrics"]["status_counts"]
    assert sum(counts.values()) == report["metrics"]["steps_total"] == len(report["steps"])


def test_published_report_schema_is_the_one_wfctl_prints(tmp_path: Path) -> None:
    run = wfctl(["schema", "report"], tmp_path)
    assert run.rc == 0, run
    assert json.loads(run.stdout) == json.loads(
        (ROOT / "schemas" / "report.schema.json").read_text(encoding="utf-8")
    )


# -- where the report goes -----------------------------------------------------------------


def test_default_report_path_is_printed_at_the_end(runs: dict[str, Run]) -> None:
    run = runs["failed"]
    last = run.stdout.rstrip("\n").splitlines()[-1]
    m = re.fullmatch(r"report: (\.wfctl/reports/(\S+)\.json)", last)
    assert m, f"last line should name the report:\n{run}"
    report = load_report(run.cwd / m[1])
    assert report["execution_id"] == m[2]
    assert m[2] in run.stdout.splitlines()[0], "the run id announced at the start"


def test_report_option_writes_there_and_creates_the_directory(runs: dict[str, Run]) -> None:
    run = runs["completed"]
    assert (run.cwd / "out" / "report.json").is_file()
    assert run.stdout.rstrip("\n").splitlines()[-1] == "report: out/report.json"
    assert not list(run.cwd.glob(".wfctl/reports/*.json")), "--report replaces the default"


def test_json_prints_the_report_and_nothing_else_on_stdout(runs: dict[str, Run]) -> None:
    run = runs["json"]
    assert run.rc == 1, run
    report = json.loads(run.stdout)  # nothing else there
    errors = list(report_validator().iter_errors(report))
    assert not errors, errors
    assert report["status"] == "failed"
    assert "boom on purpose" in run.stderr, "the log goes to stderr"
    assert re.search(r"boom failed", run.stderr)
    assert not ANSI.search(run.stderr)
    [saved] = (run.cwd / ".wfctl" / "reports").glob("*.json")
    assert load_report(saved) == report, "the saved report is the one printed"


# -- contents ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_timestamps_are_iso8601_utc_within_the_run(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    report = report_of(run)
    window = (
        datetime.fromtimestamp(run.began - 1, UTC),
        datetime.fromtimestamp(run.finished + 1, UTC),
    )
    found = timestamps(report)
    assert len(found) >= 2 + len(report["steps"])
    for where, ts in found:
        parsed = parse_utc(ts)
        assert window[0] <= parsed <= window[1], f"{where}={ts} outside the run"
    assert parse_utc(report["started_at"]) <= parse_utc(report["ended_at"])
    for step in report["steps"].values():
        if step["started_at"] and step["ended_at"]:
            assert parse_utc(step["started_at"]) <= parse_utc(step["ended_at"])
    assert report["duration"] == pytest.approx(
        (parse_utc(report["ended_at"]) - parse_utc(report["started_at"])).total_seconds(),
        abs=0.01,
    )


def test_workflow_identity_and_sha256(runs: dict[str, Run]) -> None:
    for name in ("completed", "failed", "secret"):
        run = runs[name]
        report = report_of(run)
        file = run.args[1]
        text = (run.cwd / file).read_text(encoding="utf-8")
        assert report["workflow"]["file"] == file
        assert report["workflow"]["sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
        assert (
            report["workflow"]["sha256"]
            == hashlib.sha256((run.cwd / file).read_bytes()).hexdigest()
        )
    report = report_of(runs["completed"])
    assert report["workflow"] | {"sha256": None} == {
        "id": "release",
        "name": "Release pipeline",
        "version": "1.0",
        "file": "release.yaml",
        "sha256": None,
    }


def test_steps_keyed_by_id_with_their_story(runs: dict[str, Run]) -> None:
    report = report_of(runs["completed"])
    assert sorted(report["steps"]) == sorted(RELEASE_STEPS)
    steps = report["steps"]
    assert steps["unit"]["parent"] == "checks" and steps["build"]["parent"] is None
    assert steps["build"]["status"] == "completed"
    assert steps["build"]["output"]["stdout"].strip().endswith("app.py")
    assert len(steps["build"]["attempts"]) == 1
    assert steps["health_check"]["status"] == "skipped"
    assert "health_url" in steps["health_check"]["skipped_reason"]
    assert steps["undeploy"]["status"] == "skipped"
    assert report["vars"]["artifact"].endswith("app.py")
    assert report["wfctl_version"]

    failed = report_of(runs["failed"])["steps"]
    assert failed["boom"]["error"] == "boom on purpose"
    assert failed["boom"]["attempts"][-1]["error"] == "boom on purpose"
    assert failed["after"]["status"] == "skipped" and "boom" in failed["after"]["skipped_reason"]


def test_waiting_report_names_the_approval(runs: dict[str, Run]) -> None:
    report = report_of(runs["waiting"])
    assert report["waiting_for"] == ["gate"]
    assert report["steps"]["gate"]["status"] == "waiting"
    assert report["steps"]["ship"]["status"] == "pending"


def test_timeout_report(runs: dict[str, Run]) -> None:
    report = report_of(runs["timeout"])
    assert "timed out" in report["error"]
    assert report["steps"]["nap"]["status"] == "failed"
    assert "timed out" in report["steps"]["nap"]["error"]


def test_secret_inputs_are_masked_in_report_and_log(runs: dict[str, Run]) -> None:
    for name in ("completed", "secret"):
        run = runs[name]
        report = report_of(run)
        key = "deploy_token" if name == "completed" else "token"
        assert report["inputs"][key] == "***", report["inputs"]
        files = [p for p in run.cwd.rglob("*") if p.is_file() and p.suffix in (".json", ".xml")]
        for path in files:
            assert SECRET not in path.read_text(encoding="utf-8"), f"secret in {path}"
        assert SECRET not in run.stdout and SECRET not in run.stderr, run
    run = runs["secret"]
    steps = report_of(run)["steps"]
    assert steps["first"]["output"]["stdout"].strip() == "hello bob token=***"
    assert steps["leak"]["error"] == "token was ***"
    assert "token was ***" in run.stdout, "the failure is shown, masked"


def test_sla_block(runs: dict[str, Run]) -> None:
    sla = report_of(runs["sla"])["sla"]
    assert sla["met"] is False
    assert [b["step_id"] for b in sla["breaches"]] == ["slow"]
    ok = report_of(runs["failed"])["sla"]
    assert ok == {
        "targets": {"max_duration": None, "min_success_rate": None, "step_max_duration": {}},
        "met": True,
        "breaches": [],
    }


# -- JUnit ---------------------------------------------------------------------------------


def junit_cases(path: Path) -> dict[str, Any]:
    assert_valid_junit(path)
    xml = JUnitXml.fromfile(str(path))
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    assert len(suites) == 1
    return {case.name: case for case in suites[0]}


def test_junit_one_testcase_per_step_all_passed(runs: dict[str, Run]) -> None:
    run = runs["completed"]
    cases = junit_cases(run.cwd / "out" / "junit.xml")
    assert sorted(cases) == sorted(RELEASE_STEPS)
    skipped = sorted(n for n, c in cases.items() if any(isinstance(r, Skipped) for r in c.result))
    failed = [n for n, c in cases.items() if any(isinstance(r, Failure) for r in c.result)]
    assert skipped == ["health_check", "undeploy"]
    assert failed == []
    assert all(c.classname == "release" for c in cases.values())


def test_junit_marks_failures_and_skips(runs: dict[str, Run]) -> None:
    run = runs["failed"]
    assert_valid_junit(run.cwd / "junit.xml")
    xml = JUnitXml.fromfile(str(run.cwd / "junit.xml"))
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    [suite] = suites
    assert (suite.tests, suite.failures, suite.skipped, suite.errors) == (3, 1, 1, 0)
    cases = {case.name: case for case in suite}
    assert cases["ok"].is_passed
    [failure] = cases["boom"].result
    assert isinstance(failure, Failure) and failure.message == "boom on purpose"
    [skip] = cases["after"].result
    assert isinstance(skip, Skipped) and "boom" in (skip.message or "")


def test_junit_masks_secrets(runs: dict[str, Run]) -> None:
    cases = junit_cases(runs["secret"].cwd / "junit.xml")
    [failure] = cases["leak"].result
    assert failure.message == "token was ***"


# -- wfctl report PATH ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["completed", "failed", "timeout", "waiting", "sla"])
def test_wfctl_report_renders_a_saved_report(runs: dict[str, Run], name: str) -> None:
    report = report_of(runs[name])
    path = runs[name].cwd / "saved.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    run = wfctl(["report", "saved.json"], path.parent, clean_env(COLUMNS="200"))
    assert run.rc == 0, run
    assert run.stderr == "", run
    assert not ANSI.search(run.stdout)
    assert report["workflow"]["name"] in run.stdout
    assert report["execution_id"] in run.stdout
    for step_id, step in report["steps"].items():
        assert re.search(rf"^\S+ +{re.escape(step_id)}\s+{step['status']}\b", run.stdout, re.M), (
            f"row of {step_id} ({step['status']}) missing:\n{run.stdout}"
        )
    status = report["status"]
    assert re.search(rf"^{status} in \S+ +\(exit code {report['exit_code']}\)", run.stdout, re.M)
    assert re.search(rf"^  steps: {len(report['steps'])}\b", run.stdout, re.M), run.stdout
    if name == "sla":
        assert "SLA: 1 breach" in run.stdout
        assert re.search(r"step slow (took|has been running for)", run.stdout)
    if name == "waiting":
        assert "waiting for approval: gate" in run.stdout


def test_wfctl_report_in_a_pipe_does_not_truncate(runs: dict[str, Run]) -> None:
    report = report_of(runs["failed"])
    run = wfctl(
        [
            "report",
            str(runs["failed"].cwd / ".wfctl" / "reports" / f"{report['execution_id']}.json"),
        ],
        runs["failed"].cwd,
    )
    assert run.rc == 0, run
    assert "…" not in run.stdout, run.stdout
    assert report["started_at"] in run.stdout
    assert report["steps"]["after"]["skipped_reason"] in run.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"hello": "world"}', "not a wfctl report"),
        ("[1, 2, 3]", "not a wfctl report"),
        ("this is not json", "not a JSON report"),
        (None, "cannot read"),
    ],
    ids=["other-json", "json-array", "not-json", "missing"],
)
def test_wfctl_report_rejects_what_is_not_a_report(
    tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "thing.json").write_text(content, encoding="utf-8")
    run = wfctl(["report", "thing.json"], tmp_path)
    assert run.rc == 2, run
    assert message in run.stderr and "thing.json" in run.stderr, run
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert run.stdout == ""


def test_wfctl_report_rejects_a_report_with_a_wrong_field(
    runs: dict[str, Run], tmp_path: Path
) -> None:
    report = report_of(runs["failed"])
    report["status"] = "exploded"
    (tmp_path / "bad.json").write_text(json.dumps(report), encoding="utf-8")
    run = wfctl(["report", "bad.json"], tmp_path)
    assert run.rc == 2, run
    assert "status" in run.stderr and "exploded" in run.stderr, run
