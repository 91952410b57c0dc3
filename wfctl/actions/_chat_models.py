"""The react step's model client: `provider:model` parsed, the provider's environment
defaults, the client's keyword arguments, LangChain's `init_chat_model`, and each
provider's exceptions mapped to our error kinds.

Imported only when a react step runs; every provider SDK is imported lazily, so a
provider that is not installed costs nothing and fails only the step that names it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from wfctl.actions.base import ActionError
from wfctl.format.extras import install_hint

__all__ = ["DEFAULT_ENV", "ChatClient", "error_for", "open_chat_model", "split_model"]

# The provider's own variables when the workflow names none (LangChain reads the same).
DEFAULT_ENV: dict[str, tuple[str | None, str | None]] = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "azure_openai": ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    "ollama": (None, "OLLAMA_HOST"),
}
# Clients with retries of their own: `provider_retries` sets them (default 0, so that the
# step's retry policy decides and every attempt in the report is one request).
_HAS_MAX_RETRIES = frozenset({"openai", "azure_openai", "anthropic", "mistralai", "groq"})
# The providers whose LangChain package the `agents` extra installs.
_IN_AGENTS_EXTRA = frozenset({"openai", "azure_openai", "anthropic", "ollama"})
# HTTP statuses that say "later": their own kinds, so that `retry_on` can name them.
_STATUS_KINDS = {529: "overloaded", 429: "rate_limited"}


def split_model(model: str) -> tuple[str | None, str]:
    """(provider, model name) of `provider:model`; provider None without a colon."""
    provider, sep, name = model.partition(":")
    return (provider, name) if sep else (None, model)


@dataclass
class ChatClient:
    """A chat model and what to close after the attempt (HTTP clients bound to its loop)."""

    model: Any
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        """Close the HTTP clients made for this attempt."""
        for close in self.closers:
            await close()


def open_chat_model(
    model_id: str, api_key: str | None, base_url: str | None, retries: int
) -> ChatClient:
    """The chat model for `model_id`, with its own HTTP client where the provider caches one."""
    provider, name = split_model(model_id)
    if not provider or not name:
        raise ActionError(
            f"model {model_id!r}: expected provider:model (e.g. openai:gpt-4o-mini, "
            "anthropic:claude-sonnet-4-5, ollama:llama3.2)",
            kind="validation",
            retryable=False,
        )
    kwargs: dict[str, Any] = {}
    if api_key:
        kwargs["api_key"] = api_key
    if base_url:
        kwargs["base_url"] = base_url
    if provider in _HAS_MAX_RETRIES:
        kwargs["max_retries"] = retries
    client = ChatClient(None)
    _SETUP.get(provider, _no_setup)(kwargs, client)
    client.model = _init(model_id, provider, name, kwargs)
    _AFTER.get(provider, _no_after)(client)
    return client


def _init(model_id: str, provider: str, name: str, kwargs: dict[str, Any]) -> Any:
    from langchain.chat_models import init_chat_model

    try:
        return init_chat_model(name, model_provider=provider, **kwargs)
    except ImportError as exc:
        raise ActionError(
            f"model {model_id!r}: {exc} ({_install_for(provider)})", kind="error", retryable=False
        ) from None
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        known = ", ".join(sorted(_known_providers()))
        hint = f" (providers: {known})" if known and "nsupported" in first else ""
        raise ActionError(
            f"model {model_id!r}: {first}{hint}", kind="validation", retryable=False
        ) from None


def _install_for(provider: str) -> str:
    if provider in _IN_AGENTS_EXTRA:
        return "install the agents extra: " + install_hint("agents")
    return f"install its LangChain package: pip install langchain-{provider.replace('_', '-')}"


def _known_providers() -> list[str]:
    from langchain.chat_models import base

    return list(getattr(base, "_BUILTIN_PROVIDERS", {}))


def _no_setup(kwargs: dict[str, Any], client: ChatClient) -> None:
    pass


def _no_after(client: ChatClient) -> None:
    pass


def _openai_setup(kwargs: dict[str, Any], client: ChatClient) -> None:
    import httpx

    # Our own client, closed after the attempt: langchain-openai would otherwise cache
    # one per base URL, bound to an event loop that a later run no longer has.
    http = kwargs["http_async_client"] = httpx.AsyncClient()
    client.closers.append(http.aclose)


def _anthropic_after(client: ChatClient) -> None:
    import anthropic

    # langchain-anthropic caches one httpx client per base URL for the whole process
    # (the same event-loop trap as OpenAI's) and takes none from us: give the model an
    # SDK client of this attempt's own.
    model = client.model
    http = anthropic.DefaultAsyncHttpxClient()
    model.__dict__["_async_client"] = anthropic.AsyncClient(
        **model._client_params, http_client=http
    )
    client.closers.append(http.aclose)


def _ollama_after(client: ChatClient) -> None:
    # ChatOllama makes its clients per model; close the async one's connections with it.
    http = getattr(getattr(client.model, "_async_client", None), "_client", None)
    if http is not None:
        client.closers.append(http.aclose)


_SETUP: dict[str, Callable[[dict[str, Any], ChatClient], None]] = {
    "openai": _openai_setup,
    "azure_openai": _openai_setup,
}
_AFTER: dict[str, Callable[[ChatClient], None]] = {
    "anthropic": _anthropic_after,
    "ollama": _ollama_after,
}


# -- errors -------------------------------------------------------------------------------


def error_for(exc: BaseException) -> ActionError | None:
    """Map a model client's exception to our error kinds (None: not a client error)."""
    for classify in _CLASSIFIERS:
        mapped = classify(exc)
        if mapped is not None:
            return mapped
    return None


def _status_error(code: int, message: str, provider: str) -> ActionError:
    """An HTTP error from a model: overloaded, rate limited, else http_status."""
    kind = _STATUS_KINDS.get(code, "http_status")
    retryable = code >= 500 or code in (408, 409, 429)
    return ActionError(
        f"{provider} returned HTTP {code}: {message}", kind=kind, retryable=retryable
    )


def _sdk_error(exc: BaseException, module: str, label: str) -> ActionError | None:
    """The OpenAI and Anthropic SDKs (both generated by Stainless) share their exceptions'
    names: timeouts, connection errors, and HTTP statuses with the parsed error body."""
    import importlib

    try:
        sdk = importlib.import_module(module)
    except ImportError:  # pragma: no cover - the agents extra brings both
        return None
    if isinstance(exc, sdk.APITimeoutError):
        return ActionError(f"{label} request timed out: {exc}", kind="timeout")
    if isinstance(exc, sdk.APIConnectionError):
        return ActionError(f"{label} unreachable: {exc}", kind="connection")
    if isinstance(exc, sdk.APIStatusError):
        return _status_error(exc.status_code, _body_message(exc), label)
    return None


def _body_message(exc: Any) -> str:
    """Anthropic's `error.type: error.message` when the body has one, else the SDK's message."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if isinstance(error, dict) and error.get("message"):
        return f"{error.get('type', 'error')}: {error['message']}"
    return str(exc.message)


def _ollama_error(exc: BaseException) -> ActionError | None:
    try:
        import ollama
    except ImportError:  # pragma: no cover - the agents extra brings it
        return None
    if not isinstance(exc, ollama.ResponseError):
        return None
    code = int(exc.status_code)
    if code == 404:
        return ActionError(
            f"ollama: {exc.error} (pull the model first: `ollama pull <model>`)",
            kind="http_status",
            retryable=False,
        )
    return _status_error(code, str(exc.error), "ollama") if code > 0 else None


def _transport_error(exc: BaseException) -> ActionError | None:
    """What the Ollama client lets through: the builtin ConnectionError, httpx timeouts."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return ActionError(f"model request timed out: {exc}", kind="timeout")
    if isinstance(exc, (ConnectionError, httpx.TransportError)):
        return ActionError(f"model unreachable: {exc}", kind="connection")
    return None


_CLASSIFIERS: tuple[Callable[[BaseException], ActionError | None], ...] = (
    partial(_sdk_error, module="openai", label="model"),
    partial(_sdk_error, module="anthropic", label="anthropic"),
    _ollama_error,
    _transport_error,
)
