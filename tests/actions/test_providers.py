"""The react step with Anthropic and Ollama models, driven through the real CLI against
fake servers on 127.0.0.1 that speak each provider's wire format (tests/provider_stubs.py):
the real langchain-anthropic and langchain-ollama clients make the requests."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ROOT, Run, assert_valid_report, clean_env, wfctl
from provider_stubs import (
    AnthropicStub,
    OllamaStub,
    anthropic_answer,
    anthropic_calls,
    anthropic_error,
    anthropic_tool_use,
    closed_port,
    ollama_answer,
    ollama_calls,
    ollama_error,
    ollama_tool_call,
    serve_anthropic,
    serve_ollama,
)

KEY = "sk-ant-stub-0123456789"

WORKFLOW = """\
workflow_id: providers
name: providers
inputs:
  provider: {type: string, default: anthropic}
  model: {type: string, default: claude-stub}
steps:
  - step_id: r
    step_type: react
    retry_policy: {max_attempts: MAX, initial_delay: 0, retry_on: RETRY_ON}
    with:
      model: "{{ inputs.provider }}:{{ inputs.model }}"
      prompt: Echo hi with the tool, then answer.
      output_schema: {type: object, required: [echoed]}
      EXTRA
      tools:
        - name: echo
          description: Echo the text.
          action: shell
          with: {command: ["echo", "{{ input.text }}"]}
          parameters:
            type: object
            properties: {text: {type: string}}
            required: [text]
