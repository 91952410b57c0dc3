"""The `http` action: one HTTP request with httpx, bounded by an overall deadline.

httpx timeouts apply per network operation: a server trickling one byte at a time never
trips them. The whole call (connect, send, read the body) therefore runs inside
``anyio.fail_after(timeout)``; httpx's own timeout is set to the same value as a backstop.

Errors: the deadline or an httpx timeout -> kind ``timeout``; refused, reset, DNS failure,
protocol errors -> kind ``connection``; a status outside ``expected_status`` (default any
2xx) -> kind ``http_status`` with output ``{status, body}`` (body truncated); a bad URL or
arguments -> kind ``validation`` (not retryable). Redirects are not followed.

Output: ``{"status", "headers", "body", "json"}``; the body is read up to
:data:`MAX_BODY_BYTES` (then truncated, and ``json`` is null). Secrets are masked in the
output and in error messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from wfctl.actions._http_args import DEFAULT_TIMEOUT, HttpArgs, parse_http_args
from wfctl.actions._http_client import MAX_BODY_BYTES, Response, fetch
from wfctl.actions.base import ActionContext, ActionError, Capability

__all__ = ["DEFAULT_TIMEOUT", "ERROR_BODY_CHARS", "MAX_BODY_BYTES", "HttpAction"]

ERROR_BODY_CHARS = 4096
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
        response = await fetch(spec, where, masker.mask)
        text = masker.mask(response.raw.decode(_charset(response.headers), errors="replace"))
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


def _charset(headers: Mapping[str, str]) -> str:
    content_type = headers.get("content-type", "")
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip().strip('"')
            try:
                "".encode(charset)
            except LookupError:
                break
            return charset
    return "utf-8"
