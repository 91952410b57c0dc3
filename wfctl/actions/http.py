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
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from wfctl.actions.base import ActionContext, ActionError

__all__ = ["DEFAULT_TIMEOUT", "ERROR_BODY_CHARS", "MAX_BODY_BYTES", "HttpAction"]

DEFAULT_TIMEOUT = 30.0
MAX_BODY_BYTES = 10 * 1024 * 1024
ERROR_BODY_CHARS = 4096
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _invalid(message: str) -> ActionError:
    return ActionError(f"http: {message}", kind="validation", retryable=False)


def _scalar_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _invalid(f"`{what}` must be a map")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise _invalid(f"`{what}` keys must be strings, got {key!r}")
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            out[key] = str(item)
        else:
            raise _invalid(f"`{what}` value for {key!r} must be a string or number")
    return out


def _expected(value: Any) -> frozenset[int] | None:
    if value is None:
        return None  # any 2xx
    items = [value] if isinstance(value, int) else value
    if (
        isinstance(value, bool)
        or not isinstance(items, list | tuple)
        or not items
        or not all(isinstance(c, int) and not isinstance(c, bool) for c in items)
    ):
        raise _invalid("`expected_status` must be a status code or a list of them")
    return frozenset(items)


def _timeout(value: Any) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _invalid(f"`timeout` must be a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except ValueError:
        raise _invalid(f"`timeout` must be a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise _invalid(f"`timeout` must be a positive number of seconds, got {value!r}")
    return seconds


def _parse_json(text: str) -> Any:
    if not text.strip():
        return None

    def reject_constant(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(text, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return None


class HttpAction:
    """``http`` action; see the module docstring."""

    name = "http"

    def target(self, args: Mapping[str, Any]) -> str:
        url = args.get("url")
        try:
            parts = urlsplit(str(url))
            host = parts.hostname
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
        except ValueError:
            host = None
            port = None
        if not host:
            return f"http:{url}"
        if ":" in host:
            host = f"[{host}]"
        return f"http:{host}:{port}"

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        masker = ctx.masker
        url = args.get("url")
        if not isinstance(url, str) or not url:
            raise _invalid("`url` is required and must be a string")
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise _invalid(f"`url` must be an http:// or https:// URL, got {masker.mask(url)!r}")
        method = str(args.get("method") or "GET").upper()
        if method not in _METHODS:
            raise _invalid(f"unsupported method {method!r}")
        headers = _scalar_map(args.get("headers"), "headers")
        params = _scalar_map(args.get("params"), "params")
        expected = _expected(args.get("expected_status"))
        timeout = _timeout(args.get("timeout"))
        if args.get("json") is not None and args.get("body") is not None:
            raise _invalid("give either `json` or `body`, not both")
        body = args.get("body")
        content: bytes | None = None
        if body is not None:
            if not isinstance(body, str):
                raise _invalid("`body` must be a string (use `json` for structured data)")
            content = body.encode("utf-8")
        elif args.get("json") is not None:
            try:
                content = json.dumps(args["json"], allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise _invalid(f"`json` is not JSON-serialisable: {exc}") from None
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"

        where = masker.mask(f"{method} {url}")
        try:
            with anyio.fail_after(timeout):
                status, reason, resp_headers, raw, truncated = await self._request(
                    method, url, headers, params, content, timeout
                )
        except TimeoutError:
            raise ActionError(
                f"http: {where} did not complete within {timeout:g} s", kind="timeout"
            ) from None
        except httpx.TimeoutException as exc:
            raise ActionError(
                f"http: {where} timed out ({type(exc).__name__})", kind="timeout"
            ) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise _invalid(masker.mask(f"{where}: {exc}")) from None
        except httpx.TransportError as exc:
            detail = masker.mask(str(exc)) or "no detail"
            raise ActionError(
                f"http: {where} failed: {type(exc).__name__}: {detail}", kind="connection"
            ) from None
        except httpx.DecodingError as exc:
            raise ActionError(
                f"http: {where}: cannot decode the response: {masker.mask(str(exc))}"
            ) from None

        text = raw.decode(_charset(resp_headers), errors="replace")
        text = masker.mask(text)
        if not (status in expected if expected is not None else 200 <= status < 300):
            shown = text if len(text) <= ERROR_BODY_CHARS else text[:ERROR_BODY_CHARS] + "..."
            wanted = "2xx" if expected is None else ", ".join(map(str, sorted(expected)))
            raise ActionError(
                f"http: {where} returned {status} {reason}".rstrip() + f" (expected {wanted})",
                kind="http_status",
                output={"status": status, "body": shown},
            )
        return {
            "status": status,
            "headers": masker.mask_data(resp_headers),
            "body": text,
            "json": None if truncated else _parse_json(text),
        }

    async def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: dict[str, str],
        content: bytes | None,
        timeout: float,
    ) -> tuple[int, str, dict[str, str], bytes, bool]:
        client = httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False)
        try:
            request = client.build_request(
                method, url, headers=headers, params=params or None, content=content
            )
            response = await client.send(request, stream=True)
            try:
                chunks: list[bytes] = []
                size = 0
                truncated = False
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        truncated = True
                        break
                raw = b"".join(chunks)[:MAX_BODY_BYTES]
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    await response.aclose()
            merged: dict[str, str] = {}
            for key, value in response.headers.multi_items():
                key = key.lower()
                merged[key] = f"{merged[key]}, {value}" if key in merged else value
            return response.status_code, response.reason_phrase, merged, raw, truncated
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await client.aclose()


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
