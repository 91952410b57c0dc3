"""`wfctl run` exports OpenTelemetry traces to a real OTLP/HTTP receiver on 127.0.0.1: a
span per run, step and attempt, with status, error kind, agent and retry attributes, and
nothing of a secret. Driven through the real CLI (subprocesses)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ROOT, Run, clean_env, wfctl

DATA = ROOT / "tests" / "data" / "observe"
SECRET = "tok-S3cr3t-991"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


def _attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind)
    return out


def _spans(server: Any) -> dict[str, Any]:
    spans = [
        span
        for request in server.received.bodies
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), [s.name for s in spans]
    return named


def _run(tmp_path: Path, *args: str, **env: str) -> Run:
    shutil.copy(DATA / "traced.yaml", tmp_path / "traced.yaml")
    return wfctl(
        ["run", "traced.yaml", "--no-live", "--report", "report.json", *args],
        tmp_path,
        env=clean_env(OBSERVE_TOKEN=SECRET, **env),
    )


@pytest.fixture
def traced(tmp_path: Path, otlp: Any) -> tuple[Run, dict[str, Any], Any]:
    run = _run(
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp.server_port}",
        OTEL_SERVICE_NAME="ci-pipeline",
        TRACEPARENT=f"00-{TRACE_ID}-{PARENT_SPAN}-01",
    )
    assert run.rc == 1, run
    return run, _spans(otlp), otlp


def test_a_span_per_run_step_and_attempt(traced: tuple[Run, dict[str, Any], Any]) -> None:
    run, spans, server = traced
    assert set(server.received.paths) == {"/v1/traces"}
    assert set(spans) == {
        "run traced",
        *(f"step {s}" for s in ("flaky", "checks", "unit", "lint", "greet", "leak", "after")),
        "flaky attempt 1",
        "flaky attempt 2",
        *(f"{s} attempt 1" for s in ("checks", "unit", "lint", "greet", "leak")),
    }
    root = spans["run traced"]
    trace_ids = {span.trace_id.hex() for span in spans.values()}
    assert trace_ids == {TRACE_ID}  # the caller's TRACEPARENT: one trace with the CI job
    assert root.parent_span_id.hex() == PARENT_SPAN
    assert _attrs(root)["wfctl.run_id"] == run.report()["execution_id"]
    assert _attrs(root)["wfctl.run.status"] == "failed"
    assert root.status.code == root.status.STATUS_CODE_ERROR
    for step in ("flaky", "checks", "greet", "leak", "after"):
        assert spans[f"step {step}"].parent_span_id == root.span_id, step
    for child in ("unit", "lint"):
        assert spans[f"step {child}"].parent_span_id == spans["step checks"].span_id
    for name, span in spans.items():
        if " attempt " in name:
            step = spans[f"step {name.split(' attempt ')[0]}"]
            assert span.parent_span_id == step.span_id, name
        assert root.start_time_unix_nano <= span.start_time_unix_nano, name
        assert span.start_time_unix_nano <= span.end_time_unix_nano <= root.end_time_unix_nano


def test_status_error_kind_agent_and_retry_attributes(
    traced: tuple[Run, dict[str, Any], Any],
) -> None:
    _, spans, _ = traced
    first, second = spans["flaky attempt 1"], spans["flaky attempt 2"]
    assert first.status.code == first.status.STATUS_CODE_ERROR
    assert "exited with code 3" in first.status.message
    assert _attrs(first)["error.type"] == "exit_code"
    assert _attrs(first)["wfctl.step.status"] == "retrying"
    assert _attrs(first)["wfctl.attempt"] == 1
    assert _attrs(first)["wfctl.max_attempts"] == 3
    assert second.status.code == second.status.STATUS_CODE_OK
    assert _attrs(second)["wfctl.attempt"] == 2
    flaky = spans["step flaky"]
    assert _attrs(flaky)["wfctl.retried"] is True
    assert [e.name for e in flaky.events] == ["retry_scheduled"]
    assert _attrs(flaky)["wfctl.step.status"] == "completed"

    greet = spans["greet attempt 1"]
    assert _attrs(greet)["wfctl.agent"] == "echoer"
    assert _attrs(spans["step greet"])["wfctl.agent"] == "echoer"
    assert _attrs(spans["step unit"])["wfctl.container"] == "checks"

    leak = spans["step leak"]
    assert leak.status.code == leak.status.STATUS_CODE_ERROR
    assert _attrs(leak)["error.type"] == "timeout"
    after = spans["step after"]
    assert _attrs(after)["wfctl.step.status"] == "skipped"
    assert "run failed" in _attrs(after)["wfctl.skipped_reason"]


def test_resource_and_no_secret_in_any_span(traced: tuple[Run, dict[str, Any], Any]) -> None:
    _, _, server = traced
    resource = server.received.bodies[0].resource_spans[0].resource
    attrs = {kv.key: kv.value.string_value for kv in resource.attributes}
    assert attrs["service.name"] == "ci-pipeline"  # OTEL_SERVICE_NAME wins over ours
    assert attrs["service.version"]
    raw = b"".join(body.SerializeToString() for body in server.received.bodies)
    assert SECRET.encode() not in raw
    assert b"bad token ***" in raw


def test_traces_endpoint_variable_and_default_service_name(tmp_path: Path, otlp: Any) -> None:
    url = f"http://127.0.0.1:{otlp.server_port}/custom/traces"
    run = _run(tmp_path, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=url)
    assert run.rc == 1, run
    assert set(otlp.received.paths) == {"/custom/traces"}
    resource = otlp.received.bodies[0].resource_spans[0].resource
    attrs = {kv.key: kv.value.string_value for kv in resource.attributes}
    assert attrs["service.name"] == "wfctl"
    assert "run traced" in _spans(otlp)


def test_the_sdk_switch_turns_traces_off(tmp_path: Path, otlp: Any) -> None:
    # --otel with OTEL_SDK_DISABLED=true: OpenTelemetry's own switch wins.
    endpoint = f"http://127.0.0.1:{otlp.server_port}"
    off = _run(tmp_path, "--otel", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SDK_DISABLED="true")
    assert off.rc == 1, off
    assert otlp.received.bodies == []
    (tmp_path / "again").mkdir()
    on = _run(tmp_path / "again", "--otel", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    assert on.rc == 1, on
    assert "run traced" in _spans(otlp)


def test_an_unreachable_collector_does_not_change_the_outcome(tmp_path: Path) -> None:
    run = _run(
        tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_EXPORTER_OTLP_TIMEOUT="2"
    )
    assert run.rc == 1, run
    assert run.report()["status"] == "failed"
