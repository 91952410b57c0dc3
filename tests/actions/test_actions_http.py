"""The `http` action against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

from wfctl.actions import ActionContext, ActionError, get_action
from wfctl.actions.http import HttpAction
from wfctl.secrets import Masker


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Multi", "a")
        self.send_header("X-Multi", "b")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path == "/ok":
            self._send(200, json.dumps({"ok": True, "items": [1, 2]}).encode())
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._send(code, b"service unavailable, try later" * 500, "text/plain")
        elif path == "/text":
            self._send(200, "héllo".encode("latin-1"), "text/plain; charset=latin-1")
        elif path.startswith("/charset/"):  # a charset Python cannot decode with
            charset = path.rsplit("/", 1)[1]
            self._send(200, "héllo".encode(), f"text/plain; charset={charset}")
        elif path == "/slow-trickle":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "20")
            self.end_headers()
            try:
                for _ in range(20):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass
        elif path == "/echo":
            body: Any
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode()
            echo = {
                "method": self.command,
                "query": query,
                "json": body,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
            self._send(200, json.dumps(echo).encode())
        else:
            self._send(404, b'{"error": "not found"}')

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _route


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def make_ctx(tmp_path: Path, secrets: dict[str, str] | None = None) -> ActionContext:
    secrets = secrets or {}
    return ActionContext(
        run_id="r",
        step_id="s",
        attempt=1,
        idempotency_key="r:s",
        workdir=tmp_path,
        secret_env=secrets,
        masker=Masker(secrets.values()),
    )


async def request(tmp_path: Path, **args: Any) -> Any:
    return await HttpAction().run(args, make_ctx(tmp_path))


async def failure(tmp_path: Path, **args: Any) -> ActionError:
    with pytest.raises(ActionError) as info:
        await request(tmp_path, **args)
    return info.value


@pytest.mark.anyio
async def test_get_json(server: str, tmp_path: Path) -> None:
    out = await request(tmp_path, url=f"{server}/ok")
    assert out["status"] == 200
    assert out["json"] == {"ok": True, "items": [1, 2]}
    assert json.loads(out["body"]) == out["json"]
    assert out["headers"]["content-type"] == "application/json"
    assert out["headers"]["x-multi"] == "a, b"


@pytest.mark.anyio
async def test_post_json_headers_and_params_are_sent(server: str, tmp_path: Path) -> None:
    out = await request(
        tmp_path,
        method="post",
        url=f"{server}/echo",
        json={"name": "x", "n": [1, 2]},
        headers={"X-Request-Id": 7},
        params={"page": 2, "q": "a b"},
    )
    echo = out["json"]
    assert echo["method"] == "POST"
    assert echo["json"] == {"name": "x", "n": [1, 2]}
    assert echo["headers"]["x-request-id"] == "7"
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["query"] in ("page=2&q=a+b", "page=2&q=a%20b")


@pytest.mark.anyio
async def test_raw_body(server: str, tmp_path: Path) -> None:
    out = await request(tmp_path, method="PUT", url=f"{server}/echo", body="plain text")
    assert out["json"]["json"] == "plain text"


@pytest.mark.anyio
async def test_charset_is_honoured(server: str, tmp_path: Path) -> None:
    out = await request(tmp_path, url=f"{server}/text")
    assert out["body"] == "héllo"
    assert out["json"] is None


@pytest.mark.anyio
@pytest.mark.parametrize("charset", ["undefined", "no-such-charset", "rot13", "base64"])
async def test_an_unusable_charset_is_read_as_utf8(
    server: str, tmp_path: Path, charset: str
) -> None:
    out = await request(tmp_path, url=f"{server}/charset/{charset}")
    assert out["status"] == 200
    assert out["body"] == "héllo"


@pytest.mark.anyio
async def test_503_is_an_http_status_error(server: str, tmp_path: Path) -> None:
    err = await failure(tmp_path, url=f"{server}/status/503")
    assert err.kind == "http_status"
    assert err.retryable is True
    assert "503" in err.message and "expected 2xx" in err.message
    assert err.output["status"] == 503
    assert err.output["body"].startswith("service unavailable")
    assert len(err.output["body"]) < 5000  # truncated


@pytest.mark.anyio
async def test_expected_status_is_honoured(server: str, tmp_path: Path) -> None:
    out = await request(tmp_path, url=f"{server}/status/404", expected_status=404)
    assert out["status"] == 404
    out = await request(tmp_path, url=f"{server}/status/503", expected_status=[200, 503])
    assert out["status"] == 503
    err = await failure(tmp_path, url=f"{server}/ok", expected_status=[201])
    assert err.kind == "http_status"
    assert "expected 201" in err.message


@pytest.mark.anyio
async def test_trickling_server_is_cut_at_the_overall_deadline(server: str, tmp_path: Path) -> None:
    start = time.monotonic()
    err = await failure(tmp_path, url=f"{server}/slow-trickle", timeout=1)
    elapsed = time.monotonic() - start
    assert err.kind == "timeout"
    assert "within 1 s" in err.message
    assert elapsed < 3


@pytest.mark.anyio
async def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = await failure(tmp_path, url=f"http://127.0.0.1:{port}/")
    assert err.kind == "connection"
    assert err.retryable is True
    assert f"127.0.0.1:{port}" in err.message


@pytest.mark.anyio
async def test_secrets_are_masked_in_output_and_errors(server: str, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, {"TOKEN": "sk-live-123456"})
    out = await HttpAction().run(
        {
            "url": f"{server}/echo?key=sk-live-123456",
            "headers": {"Authorization": "Bearer sk-live-123456"},
        },
        ctx,
    )
    assert "sk-live" not in json.dumps(out)
    assert out["json"]["headers"]["authorization"] == "Bearer ***"
    with pytest.raises(ActionError) as info:
        await HttpAction().run({"url": f"{server}/status/500?key=sk-live-123456"}, ctx)
    assert "sk-live" not in info.value.message
    assert "key=***" in info.value.message


@pytest.mark.anyio
async def test_caller_cancellation_is_not_turned_into_an_error(server: str, tmp_path: Path) -> None:
    start = time.monotonic()
    with anyio.move_on_after(0.3) as scope:
        await request(tmp_path, url=f"{server}/slow-trickle", timeout=30)
    assert scope.cancelled_caught
    assert time.monotonic() - start < 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    "args",
    [
        {},
        {"url": "ftp://example.com/"},
        {"url": "http://x/", "method": "BREW"},
        {"url": "http://x/", "json": {}, "body": "x"},
        {"url": "http://x/", "body": {"a": 1}},
        {"url": "http://x/", "expected_status": "200"},
        {"url": "http://x/", "timeout": 0},
        {"url": "http://x/", "headers": ["a"]},
        {"url": "http://[::1/"},  # malformed URLs: retrying cannot help
        {"url": "http://host:99999/"},
        {"url": "http://host:port/"},
        {"url": "http:///path"},
        {"url": "http://exa mple.com/"},
    ],
)
async def test_invalid_arguments(tmp_path: Path, args: dict[str, Any]) -> None:
    err = await failure(tmp_path, **args)
    assert (err.kind, err.retryable) == ("validation", False)


def test_target_and_registry() -> None:
    action = get_action("http")
    assert action.name == "http"
    assert action.target({"url": "http://127.0.0.1:8080/x"}) == "http:127.0.0.1:8080"
    assert action.target({"url": "https://Example.com/x"}) == "http:example.com:443"
    assert action.target({"url": "http://example.com/x"}) == "http:example.com:80"
    assert action.target({"url": "http://[::1]:9/x"}) == "http:[::1]:9"


def test_works_under_plain_anyio_run(server: str, tmp_path: Path) -> None:
    async def main() -> Any:
        return await request(tmp_path, url=f"{server}/ok")

    assert anyio.run(main, backend="asyncio")["json"]["ok"] is True


def test_httpx_is_imported_off_the_event_loop(server: str) -> None:
    """Importing httpx and httpcore takes ~100 ms: the first http step must not stall
    the other steps."""
    code = f"""
