"""The `http` action's `with:` arguments, checked once into an :class:`HttpArgs`.

Light: no httpx (the request itself is in :mod:`wfctl.actions._http_client`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from wfctl.actions.base import ActionError
from wfctl.secrets import Masker

__all__ = ["DEFAULT_TIMEOUT", "MAX_BODY_BYTES", "HttpArgs", "invalid", "parse_http_args"]

DEFAULT_TIMEOUT = 30.0
#: The response body is read up to this many bytes (then truncated).
MAX_BODY_BYTES = 10 * 1024 * 1024
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SCHEMES = ("http", "https")
# Never in a host name (non-ASCII is fine: httpx encodes IDNA names). Such a URL fails
# here, not later as a DNS error that would be retried.
_NOT_IN_HOST = frozenset(' <>"{}|\\^`/?#@')


def invalid(message: str) -> ActionError:
    """A non-retryable `validation` error about the http step's arguments."""
    return ActionError(f"http: {message}", kind="validation", retryable=False)


@dataclass(frozen=True, slots=True)
class HttpArgs:
    """One request: what to send, where, which statuses count as success and the overall
    deadline in seconds."""

    url: str
    method: str
    headers: Mapping[str, str]
    params: Mapping[str, str]
    content: bytes | None
    expected_status: frozenset[int] | None  # None: any 2xx
    timeout: float

    def accepts(self, status: int) -> bool:
        """Whether `status` is a success for this step."""
        if self.expected_status is None:
            return 200 <= status < 300
        return status in self.expected_status

    def wanted(self) -> str:
        """The accepted statuses, for an error message."""
        if self.expected_status is None:
            return "2xx"
        return ", ".join(map(str, sorted(self.expected_status)))


def parse_http_args(args: Mapping[str, Any], masker: Masker) -> HttpArgs:
    """Check the rendered `with:` map; raise a `validation` ActionError on the first
    problem (the URL is masked in the message)."""
    url = _url(args.get("url"), masker)
    method = _method(args.get("method"))
    headers = _scalar_map(args.get("headers"), "headers")
    params = _scalar_map(args.get("params"), "params")
    expected = _expected(args.get("expected_status"))
    timeout = _timeout(args.get("timeout"))
    content, content_type = _content(args.get("body"), args.get("json"))
    if content_type and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = content_type
    return HttpArgs(url, method, headers, params, content, expected, timeout)


def _url(url: Any, masker: Masker) -> str:
    if not isinstance(url, str) or not url:
        raise invalid("`url` is required and must be a string")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError as exc:
        raise invalid(f"malformed `url` {masker.mask(url)!r}: {exc}") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise invalid(f"`url` must be an http:// or https:// URL, got {masker.mask(url)!r}")
    if not _valid_host(parts.hostname):
        raise invalid(f"malformed `url` {masker.mask(url)!r}: no valid host name")
    return url


def _valid_host(host: str | None) -> bool:
    if not host:
        return False
    return host.isprintable() and _NOT_IN_HOST.isdisjoint(host)


def _method(raw: Any) -> str:
    method = str(raw or "GET").upper()
    if method not in _METHODS:
        raise invalid(f"unsupported method {method!r}")
    return method


def _scalar_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid(f"`{what}` must be a map")
    return {_key(key, what): _scalar(key, item, what) for key, item in value.items()}


def _key(key: Any, what: str) -> str:
    if not isinstance(key, str):
        raise invalid(f"`{what}` keys must be strings, got {key!r}")
    return key


def _scalar(key: str, item: Any, what: str) -> str:
    match item:
        case bool():
            return "true" if item else "false"
        case str() | int() | float():
            return str(item)
        case _:
            raise invalid(f"`{what}` value for {key!r} must be a string or number")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _expected(value: Any) -> frozenset[int] | None:
    if value is None:
        return None  # any 2xx
    items = [value] if _is_int(value) else value
    if not isinstance(items, list | tuple) or not items or not all(map(_is_int, items)):
        raise invalid("`expected_status` must be a status code or a list of them")
    return frozenset(items)


def _timeout(value: Any) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise invalid(f"`timeout` must be a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except ValueError:
        raise invalid(f"`timeout` must be a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise invalid(f"`timeout` must be a positive number of seconds, got {value!r}")
    return seconds


def _content(body: Any, data: Any) -> tuple[bytes | None, str | None]:
    """The request body and the content type it implies (raw `body` implies none)."""
    if data is not None and body is not None:
        raise invalid("give either `json` or `body`, not both")
    if body is not None:
        if not isinstance(body, str):
            raise invalid("`body` must be a string (use `json` for structured data)")
        return body.encode("utf-8"), None
    if data is None:
        return None, None
    try:
        return json.dumps(data, allow_nan=False).encode("utf-8"), "application/json"
    except (TypeError, ValueError) as exc:
        raise invalid(f"`json` is not JSON-serialisable: {exc}") from None
