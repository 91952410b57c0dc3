"""`--log-format json`: one JSON object per event on stderr (masked), for log shippers;
stdout keeps the summary (or, with --json, the report and nothing else)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from cli_helpers import DATA as RUN_DATA
from cli_helpers import ROOT, Run, clean_env, parse_utc, wfctl

DATA = ROOT / "tests" / "data" / "observe"
SECRET = "tok-S3cr3t-991"


def _run(cwd: Path, workflow: Path, *args: str) -> Run:
    shutil.copy(workflow, cwd / workflow.name)
    env = clean_env(OBSERVE_TOKEN=SECRET)
    return wfctl(["run", workflow.name, "--log-format", "json", *args], cwd, env)


def _objects(stderr: str) -> list[dict[str, Any]]:
    lines = stderr.splitlines()
    assert lines, "no log lines"
    objects = [json.loads(line) for line in lines]  # every line is one whole object
    assert all(isinstance(o, dict) for o in objects)
    return objects


def test_one_json_object_per_event_masked(tmp_path: Path) -> None:
    run = _run(tmp_path, DATA / "traced.yaml", "--report", "report.json")
    assert run.rc == 1, run
    objects = _objects(run.stderr)
    report = run.report()
    assert {o["run_id"] for o in objects} == {report["execution_id"]}
    for o in objects:
        parse_utc(o["time"])
        assert o["level"] in ("info", "warning", "error")
    kinds = [o["event"] for o in objects]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert {"step_state", "retry_scheduled", "step_output"} <= set(kinds)
    states = [(o["step_id"], o["status"]) for o in objects if o["event"] == "step_state"]
    assert ("flaky", "retrying") in states and ("leak", "failed") in states
    failed = next(o for o in objects if o.get("status") == "failed" and o["event"] == "step_state")
    assert failed["level"] == "error"
    assert failed["error"] == "bad token ***"
    assert failed["error_kind"] == "timeout"
    greet = next(o for o in objects if o.get("step_id") == "greet" and o.get("agent"))
    assert greet["agent"] == "echoer"
    assert objects[-1]["status"] == "failed" and objects[-1]["level"] == "error"
    assert SECRET not in run.stderr + run.stdout
    # The summary stays on stdout, for the person reading the CI log.
    assert "failed: 5 completed, 1 failed, 1 skipped" in run.stdout
    assert "report: report.json" in run.stdout


def test_with_json_the_report_is_alone_on_stdout(tmp_path: Path) -> None:
    run = _run(tmp_path, DATA / "traced.yaml", "--json")
    assert run.rc == 1, run
    assert json.loads(run.stdout)["status"] == "failed"
    assert _objects(run.stderr)[-1]["event"] == "run_finished"


def test_an_sla_breach_is_a_json_object(tmp_path: Path) -> None:
    run = _run(tmp_path, RUN_DATA / "sla.yaml")
    assert run.rc == 0, run
    breaches = [o for o in _objects(run.stderr) if o["event"] == "sla_breach"]
    assert len(breaches) == 1, run.stderr
    assert breaches[0]["level"] == "warning"
    assert breaches[0]["target"] == "step_max_duration"
    assert breaches[0]["step_id"] == "slow"
    assert "SLA ALERT" not in run.stderr + run.stdout


def test_the_sdks_own_warnings_are_json_too(tmp_path: Path) -> None:
    # Nothing listens on port 9: the OpenTelemetry exporter logs its retries.
    shutil.copy(DATA / "traced.yaml", tmp_path / "traced.yaml")
    env = clean_env(
        OBSERVE_TOKEN=SECRET,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
    )
    run = wfctl(["run", "traced.yaml", "--log-format", "json"], tmp_path, env)
    assert run.rc == 1, run
    objects = _objects(run.stderr)
    sdk = [o for o in objects if o["event"] == "log"]
    assert sdk, run.stderr
    assert all(o["logger"].startswith("opentelemetry") for o in sdk)
    assert {o["level"] for o in sdk} <= {"warning", "error"}
