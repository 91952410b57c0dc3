"""The `http` action: one HTTP request with httpx, bounded by an overall deadline.

httpx timeouts apply per network operation: a server trickling one byte at a time never
trips them. The whole call (connect, send, read the body) therefore runs inside
``anyio.fail_after(timeout)``; httpx's own timeout is set to the same value as a backstop.

Errors: the deadline or an httpx timeout -> kind ``timeout``; refused, reset, DNS failure,
protocol errors -> kind ``connection``; a status outside ``expected_status`` (default any
2xx) -> kind ``http_status`` with output ``{status, body}`` (body truncated); a bad or
malformed URL (no host, a bad port, a space in the host) or bad arguments -> kind
``validation`` (not retryable). Redirects are not followed.

Output: ``{"status", "headers", "body", "json"}``; the body is read up to
:data:`MAX_BODY_BYTES` (then truncated, and ``json`` is null) and decoded with the
response's charset, or as UTF-8 when it names none Python can use (``undefined``);
undecodable bytes are replaced. Secrets are masked in the output and in error messages.

httpx and httpcore (about 100 ms to import) and the default SSL context (40-80 ms) are
loaded once, in a worker thread, on the first request: the event loop keeps running
the other steps meanwhile.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio.to_thread

from wfctl.actions._http_args import DEFAULT_TIMEOUT, MAX_BODY_BYTES, HttpArgs, parse_http_args
from wfctl.actions.base import ActionContext, ActionError, Capability

if TYPE_CHECKING:
    from types import ModuleType

    from wfctl.actions._http_client import Response

__all__ = ["DEFAULT_TIMEOUT", "ERROR_BODY_CHARS", "MAX_BODY_BYTES", "HttpAction"]

ERROR_BODY_CHARS = 4096
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CLIENT = "wfctl.actions._http_client"  # imports httpx
_client: ModuleType | None = None


async def _load_client() -> ModuleType:
    """The httpx side of the action, imported once in a worker thread: httpx takes about
    100 ms to import, which would stall every other step on the event loop."""
    global _client
    if _client is None:
        _client = await anyio.to_thread.run_sync(importlib.import_module, _CLIENT)
    return _client


class HttpAction:
    """``http`` action; see the module docstring."""

    name = "http"
    capabilities: frozenset[Capability] = frozenset({Capability.OUTSIDE_EFFECTS, Capability.REMOTE})

    def target(self, args: Mapping[str, Any]) -> str:
        """One breaker per host and port: ``http:host:port``."""
        url = args.get("url")
        try:
            parts = urlsplit(str(url))
            host, port = parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
        except ValueError:
            host = port = None
        if not host:
            return f"http:{url}"
        if ":" in host:
            host = f"[{host}]"
        return f"http:{host}:{port}"

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        """Send the request; output ``{status, headers, body, json}``."""
        masker = ctx.masker
        spec = parse_http_args(args, masker)
        where = masker.mask(f"{spec.method} {spec.url}")
        client = await _load_client()
        response: Response = await client.fetch(spec, where, masker.mask)
        text = masker.mask(_decode(response.raw, response.headers))
        if not spec.accepts(response.status):
            raise _status_error(spec, response, where, text)
        return {
            "status": response.status,
            "headers": masker.mask_data(response.headers),
            "body": text,
            "json": None if response.truncated else _parse_json(text),
        }


def _status_error(spec: HttpArgs, response: Response, where: str, text: str) -> ActionError:
    shown = text if len(text) <= ERROR_BODY_CHARS else text[:ERROR_BODY_CHARS] + "..."
    returned = f"http: {where} returned {response.status} {response.reason}".rstrip()
    return ActionError(
        f"{returned} (expected {spec.wanted()})",
        kind="http_status",
        output={"status": response.status, "body": shown},
    )


def _reject_constant(name: str) -> Any:  # NaN, Infinity: not JSON
    raise ValueError(name)


def _parse_json(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None


def _decode(raw: bytes, headers: Mapping[str, str]) -> str:
    """The body as text in its declared charset, else UTF-8; undecodable bytes replaced."""
    try:
        return raw.decode(_charset(headers), errors="replace")
    except (LookupError, ValueError):  # unknown, `undefined` (always fails), not text
        return raw.decode("utf-8", errors="replace")


def _charset(headers: Mapping[str, str]) -> str:
    content_type = headers.get("content-type", "")
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip().strip('"')
    return "utf-8"
