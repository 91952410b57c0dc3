"""Scripted Anthropic and Ollama servers on 127.0.0.1, speaking each provider's wire format,
for the react step's provider tests (the script-replay server is openai_stub's).

Anthropic: ``POST /v1/messages`` answers a Messages API ``message`` (``text`` and
``tool_use`` content blocks, ``stop_reason``, ``usage``) or an error body
``{"type": "error", "error": {...}}``. Ollama: ``POST /api/chat`` answers one JSON
object, or NDJSON chunks when the request asks ``stream: true`` (as ChatOllama does),
with ``tool_calls`` in the message and ``{"error": ...}`` bodies for failures.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from loopback import serving
from openai_stub import Reply, Request, StubServer

# -- Anthropic Messages API ---------------------------------------------------------------


def anthropic_tool_use(name: str, arguments: dict[str, Any], call_id: str = "toolu_1") -> Reply:
    """A content block asking for a tool call."""
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def anthropic_calls(*blocks: Reply, usage: tuple[int, int] = (10, 5)) -> Reply:
    """A message asking for tool calls (`stop_reason: tool_use`)."""
    return _anthropic_message(list(blocks), "tool_use", usage)


def anthropic_answer(content: Any, usage: tuple[int, int] = (20, 7)) -> Reply:
    """A final answer (`stop_reason: end_turn`); non-string content is sent as JSON text."""
    text = content if isinstance(content, str) else json.dumps(content)
    return _anthropic_message([{"type": "text", "text": text}], "end_turn", usage)


def anthropic_error(code: int, kind: str, message: str, retry_after: int | None = None) -> Reply:
    """An error reply as the API sends it (529 overloaded_error, 429 rate_limit_error, ...)."""
    reply: Reply = {"_status": code, "type": "error", "error": {"type": kind, "message": message}}
    if retry_after is not None:
        reply["_headers"] = {"retry-after": str(retry_after)}
    return reply


def _anthropic_message(content: list[Reply], stop: str, usage: tuple[int, int]) -> Reply:
    return {
        "id": "msg_stub",
        "type": "message",
        "role": "assistant",
        "model": "claude-stub",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


class AnthropicStub(StubServer):
    """The Anthropic SDK adds /v1/messages to the base URL itself."""

    url_suffix = ""

    def messages_requests(self) -> list[Request]:
        """The Messages API requests received, in order."""
        return self.chat_requests("/v1/messages")


# -- Ollama --------------------------------------------------------------------------------


def ollama_tool_call(name: str, arguments: dict[str, Any]) -> Reply:
    """One entry of an Ollama message's `tool_calls` (arguments as an object)."""
    return {"function": {"name": name, "arguments": arguments}}


def ollama_calls(*entries: Reply, usage: tuple[int, int] = (10, 5)) -> Reply:
    """A reply asking for tool calls."""
    return _ollama({"role": "assistant", "content": "", "tool_calls": list(entries)}, usage)


def ollama_answer(content: Any, usage: tuple[int, int] = (20, 7)) -> Reply:
    """A final answer; non-string content is sent as JSON text."""
    text = content if isinstance(content, str) else json.dumps(content)
    return _ollama({"role": "assistant", "content": text}, usage)


def ollama_error(code: int, message: str) -> Reply:
    """An error reply as Ollama sends it: `{"error": "..."}`."""
    return {"_status": code, "error": message}


def _ollama(message: Reply, usage: tuple[int, int]) -> Reply:
    return {
        "model": "stub",
        "created_at": "2026-01-01T00:00:00Z",
        "message": message,
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": usage[0],
        "eval_count": usage[1],
    }


def _streamed(reply: Reply) -> Reply:
    """The NDJSON form of a reply: the message, then an empty closing chunk with the counts."""
    message = reply["message"]
    first = {**reply, "done": False, "message": message}
    for key in ("done_reason", "prompt_eval_count", "eval_count"):
        first.pop(key, None)
    last = {**reply, "message": {"role": "assistant", "content": ""}}
    return {"_lines": [first, last]}


class OllamaStub(StubServer):
    """Streams NDJSON when the request asks for it, as Ollama does."""

    url_suffix = ""

    def next_reply(self, request: Request) -> Reply:
        reply = super().next_reply(request)
        if request.body.get("stream", True) and "_status" not in reply:
            return _streamed(reply)
        return reply

    def api_chat_requests(self) -> list[Request]:
        """The /api/chat requests received, in order."""
        return self.chat_requests("/api/chat")


@contextmanager
def serve_anthropic() -> Iterator[AnthropicStub]:
    with serving(AnthropicStub()) as server:
        yield server


@contextmanager
def serve_ollama() -> Iterator[OllamaStub]:
    with serving(OllamaStub()) as server:
        yield server


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then closed): connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
