"""Real receivers on 127.0.0.1 for the observability tests: an OTLP/HTTP trace receiver
(decoding `ExportTraceServiceRequest` protobufs with opentelemetry-proto), Debian's
`prometheus-pushgateway`, and a webhook server that records what it is sent."""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from loopback import serving
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass
class Received:
    """What a test server was sent: request bodies (decoded) and their paths."""

    paths: list[str] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


class _Server(HTTPServer):
    received: Received


class _OtlpHandler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        got = self.server.received
        got.paths.append(self.path)
        got.headers.append(dict(self.headers))
        got.bodies.append(request)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        got = self.server.received
        got.paths.append(self.path)
        got.headers.append(dict(self.headers))
        got.bodies.append(json.loads(body or b"null"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), handler)
    server.received = Received()
    with serving(server):
        yield server


@pytest.fixture
def otlp() -> Iterator[_Server]:
    """An OTLP/HTTP trace receiver; `.received.bodies` are ExportTraceServiceRequests."""
    yield from _serve(_OtlpHandler)


@pytest.fixture
def webhook() -> Iterator[_Server]:
    """A webhook receiver; `.received.bodies` are the JSON bodies posted to it."""
    yield from _serve(_WebhookHandler)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Until the gateway answers /-/ready (or has exited, or the deadline passes)."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prometheus-pushgateway exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            threading.Event().wait(0.05)  # the port is not open yet: poll again
    pytest.fail("prometheus-pushgateway did not become ready in 30 s")


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """Debian's prometheus-pushgateway on 127.0.0.1 (installed by .ci/run); its URL."""
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        pytest.skip(
            "prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway)"
        )
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "pushgateway.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, time.monotonic() + 30)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