"""

DEFAULT_RETRY_ON = "[error, timeout, connection, http_status, overloaded, rate_limited]"


@dataclass
class Result:
    run: Run
    report: dict[str, Any]

    @property
    def step(self) -> dict[str, Any]:
        step: dict[str, Any] = self.report["steps"]["r"]
        return step


def run_workflow(
    tmp_path: Path,
    env: dict[str, str],
    *inputs: str,
    max_attempts: int = 2,
    retry_on: str = DEFAULT_RETRY_ON,
    extra: str = "",
) -> Result:
    text = (
        WORKFLOW.replace("MAX", str(max_attempts))
        .replace("RETRY_ON", retry_on)
        .replace("EXTRA", extra or "system: Be brief.")
    )
    (tmp_path / "wf.yaml").write_text(text, encoding="utf-8")
    args = ["run", "wf.yaml", "--report", "out.json", "--no-live"]
    for item in inputs:
        args += ["-i", item]
    run = wfctl(args, tmp_path, clean_env(**env))
    report = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert_valid_report(report)
    return Result(run, report)


@pytest.fixture
def anthropic_stub() -> Iterator[AnthropicStub]:
    with serve_anthropic() as server:
        yield server


@pytest.fixture
def ollama_stub() -> Iterator[OllamaStub]:
    with serve_ollama() as server:
        yield server


def anthropic_env(stub: AnthropicStub) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": stub.base_url, "ANTHROPIC_API_KEY": KEY}


# -- Anthropic ------------------------------------------------------------------------------


def test_anthropic_tool_call_round_trip(anthropic_stub: AnthropicStub, tmp_path: Path) -> None:
    anthropic_stub.script(
        anthropic_calls(anthropic_tool_use("echo", {"text": "hi"})),
        anthropic_answer({"echoed": "hi"}),
    )
    out = run_workflow(tmp_path, anthropic_env(anthropic_stub))
    assert out.run.rc == 0, out.run.stdout + out.run.stderr
    output = out.step["output"]
    assert output["answer"] == {"echoed": "hi"}
    assert output["model"] == "anthropic:claude-stub"
    [call] = output["tool_calls"]
    assert call["name"] == "echo" and call["result"]["stdout"].strip() == "hi"
    assert output["usage"] == {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42}
    first, second = anthropic_stub.messages_requests()
    # The SDK sends the key as x-api-key or (2.x) as a bearer token.
    assert KEY in (first.headers.get("x-api-key"), first.headers.get("authorization", "")[7:])
    assert first.body["model"] == "claude-stub"
    assert first.body["system"].startswith("Be brief.")
    assert [t["name"] for t in first.body["tools"]] == ["echo"]
    # The tool's result goes back as a tool_result block answering the tool_use id.
    results = [
        block
        for message in second.messages
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert [r["tool_use_id"] for r in results] == ["toolu_1"]
    content = results[0]["content"]
    text = content if isinstance(content, str) else "".join(b["text"] for b in content)
    assert json.loads(text)["stdout"] == "hi\n"
    assert KEY not in (tmp_path / "out.json").read_text(encoding="utf-8")


def test_anthropic_overloaded_then_ok_is_retried_by_the_policy(
    anthropic_stub: AnthropicStub, tmp_path: Path
) -> None:
    anthropic_stub.script(
        anthropic_error(529, "overloaded_error", "Overloaded"), anthropic_answer({"echoed": "x"})
    )
    out = run_workflow(tmp_path, anthropic_env(anthropic_stub))
    assert out.run.rc == 0, out.run.stdout + out.run.stderr
    assert len(out.step["attempts"]) == 2
    assert len(anthropic_stub.messages_requests()) == 2  # the client's own retries are off
    assert [a["error_kind"] for a in out.step["attempts"]] == ["overloaded", None]
    assert "overloaded_error: Overloaded" in out.step["attempts"][0]["error"]


def test_anthropic_rate_limited_is_its_own_kind(
    anthropic_stub: AnthropicStub, tmp_path: Path
) -> None:
    anthropic_stub.script(anthropic_error(429, "rate_limit_error", "Slow down", retry_after=1))
    out = run_workflow(tmp_path, anthropic_env(anthropic_stub), retry_on="[connection]")
    assert out.run.rc == 1
    assert out.step["error_kind"] == "rate_limited"
    assert "HTTP 429" in out.step["error"] and "rate_limit_error: Slow down" in out.step["error"]
    assert len(out.step["attempts"]) == 1  # rate_limited is not in this retry_on
    assert len(anthropic_stub.messages_requests()) == 1


def test_provider_retries_let_the_client_retry_inside_one_attempt(
    anthropic_stub: AnthropicStub, tmp_path: Path
) -> None:
    anthropic_stub.script(
        anthropic_error(529, "overloaded_error", "Overloaded", retry_after=0),
        anthropic_answer({"echoed": "x"}),
    )
    out = run_workflow(tmp_path, anthropic_env(anthropic_stub), extra="provider_retries: 1")
    assert out.run.rc == 0, out.run.stdout + out.run.stderr
    assert len(out.step["attempts"]) == 1
    assert len(anthropic_stub.messages_requests()) == 2


# -- Ollama ---------------------------------------------------------------------------------


def ollama_inputs(model: str = "llama-stub") -> tuple[str, str]:
    return ("provider=ollama", f"model={model}")


def test_ollama_tool_call_round_trip(ollama_stub: OllamaStub, tmp_path: Path) -> None:
    ollama_stub.script(
        ollama_calls(ollama_tool_call("echo", {"text": "hi"})), ollama_answer({"echoed": "hi"})
    )
    env = {"OLLAMA_HOST": ollama_stub.base_url}
    out = run_workflow(tmp_path, env, *ollama_inputs())
    assert out.run.rc == 0, out.run.stdout + out.run.stderr
    output = out.step["output"]
    assert output["answer"] == {"echoed": "hi"}
    assert output["model"] == "ollama:llama-stub"
    [call] = output["tool_calls"]
    assert call["result"]["stdout"].strip() == "hi"
    assert output["usage"] == {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42}
    first, second = ollama_stub.api_chat_requests()
    assert first.body["model"] == "llama-stub"
    assert first.body["stream"] is True  # answered as NDJSON chunks
    assert [t["function"]["name"] for t in first.body["tools"]] == ["echo"]
    assert [json.loads(r)["stdout"] for r in second.tool_results()] == ["hi\n"]


def test_ollama_model_not_found_fails_at_once(ollama_stub: OllamaStub, tmp_path: Path) -> None:
    ollama_stub.script(ollama_error(404, 'model "nosuch" not found, try pulling it first'))
    env = {"OLLAMA_HOST": ollama_stub.base_url}
    out = run_workflow(tmp_path, env, *ollama_inputs("nosuch"), max_attempts=3)
    assert out.run.rc == 1
    assert out.step["error_kind"] == "http_status"
    assert len(out.step["attempts"]) == 1  # not retryable, whatever retry_on says
    assert 'model "nosuch" not found' in out.step["error"]
    assert "ollama pull" in out.step["error"]
    assert len(ollama_stub.api_chat_requests()) == 1


def test_ollama_5xx_is_retried(ollama_stub: OllamaStub, tmp_path: Path) -> None:
    ollama_stub.script(ollama_error(503, "busy"), ollama_answer({"echoed": "x"}))
    out = run_workflow(tmp_path, {"OLLAMA_HOST": ollama_stub.base_url}, *ollama_inputs())
    assert out.run.rc == 0, out.run.stdout + out.run.stderr
    assert len(out.step["attempts"]) == 2
    assert [a["error_kind"] for a in out.step["attempts"]] == ["http_status", None]
    assert "ollama returned HTTP 503: busy" in out.step["attempts"][0]["error"]


def test_ollama_connection_refused_is_connection(tmp_path: Path) -> None:
    env = {"OLLAMA_HOST": f"http://127.0.0.1:{closed_port()}"}
    out = run_workflow(tmp_path, env, *ollama_inputs())
    assert out.run.rc == 1
    assert out.step["error_kind"] == "connection"
    assert len(out.step["attempts"]) == 2  # retried per the policy, then failed


# -- the model from inputs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (("provider=nosuch",), "'nosuch:claude-stub'"),
        (("provider=", "model=gpt"), "expected provider:model"),
    ],
)
def test_a_bad_model_from_inputs_fails_clearly(
    tmp_path: Path, inputs: tuple[str, ...], message: str
) -> None:
    out = run_workflow(tmp_path, {}, *inputs, max_attempts=3)
    assert out.run.rc == 1
    assert out.step["error_kind"] == "validation"
    assert len(out.step["attempts"]) == 1
    assert message in out.step["error"]
    assert "Traceback" not in out.run.stderr


def test_a_provider_whose_package_is_missing_says_what_to_install(tmp_path: Path) -> None:
    pytest.importorskip("langchain")
    if importlib.util.find_spec("langchain_groq") is not None:
        pytest.skip("langchain-groq is installed here")
    out = run_workflow(tmp_path, {}, "provider=groq", max_attempts=3)
    assert out.run.rc == 1
    assert len(out.step["attempts"]) == 1
    assert "pip install langchain-groq" in out.step["error"]


def test_validate_accepts_a_templated_model_and_rejects_one_without_provider(
    tmp_path: Path,
) -> None:
    text = WORKFLOW.replace("MAX", "2").replace("RETRY_ON", "[error]").replace("EXTRA", "")
    (tmp_path / "ok.yaml").write_text(text, encoding="utf-8")
    assert wfctl(["validate", "ok.yaml"], tmp_path).rc == 0
    bad = text.replace('"{{ inputs.provider }}:{{ inputs.model }}"', "gpt-4o")
    (tmp_path / "bad.yaml").write_text(bad, encoding="utf-8")
    run = wfctl(["validate", "bad.yaml"], tmp_path)
    line = bad.splitlines().index("      model: gpt-4o") + 1
    assert run.rc == 2
    assert f"bad.yaml:{line}" in run.stdout + run.stderr


def test_dry_run_shows_the_model_and_provider_retries(tmp_path: Path) -> None:
    text = WORKFLOW.replace("MAX", "2").replace("RETRY_ON", "[error]")
    (tmp_path / "wf.yaml").write_text(text.replace("EXTRA", "provider_retries: 2"), "utf-8")
    run = wfctl(["run", "wf.yaml", "--dry-run"], tmp_path)
    assert run.rc == 0, run.stderr
    assert "r (react {{ inputs.provider }}:{{ inputs.model }}, provider_retries 2)" in run.stdout


# -- the README's providers snippet -----------------------------------------------------------


def providers_snippet() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n### Model providers\n") :]
    section = section[: section.index("\n#", 1)]
    [block] = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_providers_snippet_runs(
    anthropic_stub: AnthropicStub, ollama_stub: OllamaStub, tmp_path: Path
) -> None:
    """Every line as written, through sh, the install left out; Ollama's default address
    is pointed at one fake and Anthropic's base URL set to the other."""
    anthropic_stub.script(anthropic_answer("Pipelines, releases, agents."))
    ollama_stub.script(ollama_answer("CI, ETL, approvals."))
    lines = [line for line in providers_snippet() if not line.startswith("pip install")]
    script = "\n".join(lines).replace("http://localhost:11434", ollama_stub.base_url)
    assert script.count("wfctl run") == 2
    env = clean_env(ANTHROPIC_BASE_URL=anthropic_stub.base_url)
    # `wfctl` as a user types it: the console script next to this Python.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        ["sh", "-e"], input=script + "\n", cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [to_anthropic] = anthropic_stub.messages_requests()
    [to_ollama] = ollama_stub.api_chat_requests()
    assert to_anthropic.body["model"] == "claude-sonnet-4-5"
    assert to_ollama.body["model"] == "llama3.2"
    question = "Name three uses of a workflow engine."
    assert to_anthropic.messages[-1]["content"] == question
    assert to_ollama.messages[-1]["content"] == question
    headers = to_anthropic.headers
    assert "sk-ant-your-key" in headers.get("x-api-key", headers.get("authorization", ""))
    assert proc.stdout.count("completed: 1 completed") == 2
