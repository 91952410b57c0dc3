"""A scripted OpenAI-compatible chat server on 127.0.0.1 for the react tests.

It answers ``POST /v1/chat/completions`` (non-streaming) by replaying a script: each
request takes the next scripted reply (the last one repeats when the script runs out),
and every request body is recorded so tests can check what the model was sent. A reply's
``_status``, ``_headers`` and ``_lines`` (NDJSON streamed instead of one JSON body) shape
the HTTP response; the other providers' fakes (provider_stubs.py) script the same server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from loopback import serving

Reply = dict[str, Any]


def tool_call(name: str, arguments: Any, call_id: str = "call_1") -> dict[str, Any]:
    """One entry of a reply's `tool_calls`; `arguments` may be a dict or raw (bad) JSON."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}


def calls(*entries: dict[str, Any], usage: tuple[int, int] = (10, 5)) -> Reply:
    """A reply asking for tool calls."""
    return _reply({"role": "assistant", "content": None, "tool_calls": list(entries)}, usage)


def answer(content: Any, usage: tuple[int, int] = (20, 7)) -> Reply:
    """A final answer; a non-string `content` is sent as JSON text."""
    text = content if isinstance(content, str) else json.dumps(content)
    return _reply({"role": "assistant", "content": text}, usage)


def status(code: int, message: str = "scripted failure") -> Reply:
    """An HTTP error reply."""
    return {"_status": code, "error": {"message": message, "type": "server_error"}}


def _reply(message: dict[str, Any], usage: tuple[int, int]) -> Reply:
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        },
    }


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    def tool_results(self) -> list[str]:
        return [str(m.get("content")) for m in self.messages if m.get("role") == "tool"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StubServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.path, headers, json.loads(raw or b"{}"))
        reply = self.server.next_reply(request)
        code = int(reply.get("_status", 200))
        lines = reply.get("_lines")  # a streamed reply: NDJSON, one object a line
        payload = {k: v for k, v in reply.items() if not k.startswith("_")}
        if lines is not None:
            data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        else:
            data = json.dumps(payload).encode()
        self.send_response(code)
        kind = "application/x-ndjson" if lines is not None else "application/json"
        self.send_header("Content-Type", kind)
        for name, value in dict(reply.get("_headers") or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    #: The path the client's base URL ends with (the OpenAI SDK adds /chat/completions).
    url_suffix = "/v1"

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self._script: list[Reply] = []
        self._by_model: dict[str, Callable[[Request], Reply]] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{self.url_suffix}"

    def script(self, *replies: Reply) -> None:
        """Replies for the next requests, in order (the last one repeats)."""
        with self.lock:
            self._script = list(replies)
            self.requests.clear()

    def route(self, model: str, responder: Callable[[Request], Reply]) -> None:
        """Answer requests for `model` with `responder(request)` instead of the script."""
        with self.lock:
            self._by_model[model] = responder

    def next_reply(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
            responder = self._by_model.get(str(request.body.get("model")))
            if responder is None:
                if not self._script:
                    return status(500, "script exhausted")
                return self._script.pop(0) if len(self._script) > 1 else self._script[0]
        return responder(request)

    def chat_requests(self, path: str = "/chat/completions") -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith(path)]


@contextmanager
def serve() -> Iterator[StubServer]:
    with serving(StubServer()) as server:
        yield server
