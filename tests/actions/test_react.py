"""The react step through the engine, driving the real langchain-openai client over HTTP
against a scripted OpenAI-compatible server on 127.0.0.1 (tests/openai_stub.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import engine_funcs
import pytest
from cli_helpers import ROOT, assert_valid_report, clean_env
from conftest import Outcome, make_workflow, run
from openai_stub import StubServer, answer, calls, serve, status, tool_call

from wfctl.events import CircuitChanged, StepStateChanged
from wfctl.model import StepStatus

KEY = "sk-stub-0123456789"


@pytest.fixture(autouse=True)
def _reset_funcs() -> None:
    engine_funcs.reset()


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubServer]:
    with serve() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        yield server


def react(with_: str, extra: str = "", step_extra: str = "", steps: str = "") -> str:
    """A workflow with one react step `r` (its `with:` body indented by the caller)."""
    return (
        extra
        + "steps:\n  - step_id: r\n    step_type: react\n"
        + step_extra
        + "    with:\n      model: openai:gpt-4o-mini\n"
        + with_
        + steps
    )


ECHO_TOOL = """
      tools:
        - name: echo
          description: Echo the text.
          action: python
          with: {function: "engine_funcs:async_echo", args: ["{{ input.text }}"]}
          parameters:
            type: object
            properties: {text: {type: string}}
            required: [text]
"""


def go(text: str, **kw: Any) -> Outcome:
    return run(make_workflow(text), **kw)


# -- the loop ----------------------------------------------------------------------------


def test_tools_run_as_workflow_actions_with_retries_and_results_go_back(
    stub: StubServer,
) -> None:
    stub.script(
        calls(tool_call("flaky", {"key": "f"}), tool_call("echo", {"text": "hi"}, "call_2")),
        answer({"title": "T", "n": 2}),
    )
    out = go(
        react(
            "      prompt: 'Do it for {{ inputs.who }}'\n"
            "      system: Be brief.\n"
            "      output_schema: {type: object, required: [title]}\n"
            + ECHO_TOOL
            + """\
        - name: flaky
          description: Fails once.
          action: python
          with: {function: "engine_funcs:fail_times", args: ["{{ input.key }}", 1]}
          parameters: {type: object, properties: {key: {type: string}}}
""",
            extra="inputs: {who: {type: string, default: Ann}}\n",
            step_extra="    retry_policy: {max_attempts: 2, initial_delay: 0, retry_on: [error]}\n",
        )
    )
    assert out.status == "completed", out.dump()
    output = out.record("r").output
    assert output["answer"] == {"title": "T", "n": 2}  # parsed: output_schema is set
    assert engine_funcs.CALLS["f"] == 2  # the tool was retried by the step's policy
    by_name = {c["name"]: c for c in output["tool_calls"]}
    assert by_name["flaky"]["result"] == {"calls": 2}
    assert by_name["flaky"]["arguments"] == {"key": "f"}
    assert by_name["echo"]["result"] == "hi"
    assert output["iterations"] == 2
    assert output["usage"] == {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42}
    assert [m["role"] for m in output["transcript"]] == [
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    # What the model was sent: the templated prompt, the system prompt, then tool results.
    first, second = stub.chat_requests()
    assert first.messages[0]["role"] == "system"
    assert first.messages[0]["content"].startswith("Be brief.")
    assert first.messages[1] == {"role": "user", "content": "Do it for Ann"}
    assert {t["function"]["name"] for t in first.body["tools"]} == {"echo", "flaky"}
    assert sorted(second.tool_results()) == ["hi", '{"calls": 2}']
    assert first.headers.get("authorization") == f"Bearer {KEY}"
    lines = out.output_lines("r")
    assert any("[flaky] attempt 1 failed (error)" in line for line in lines)
    assert any(line.startswith("tool echo(") for line in lines)
    assert out.record("r").attempts[0].error is None


def test_a_tool_step_runs_under_its_own_timeout_and_retries(stub: StubServer) -> None:
    stub.script(calls(tool_call("slow", {})), answer("gave up on slow"))
    out = go(
        react(
            """\
      prompt: go
      tools:
        - {name: slow, description: Too slow., step: slow_tool}
""",
            steps="""
  - step_id: slow_tool
    action: python
    timeout: 0.2
    retry_policy: {max_attempts: 2, initial_delay: 0, retry_on: [timeout]}
    with: {function: "engine_funcs:probe", args: [slow, 30]}