import sys, threading
import anyio
from pathlib import Path
from wfctl.actions import ActionContext, get_action
from wfctl.secrets import Masker

where = set()
def hook(event, args):
    if event == "import" and args[0] in ("httpx", "httpcore"):
        where.add((args[0], threading.current_thread() is threading.main_thread()))
sys.addaudithook(hook)

action = get_action("http")
assert "httpx" not in sys.modules, "loading the action imported httpx"
ctx = ActionContext("r", "s", 1, "r:s", Path("."), {{}}, Masker(()))

async def main():
    return await action.run({{"url": "{server}/ok"}}, ctx)

assert anyio.run(main)["status"] == 200
# httpcore too: httpx imports it when it makes its first client.
assert where == {{("httpx", False), ("httpcore", False)}}, where  # in a worker thread
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.anyio
async def test_no_ssl_context_is_built_per_request(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each costs 40-80 ms of CA-bundle loading on the event loop."""
    import ssl

    await request(tmp_path, url=f"{server}/ok")  # the client module is loaded now
    built: list[object] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    await request(tmp_path, url=f"{server}/ok")
    await request(tmp_path, url=f"{server}/ok")
    assert built == []


def test_arguments_are_parsed_once_into_a_frozen_record() -> None:
    import dataclasses

    from wfctl.actions._http_args import DEFAULT_TIMEOUT, parse_http_args

    spec = parse_http_args({"url": "http://x/", "json": {"a": 1}}, Masker(()))
    assert (spec.method, spec.timeout, spec.content) == ("GET", DEFAULT_TIMEOUT, b'{"a": 1}')
    assert spec.headers == {"Content-Type": "application/json"}
    assert (spec.accepts(204), spec.accepts(301), spec.wanted()) == (True, False, "2xx")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.url = "http://y/"  # type: ignore[misc]
    spec = parse_http_args(
        {
            "url": "https://x/",
            "method": "put",
            "json": [1],
            "headers": {"content-type": "application/x-ndjson"},  # not overridden
            "expected_status": [404, 200],
            "timeout": "2.5",
        },
        Masker(()),
    )
    assert (spec.method, spec.timeout) == ("PUT", 2.5)
    assert spec.headers == {"content-type": "application/x-ndjson"}
    assert (spec.accepts(404), spec.accepts(201), spec.wanted()) == (True, False, "200, 404")
