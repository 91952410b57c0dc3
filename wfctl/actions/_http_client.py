"""The `http` action's request, with httpx, bounded by an overall deadline.

The only module of the action that imports httpx (about 100 ms, so the action imports
this module in a worker thread, once); errors come back as ActionError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import anyio
import httpcore  # noqa: F401 - httpx imports it on its first client: do it here, off the loop
import httpx

from wfctl.actions._http_args import MAX_BODY_BYTES, HttpArgs, invalid
from wfctl.actions.base import ActionError

__all__ = ["Response", "fetch"]

_CLOSE_SECONDS = 2
# httpx builds an SSL context (loading certifi's CA bundle: 40-80 ms, holding the event
# loop) for every client it makes; build the default one once, with this module (which
# is imported off the loop), and give it to every client. SSL_CERT_FILE / SSL_CERT_DIR
# are read here, once per process.
_SSL_CONTEXT = httpx.create_ssl_context()


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: status, headers (lower-case names, repeats joined with ``, ``),
    the body up to :data:`MAX_BODY_BYTES` and whether it was cut there."""

    status: int
    reason: str
    headers: dict[str, str]
    raw: bytes
    truncated: bool


async def fetch(spec: HttpArgs, where: str, mask: Callable[[str], str]) -> Response:
    """Send the request and read the response within ``spec.timeout`` seconds in all.

    `where` (masked ``METHOD url``) names the request in error messages; `mask` masks
    httpx's own messages."""
    try:
        with anyio.fail_after(spec.timeout):
            return await _request(spec)
    except TimeoutError:
        raise ActionError(
            f"http: {where} did not complete within {spec.timeout:g} s", kind="timeout"
        ) from None
    except (httpx.RequestError, httpx.InvalidURL) as exc:
        raise _translate(exc, where, mask) from None


def _timed_out(exc: Exception, where: str, mask: Callable[[str], str]) -> ActionError:
    return ActionError(f"http: {where} timed out ({type(exc).__name__})", kind="timeout")


def _bad_url(exc: Exception, where: str, mask: Callable[[str], str]) -> ActionError:
    return invalid(mask(f"{where}: {exc}"))


def _no_connection(exc: Exception, where: str, mask: Callable[[str], str]) -> ActionError:
    detail = mask(str(exc)) or "no detail"
    return ActionError(f"http: {where} failed: {type(exc).__name__}: {detail}", kind="connection")


def _undecodable(exc: Exception, where: str, mask: Callable[[str], str]) -> ActionError:
    return ActionError(f"http: {where}: cannot decode the response: {mask(str(exc))}")


# httpx exception -> error, most specific first (timeouts and unsupported protocols are
# also transport errors).
_ERRORS: tuple[
    tuple[type[Exception], Callable[[Exception, str, Callable[[str], str]], ActionError]], ...
] = (
    (httpx.TimeoutException, _timed_out),
    (httpx.InvalidURL, _bad_url),
    (httpx.UnsupportedProtocol, _bad_url),
    (httpx.TransportError, _no_connection),
    (httpx.DecodingError, _undecodable),
)


def _translate(exc: Exception, where: str, mask: Callable[[str], str]) -> Exception:
    for kind, make in _ERRORS:
        if isinstance(exc, kind):
            return make(exc, where, mask)
    return exc  # e.g. TooManyRedirects, which cannot happen without following redirects


async def _request(spec: HttpArgs) -> Response:
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(spec.timeout), follow_redirects=False, verify=_SSL_CONTEXT
    )
    try:
        request = client.build_request(
            spec.method,
            spec.url,
            headers=dict(spec.headers),
            params=dict(spec.params) or None,
            content=spec.content,
        )
        response = await client.send(request, stream=True)
        try:
            raw, truncated = await _read_body(response)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_SECONDS):
                await response.aclose()
        return Response(
            response.status_code, response.reason_phrase, _merged(response), raw, truncated
        )
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_SECONDS):
            await client.aclose()


async def _read_body(response: httpx.Response) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"".join(chunks)[:MAX_BODY_BYTES], True
    return b"".join(chunks), False


def _merged(response: httpx.Response) -> dict[str, str]:
    merged: dict[str, str] = {}
    for key, value in response.headers.multi_items():
        key = key.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged
