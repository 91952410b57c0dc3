"""The react step: LangChain's `create_agent` (a LangGraph ReAct loop) whose tools are
workflow actions.

Imported only when a react step runs; LangChain itself is imported inside
:meth:`ReactAction.run`, so a missing `agents` extra fails the step, not the import.
The engine owns everything around one attempt (retries, timeout, breaker, agent
routing) and runs each tool call through its attempt loop (``ActionContext.call_tool``);
this module owns the conversation: the model client, the tools, the
iteration bound, the final answer and the transcript.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from wfctl.actions._chat_models import DEFAULT_ENV, error_for, open_chat_model, split_model
from wfctl.actions.base import ActionContext, ActionError, Capability, ToolCaller
from wfctl.format.extras import install_hint
from wfctl.secrets import Masker

__all__ = [
    "EXTRA_HINT",
    "ReactAction",
    "ToolCaller",
    "ToolSpec",
    "agent_drawing",
    "agent_graph",
    "missing_extra",
    "parse_answer",
    "tool_specs",
]

EXTRA_HINT = "react steps need the agents extra: " + install_hint("agents")

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.S)


@dataclass(frozen=True)
class ToolSpec:
    """What the model is told about one tool."""

    name: str
    description: str
    parameters: Mapping[str, Any] | bool


def missing_extra() -> str | None:
    """What to install before a react step can run, or None (checked without importing)."""
    import importlib.util

    return EXTRA_HINT if importlib.util.find_spec("langchain") is None else None


def parse_answer(text: str) -> Any:
    """JSON from a final answer, ``` fences stripped; raises ValueError."""
    match = _FENCE.match(text)
    body = match.group(1) if match else text
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the final answer is not JSON: {exc}") from None


class ReactAction:
    """The react step's action: one attempt of the conversation. Its tools come in
    ``args["tools"]`` (name, description, parameters) and run through
    ``ctx.call_tool``, which the engine provides (its attempt loop runs each call)."""

    name = "react"
    # REMOTE: an attempt may run on a Ray worker; its tools then call back to the driver.
    capabilities: frozenset[Capability] = frozenset(
        {Capability.OUTSIDE_EFFECTS, Capability.STREAMS_OUTPUT, Capability.REMOTE}
    )

    def environment(self, args: Mapping[str, Any]) -> tuple[str, ...]:
        """The environment variables an attempt reads (its API key and base URL): a remote
        backend sends the driver's values of these, and only these, with the attempt."""
        return tuple(name for name in self._env_names(args) if name)

    def target(self, args: Mapping[str, Any]) -> str:
        """Breaker key: the model endpoint (a failing endpoint trips for every step)."""
        env = self._env_names(args)
        base_url = os.environ.get(env[1]) if env[1] else None
        return f"model:{args.get('model')}" + (f"@{base_url}" if base_url else "")

    @staticmethod
    def _env_names(args: Mapping[str, Any]) -> tuple[str | None, str | None]:
        provider, _ = split_model(str(args.get("model") or ""))
        key_env, url_env = DEFAULT_ENV.get(provider or "", (None, None))
        return args.get("api_key_env") or key_env, args.get("base_url_env") or url_env

    async def run(self, args: Mapping[str, Any], actx: ActionContext) -> Any:
        """One conversation: model calls and tool calls until a final answer."""
        try:
            import langchain.agents  # noqa: F401 (the agents extra: checked before anything)
            from langchain_core.messages import HumanMessage
            from langchain_core.tools import StructuredTool
        except ImportError:
            raise ActionError(EXTRA_HINT, kind="error", retryable=False) from None

        model_id = str(args["model"])
        max_iterations = _int(args.get("max_iterations", 10), "max_iterations")
        output_schema = args.get("output_schema")
        api_key, base_url = self._credentials(args, actx)
        # The key never reaches the report, even when the workflow did not declare it.
        masker = actx.masker.with_secrets([api_key]) if api_key else actx.masker

        def say(line: str) -> None:
            if actx.on_output is not None:
                actx.on_output(masker.mask(line))

        tool_calls: list[dict[str, Any]] = []
        specs = tool_specs(args.get("tools") or ())
        if specs and actx.call_tool is None:
            raise ActionError(
                "react: tools need an engine that runs them", kind="error", retryable=False
            )
        tools = [
            self._make_tool(spec, tool_calls, actx, masker, say, StructuredTool) for spec in specs
        ]
        retries = _int(args.get("provider_retries", 0), "provider_retries", least=0)
        client = open_chat_model(model_id, api_key, base_url, retries)
        try:
            agent = agent_graph(client.model, tools, _system(args, output_schema))
            say(f"model {model_id}: {len(tools)} tools, at most {max_iterations} iterations")
            messages = await _converse(
                agent, [HumanMessage(str(args["prompt"]))], max_iterations, tool_calls, say
            )
        finally:
            await client.aclose()
        output = self._output(messages, tool_calls, model_id, output_schema, masker)
        say(
            f"final answer after {output['iterations']} iterations, "
            f"{len(tool_calls)} tool calls, {output['usage'].get('total_tokens', 0)} tokens"
        )
        return output

    def _credentials(
        self, args: Mapping[str, Any], actx: ActionContext
    ) -> tuple[str | None, str | None]:
        """(API key, base URL) from the environment and the step's secrets."""
        env = {**os.environ, **actx.secret_env}
        key_env, url_env = self._env_names(args)
        api_key = env.get(key_env) if key_env else None
        if args.get("api_key_env") and api_key is None:
            raise ActionError(
                f"environment variable {key_env} (api_key_env) is not set",
                kind="validation",
                retryable=False,
            )
        return api_key, env.get(url_env) if url_env else None

    def _output(
        self,
        messages: list[Any],
        tool_calls: list[dict[str, Any]],
        model_id: str,
        output_schema: Any,
        masker: Masker,
    ) -> dict[str, Any]:
        from langchain_core.messages import AIMessage

        text = _text(messages[-1].content)
        output: dict[str, Any] = {
            "answer": masker.mask(text),
            "tool_calls": masker.mask_data(tool_calls),
            "usage": _usage(messages),
            "iterations": sum(1 for m in messages if isinstance(m, AIMessage)),
            "model": model_id,
            "transcript": masker.mask_data([_message_json(m) for m in messages]),
        }
        if output_schema is not None:
            output["answer"] = masker.mask_data(
                self._validated(text, output_schema, output, masker)
            )
        return output

    @staticmethod
    def _validated(text: str, schema: Any, output: dict[str, Any], masker: Masker) -> Any:
        from wfctl.format.user_schema import user_validator  # RE2 patterns: linear time

        try:
            parsed = parse_answer(text)
        except ValueError as exc:
            raise ActionError(
                f"output_schema: {exc}", kind="validation", output=output, retryable=False
            ) from None
        errors = list(user_validator(schema).iter_errors(parsed))
        if errors:
            first = min(errors, key=lambda e: list(e.absolute_path))
            where = ".".join(str(p) for p in first.absolute_path) or "answer"
            raise ActionError(
                masker.mask(f"output_schema: {where}: {first.message}"),
                kind="validation",
                output=output,
                retryable=False,
            )
        return parsed

    def _make_tool(
        self,
        spec: ToolSpec,
        log: list[dict[str, Any]],
        actx: ActionContext,
        masker: Masker,
        say: Callable[[str], None],
        tool_cls: Any,
    ) -> Any:
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(spec.parameters)
        schema = _args_schema(spec)

        async def run_tool(**arguments: Any) -> str:
            entry: dict[str, Any] = {"name": spec.name, "arguments": arguments}
            log.append(entry)
            say(f"tool {spec.name}({json.dumps(arguments, default=str)})")
            errors = list(validator.iter_errors(arguments))
            if errors:
                # Bad arguments go back to the model, which can fix them and call again.
                first = min(errors, key=lambda e: list(e.absolute_path))
                where = ".".join(str(p) for p in first.absolute_path) or "arguments"
                entry.update(error=f"{where}: {first.message}", error_kind="validation")
            else:
                try:
                    assert actx.call_tool is not None  # checked before the first call
                    entry["result"] = await actx.call_tool(spec.name, arguments, actx)
                except ActionError as exc:
                    entry.update(error=exc.message, error_kind=exc.kind)
            if "error" in entry:
                reply = f"error ({entry['error_kind']}): {entry['error']}"
            else:
                result = entry["result"]
                reply = result if isinstance(result, str) else json.dumps(result, default=str)
            reply = masker.mask(reply)
            say(f"tool {spec.name} -> {_short(reply)}")
            return reply

        return tool_cls.from_function(
            coroutine=run_tool, name=spec.name, description=spec.description, args_schema=schema
        )


def agent_graph(model: Any, tools: list[Any], system_prompt: str | None) -> Any:
    """The compiled agent graph (LangChain's `create_agent`: model and tools nodes) that
    a react step runs."""
    from langchain.agents import create_agent

    # Its own saver: inside a checkpointed graph (--engine langgraph) it would otherwise
    # inherit the run's and become a second writer of its file.
    return create_agent(model, tools, system_prompt=system_prompt, checkpointer=_own_saver())


def agent_drawing(specs: tuple[ToolSpec, ...]) -> Any:
    """The agent graph of a react step with these tools, for drawing only: built by the
    same factory as a run's, with a stand-in chat model that is never called and tools
    that never run (no model, no network)."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.tools import StructuredTool

    async def never(**arguments: Any) -> str:
        raise RuntimeError("a drawn agent's tools do not run")

    tools = [
        StructuredTool.from_function(
            coroutine=never, name=s.name, description=s.description, args_schema=_args_schema(s)
        )
        for s in specs
    ]
    return agent_graph(GenericFakeChatModel(messages=iter(())), tools, None)


def _args_schema(spec: ToolSpec) -> dict[str, Any]:
    """The tool's parameters as the object schema LangChain wants."""
    params = spec.parameters
    schema: dict[str, Any] = dict(params) if isinstance(params, Mapping) else {"type": "object"}
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def tool_specs(raw: Any) -> tuple[ToolSpec, ...]:
    """ToolSpecs from the `tools` argument (what the model is told of each)."""
    return tuple(
        ToolSpec(
            name=str(t["name"]),
            description=str(t.get("description") or t["name"]),
            parameters=t.get("parameters", {"type": "object"}),
        )
        for t in raw
    )


def _system(args: Mapping[str, Any], output_schema: Any) -> str | None:
    """The system prompt, told the answer's JSON Schema when there is one."""
    system = str(args.get("system") or "")
    if output_schema is not None:
        system = (system + "\n\n" if system else "") + (
            "Your final answer must be only a JSON value (no prose) matching this JSON "
            f"Schema: {json.dumps(output_schema)}"
        )
    return system or None


async def _converse(
    agent: Any,
    messages: list[Any],
    max_iterations: int,
    tool_calls: list[dict[str, Any]],
    say: Callable[[str], None],
) -> list[Any]:
    """Run the agent graph until the model answers without (invalid) tool calls."""
    from langchain_core.messages import AIMessage

    while True:
        left = max_iterations - sum(1 for m in messages if isinstance(m, AIMessage))
        if left <= 0:
            raise _runaway(max_iterations)
        messages = list((await _invoke_agent(agent, messages, left, max_iterations))["messages"])
        last = messages[-1]
        bad = list(getattr(last, "invalid_tool_calls", None) or [])
        if not isinstance(last, AIMessage) or not bad:
            return messages
        _refuse_invalid(bad, messages, tool_calls, say)


def _own_saver() -> Any:
    from langgraph.checkpoint.memory import InMemorySaver

    return InMemorySaver()


async def _invoke_agent(agent: Any, messages: list[Any], left: int, max_iterations: int) -> Any:
    import uuid

    from langgraph.errors import GraphRecursionError

    # 2n graph steps: n model calls, the n-1 tool rounds between them, and the step that
    # ends the graph; the n-th round of tools never starts. A thread of its own per call:
    # the whole conversation is passed in each time.
    config = {"recursion_limit": 2 * left, "configurable": {"thread_id": uuid.uuid4().hex}}
    try:
        return await agent.ainvoke({"messages": messages}, config)
    except GraphRecursionError:
        raise _runaway(max_iterations) from None
    except ActionError:
        raise
    except Exception as exc:
        mapped = error_for(exc)
        if mapped is None:
            raise
        raise mapped from None


def _refuse_invalid(
    bad: list[Any],
    messages: list[Any],
    tool_calls: list[dict[str, Any]],
    say: Callable[[str], None],
) -> None:
    """Arguments that are not JSON: tell the model, as a tool error, and go on."""
    from langchain_core.messages import ToolMessage

    for call in bad:
        text = f"error: arguments are not valid JSON: {call.get('args')!s}"
        tool_calls.append(
            {
                "name": call.get("name"),
                "id": call.get("id"),
                "arguments": call.get("args"),
                "error": text,
                "error_kind": "validation",
            }
        )
        say(f"tool {call.get('name')}: {text}")
        messages.append(ToolMessage(text, tool_call_id=str(call.get("id") or ""), status="error"))


def _runaway(n: int) -> ActionError:
    return ActionError(
        f"react step stopped after {n} iterations without a final answer "
        "(the model kept calling tools; raise max_iterations or fix the prompt)",
        kind="error",
        retryable=False,
    )


def _int(value: Any, name: str, least: int = 1) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = least - 1
    if number < least or str(number) != str(value).strip():
        raise ActionError(
            f"{name} must be an integer >= {least} (got {value!r})",
            kind="validation",
            retryable=False,
        )
    return number


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(
            b if isinstance(b, str) else str(b.get("text", ""))
            for b in content
            if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text")
        )
    return str(content)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _usage(messages: list[Any]) -> dict[str, int]:
    """Token counts summed over the model's replies; {} when the provider sent none."""
    total: dict[str, int] = {}
    for m in messages:
        usage = getattr(m, "usage_metadata", None)
        if not usage:
            continue
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            total[key] = total.get(key, 0) + int(usage.get(key) or 0)
    return total


def _message_json(m: Any) -> dict[str, Any]:
    role = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}.get(
        str(getattr(m, "type", "")), str(getattr(m, "type", ""))
    )
    out: dict[str, Any] = {"role": role, "content": _text(m.content)}
    if getattr(m, "tool_calls", None):
        out["tool_calls"] = [
            {"id": c.get("id"), "name": c.get("name"), "arguments": c.get("args")}
            for c in m.tool_calls
        ]
    if getattr(m, "invalid_tool_calls", None):
        out["invalid_tool_calls"] = [
            {"id": c.get("id"), "name": c.get("name"), "arguments": c.get("args")}
            for c in m.invalid_tool_calls
        ]
    if role == "tool":
        out["tool_call_id"] = getattr(m, "tool_call_id", None)
        out["name"] = getattr(m, "name", None)
    usage = getattr(m, "usage_metadata", None)
    if usage:
        out["usage"] = {k: usage.get(k) for k in ("input_tokens", "output_tokens", "total_tokens")}
    return out