""",
        )
    )
    assert out.status == "completed", out.dump()
    call = out.record("r").output["tool_calls"][0]
    assert call["error_kind"] == "timeout"
    assert "timed out after 0.2s" in call["error"]
    assert out.record("r").output["answer"] == "gave up on slow"
    # The named step ran as the tool (twice: its own retry policy), not in the normal flow.
    tool_record = out.record("slow_tool")
    assert [a.error_kind for a in tool_record.attempts] == ["timeout", "timeout"]
    assert out.trail("slow_tool")[0] == "running"
    assert "timed out" in stub.chat_requests()[1].tool_results()[0]


def test_arguments_violating_parameters_go_back_to_the_model(stub: StubServer) -> None:
    stub.script(
        calls(tool_call("echo", {"text": 5})),
        calls(tool_call("echo", {"text": "five"}, "call_2")),
        answer("done"),
    )
    out = go(react("      prompt: go\n" + ECHO_TOOL))
    assert out.status == "completed", out.dump()
    bad, good = out.record("r").output["tool_calls"]
    assert bad["error_kind"] == "validation"
    assert "is not of type 'string'" in bad["error"]
    assert "result" not in bad
    assert good["result"] == "five"
    assert "is not of type 'string'" in stub.chat_requests()[1].tool_results()[0]


def test_malformed_json_arguments_are_reported_to_the_model(stub: StubServer) -> None:
    stub.script(calls(tool_call("echo", '{"text": "unclosed')), answer("sorry"))
    out = go(react("      prompt: go\n" + ECHO_TOOL))
    assert out.status == "completed", out.dump()
    output = out.record("r").output
    assert output["tool_calls"][0]["error_kind"] == "validation"
    assert output["answer"] == "sorry"
    second = stub.chat_requests()[1]
    assert "not valid JSON" in second.tool_results()[0]
    # The bad call is echoed back with its id, so the conversation stays well-formed.
    assistant = next(m for m in second.messages if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["id"] == "call_1"


def test_max_iterations_stops_a_model_that_never_stops(stub: StubServer) -> None:
    stub.script(calls(tool_call("echo", {"text": "again"})))
    out = go(
        react(
            "      prompt: go\n      max_iterations: 3\n" + ECHO_TOOL,
            step_extra="    retry_policy: {max_attempts: 3, initial_delay: 0, retry_on: [error]}\n",
        )
    )
    record = out.record("r")
    assert record.status is StepStatus.FAILED
    assert "stopped after 3 iterations without a final answer" in (record.error or "")
    assert len(record.attempts) == 1  # not retried: it would only loop again
    assert len(stub.chat_requests()) == 3
    assert engine_funcs.CALLS == {}


def test_max_iterations_counts_model_calls(stub: StubServer) -> None:
    stub.script(calls(tool_call("echo", {"text": "x"})), answer("ok"))
    out = go(react("      prompt: go\n      max_iterations: 2\n" + ECHO_TOOL))
    assert out.status == "completed", out.dump()
    assert out.record("r").output["iterations"] == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"title": 7}, "output_schema: title: 7 is not of type 'string'"),
        ("I think the title is T.", "output_schema: the final answer is not JSON"),
    ],
)
def test_output_schema_violation_fails_the_step(stub: StubServer, reply: Any, message: str) -> None:
    stub.script(answer(reply))
    out = go(
        react(
            "      prompt: go\n"
            "      output_schema:\n"
            "        type: object\n"
            "        required: [title]\n"
            "        properties: {title: {type: string}}\n",
            step_extra="    retry_policy: {max_attempts: 3, initial_delay: 0}\n",
        )
    )
    record = out.record("r")
    assert record.status is StepStatus.FAILED
    assert record.error_kind == "validation"
    assert (record.error or "").startswith(message)
    assert len(record.attempts) == 1
    assert record.output["transcript"][-1]["role"] == "assistant"  # kept for the report
    # The schema was given to the model.
    assert '"required": ["title"]' in stub.chat_requests()[0].messages[0]["content"]


def test_fenced_json_answer_is_parsed(stub: StubServer) -> None:
    stub.script(answer('```json\n{"title": "T"}\n```'))
    out = go(react("      prompt: go\n      output_schema: {type: object}\n"))
    assert out.record("r").output["answer"] == {"title": "T"}


def test_http_500_from_the_model_is_retried_per_the_retry_policy(stub: StubServer) -> None:
    stub.script(status(500), answer("fine now"))
    out = go(
        react(
            "      prompt: go\n",
            step_extra=(
                "    retry_policy: {max_attempts: 2, initial_delay: 0, retry_on: [http_status]}\n"
            ),
        )
    )
    assert out.status == "completed", out.dump()
    record = out.record("r")
    assert [a.error_kind for a in record.attempts] == ["http_status", None]
    assert "HTTP 500" in (record.attempts[0].error or "")
    assert len(stub.chat_requests()) == 2  # the client's own retries are off
    assert len(out.retries("r")) == 1


@pytest.mark.parametrize(
    ("code", "retry_on", "kind"),
    [(500, "timeout", "http_status"), (429, "http_status", "rate_limited")],
)
def test_an_http_error_not_in_retry_on_fails(
    stub: StubServer, code: int, retry_on: str, kind: str
) -> None:
    """429 has a kind of its own (`rate_limited`): `retry_on: [http_status]` skips it."""
    stub.script(status(code))
    out = go(
        react(
            "      prompt: go\n",
            step_extra=f"    retry_policy: {{max_attempts: 3, retry_on: [{retry_on}]}}\n",
        )
    )
    record = out.record("r")
    assert record.status is StepStatus.FAILED
    assert record.error_kind == kind
    assert f"HTTP {code}" in (record.error or "")
    assert len(stub.chat_requests()) == 1


def test_secrets_are_masked_and_tokens_reach_custom_metrics(stub: StubServer) -> None:
    stub.script(
        calls(tool_call("echo", {"text": f"key is {KEY}"})),
        answer(f"the key was {KEY}"),
    )
    out = go(
        react(
            "      prompt: 'use {{ secrets.api }}'\n" + ECHO_TOOL,
            extra="secrets: {api: OPENAI_API_KEY}\n",
            step_extra="    custom_metrics: {tokens: output.usage.total_tokens}\n",
        )
    )
    assert out.status == "completed", out.dump()
    record = out.record("r")
    assert KEY not in out.dump()
    assert KEY not in json.dumps([e.to_json() for e in out.events], default=str)
    assert record.output["answer"] == "the key was ***"
    assert record.output["transcript"][0]["content"] == "use ***"
    assert record.metrics["tokens"] == 42


def test_the_api_key_is_masked_even_when_not_declared_secret(stub: StubServer) -> None:
    stub.script(answer(f"leaking {KEY}"))
    out = go(react("      prompt: go\n      api_key_env: OPENAI_API_KEY\n"))
    assert out.record("r").output["answer"] == "leaking ***"


def test_missing_api_key_variable_fails_clearly(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    out = go(react("      prompt: go\n      api_key_env: OPENAI_API_KEY\n"))
    record = out.record("r")
    assert record.status is StepStatus.FAILED
    assert "OPENAI_API_KEY" in (record.error or "")
    assert stub.chat_requests() == []


def test_react_step_without_the_extra_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain.agents", None)
    out = go(react("      prompt: go\n"))
    record = out.record("r")
    assert record.status is StepStatus.FAILED
    assert "pip install 'wfctl[agents]'" in (record.error or "")
    assert out.status == "failed"


def test_wfctl_run_without_the_extra_stops_before_anything_runs(tmp_path: Path) -> None:
    """The missing extra is found before the first step: exit 2, nothing done."""
    (tmp_path / "wf.yaml").write_text(
        "workflow_id: w\nname: W\nsteps:\n"
        "  - {step_id: first, action: shell, with: {command: 'touch ran'}}\n"
        "  - {step_id: think, step_type: react, dependencies: [first],\n"
        "     with: {model: 'openai:m', prompt: go}}\n",
        encoding="utf-8",
    )
    hide = "import sys; sys.modules['langchain'] = None; from wfctl.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", hide, "run", "wf.yaml", "--no-live"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "pip install 'wfctl[agents]'" in proc.stderr
    assert "nothing was run" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "ran").exists()


# -- routing ------------------------------------------------------------------------------


ROUTED = """
max_parallel_steps: 6
circuit_breaker: {failure_threshold: 1, reset_timeout: 60}
agents:
  - {name: a_flaky, capabilities: [chat], model: "openai:flaky", max_concurrency: 1}
  - {name: b_steady, capabilities: [chat], model: "openai:steady", max_concurrency: 2}
steps:
"""


def routed_steps(n: int) -> str:
    return "".join(
        f"""
  - step_id: s{i}
    step_type: react
    agent_capability: chat
    retry_policy: {{max_attempts: 3, initial_delay: 0, jitter: false,
                   retry_on: [http_status, circuit_open]}}
    with: {{prompt: "job {i}"}}
"""
        for i in range(n)
    )


def agent_peaks(out: Outcome) -> dict[str, int]:
    """Most steps running on each agent at once, from state events alone."""
    on: dict[str, str] = {}
    peak: dict[str, int] = {}
    for e in out.of(StepStateChanged):
        if e.status is StepStatus.RUNNING and e.agent:
            on[e.step_id] = e.agent
        else:
            on.pop(e.step_id, None)
        for agent in set(on.values()):
            peak[agent] = max(peak.get(agent, 0), list(on.values()).count(agent))
    return peak


def test_traffic_moves_to_the_healthy_agent_and_concurrency_holds(stub: StubServer) -> None:
    stub.route("flaky", lambda _: status(500, "flaky is down"))
    stub.route("steady", lambda r: answer(f"done: {r.messages[-1]['content']}"))
    out = go(ROUTED + routed_steps(6))
    assert out.status == "completed", out.dump()
    assert ("agent:a_flaky", "open") in [(e.target, e.state) for e in out.of(CircuitChanged)]
    models = [r.body["model"] for r in stub.chat_requests()]
    assert models.count("flaky") == 1  # one failure opens its breaker; no more traffic
    for i in range(6):
        record = out.record(f"s{i}")
        assert record.agent == "b_steady"
        assert record.output["answer"] == f"done: job {i}"
        assert record.agent_reason
    peaks = agent_peaks(out)
    assert peaks["b_steady"] <= 2
    assert peaks.get("a_flaky", 0) <= 1
    final = out.state_events("s0")[-1]
    assert final.agent == "b_steady"
    assert final.agent_reason == out.record("s0").agent_reason


def test_agent_reason_is_in_the_report(stub: StubServer, tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "workflow_id: routed\nname: routed\n" + ROUTED + routed_steps(1), encoding="utf-8"
    )
    stub.route("flaky", lambda _: answer("flaky works today"))
    proc = subprocess.run(
        [sys.executable, "-m", "wfctl", "run", "wf.yaml", "--report", "out.json", "--no-live"],
        cwd=tmp_path,
        env=clean_env(OPENAI_BASE_URL=stub.base_url, OPENAI_API_KEY=KEY),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert_valid_report(report)
    step = report["steps"]["s0"]
    assert step["agent"] == "a_flaky"
    assert "best of 2" in step["agent_reason"]


# -- the example workflow -------------------------------------------------------------------


def test_research_agent_example_runs_end_to_end(stub: StubServer, tmp_path: Path) -> None:
    findings = ["Event-driven starts steps sooner.", "Critical path matters."]
    stub.script(
        calls(tool_call("word_count", {"text": "one two three"})),
        calls(tool_call("python_version", {}, "call_2")),
        answer(
            "```json\n"
            + json.dumps({"title": "Schedulers", "findings": findings, "confidence": 0.8})
            + "\n```"
        ),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "wfctl",
            "run",
            str(ROOT / "workflows" / "research-agent.yaml"),
            "--approve",
            "editor_review",
            "--input",
            "topic=workflow engines",
            "--input",
            "model=llama3.2",
            "--report",
            "out.json",
            "--no-live",
        ],
        cwd=tmp_path,
        env=clean_env(OPENAI_BASE_URL=stub.base_url, OPENAI_API_KEY=KEY),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out_dir = tmp_path / ".wfctl" / "demo" / "research-agent"
    draft = (out_dir / "draft.md").read_text(encoding="utf-8")
    assert draft.startswith("# Schedulers\n")
    assert "Event-driven starts steps sooner.; Critical path matters." in draft
    assert "(confidence 0.8)" in draft
    assert (out_dir / "report.md").read_text(encoding="utf-8") == draft
    first = stub.chat_requests()[0]
    assert first.body["model"] == "llama3.2"
    assert "Research: workflow engines." in first.messages[1]["content"]
    assert "event-driven scheduler starts a step" in first.messages[1]["content"]
    assert json.loads(stub.chat_requests()[1].tool_results()[0])["json"] == 3

    report = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert_valid_report(report)
    research = report["steps"]["research"]
    assert research["output"]["answer"]["confidence"] == 0.8
    assert research["output"]["usage"]["total_tokens"] == 15 + 15 + 27
    assert [c["name"] for c in research["output"]["tool_calls"]] == [
        "word_count",
        "python_version",
    ]
    assert research["output"]["transcript"][-1]["role"] == "assistant"
    assert research["metrics"]["findings"] == 2
    assert KEY not in (tmp_path / "out.json").read_text(encoding="utf-8")
    assert KEY not in proc.stdout + proc.stderr
