"""The `python` action: call ``module:function`` with `args` and `kwargs`.

* Async functions are awaited on the event loop; cancelling the step cancels them.
* Sync functions run in a daemon worker thread (kept for later calls). Python cannot
  interrupt a thread: when the step is cancelled or times out the call is *abandoned* (its
  result is discarded, and the thread keeps running until the function returns, without
  keeping wfctl from exiting).
  Make long-running sync functions check a deadline themselves, or write them async.
* The module is imported with :func:`importlib.import_module`, so it must be importable
  from ``sys.path`` (installed, or on ``PYTHONPATH``).
* The return value must be JSON-serialisable; it is normalised through JSON (tuples become
  lists) and secrets in it are masked.
* An :class:`ActionError` raised by the function passes through unchanged, so a function
  can pick its own error kind; any other exception becomes kind ``error``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import inspect
import json
import queue
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from wfctl.actions.base import ActionContext, ActionError, Capability
from wfctl.secrets import Masker

__all__ = [
    "PythonAction",
    "PythonArgs",
    "json_normalise",
    "parse_python_args",
    "resolve_function",
]


def _invalid(message: str) -> ActionError:
    return ActionError(message, kind="validation", retryable=False)


def _parse_ref(ref: Any) -> tuple[str, str]:
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise _invalid(f"python: `function` must be 'module:function', got {ref!r}")
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise _invalid(f"python: `function` must be 'module:function', got {ref!r}")
    return module, attr


def resolve_function(ref: str) -> Callable[..., Any]:
    """Import ``module:attr.path`` and return the callable. Raises a non-retryable
    ActionError when the module cannot be imported or the attribute is missing."""
    module_name, attr_path = _parse_ref(ref)
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            msg = f"python: cannot import module {module_name!r}: no module named {exc.name!r}"
        else:  # the module exists but itself imports something missing
            msg = f"python: importing module {module_name!r} failed: {exc}"
        raise ActionError(msg, retryable=False) from exc
    except Exception as exc:  # SyntaxError, errors in module-level code, ...
        raise ActionError(
            f"python: importing module {module_name!r} failed: {type(exc).__name__}: {exc}",
            retryable=False,
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ActionError(
                f"python: {ref!r}: {module_name!r} has no attribute {attr_path!r}",
                retryable=False,
            ) from None
    if not callable(obj):
        raise ActionError(
            f"python: {ref!r} is not callable (it is a {type(obj).__name__})", retryable=False
        )
    return obj  # type: ignore[no-any-return]


def _imported(ref: str) -> bool:
    """Is the module of `ref` imported already (not still being imported by a thread)?"""
    module = sys.modules.get(ref.partition(":")[0])
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


def json_normalise(value: Any) -> Any:
    """Round-trip through strict JSON; raise a non-retryable ActionError if impossible."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ActionError(
            f"step output is not JSON-serialisable: {exc}", kind="error", retryable=False
        ) from exc
    return json.loads(text)


class _ThreadInterrupt(Exception):
    """A KeyboardInterrupt raised by a step function in its worker thread."""


class _DaemonThreads:
    """Daemon threads kept idle between calls, at most `keep` of them.

    Not a ThreadPoolExecutor: its threads are joined when the interpreter exits, so a call
    abandoned by a cancel would keep wfctl from exiting. A thread per call cost ~1 ms per
    attempt on a Ray worker (against ~0.1 ms to hand a call to an idle thread).
    """

    def __init__(self, keep: int = 8) -> None:
        self._keep = keep
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` (which must not raise) in an idle thread, or a new one."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(
                target=self._serve, args=(inbox,), name="wfctl-python-step", daemon=True
            ).start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            inbox.get()()
            with self._lock:
                if len(self._idle) >= self._keep:
                    return
                self._idle.append(inbox)


_THREADS = _DaemonThreads()


async def _run_in_daemon_thread(func: Callable[[], Any]) -> Any:
    """Run `func` in a daemon thread and await its result. If the await is cancelled, the
    thread is abandoned (it cannot be interrupted; it is reused once `func` returns) and
    the cancellation propagates."""
    token = anyio.lowlevel.current_token()
    done = anyio.Event()
    box: dict[str, Any] = {}
    context = contextvars.copy_context()

    def worker() -> None:
        try:
            box["value"] = context.run(func)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt too: report them
            box["error"] = exc
        finally:
            # If the event loop is gone, nobody is waiting any more.
            with contextlib.suppress(Exception):
                anyio.from_thread.run_sync(done.set, token=token)

    _THREADS.submit(worker)
    await done.wait()
    if "error" in box:
        error = box["error"]
        if isinstance(error, KeyboardInterrupt):
            # Raised by the function itself; don't let it pass for the user's Ctrl-C.
            raise _ThreadInterrupt(*error.args) from error
        raise error
    return box["value"]


@dataclass(frozen=True, slots=True)
class PythonArgs:
    """The call: ``module:function`` and its positional and keyword arguments."""

    function: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


def parse_python_args(args: Mapping[str, Any]) -> PythonArgs:
    """Check the rendered `with:` map; raise a `validation` ActionError on the first
    problem (the function is not imported here)."""
    ref = args.get("function")
    _parse_ref(ref)
    call_args = args.get("args") or []
    call_kwargs = args.get("kwargs") or {}
    if not isinstance(call_args, list | tuple):
        raise _invalid(f"python: `args` must be a list, got {type(call_args).__name__}")
    if not isinstance(call_kwargs, Mapping) or not all(isinstance(k, str) for k in call_kwargs):
        raise _invalid("python: `kwargs` must be a map with string keys")
    return PythonArgs(str(ref), tuple(call_args), call_kwargs)


async def _call(func: Callable[..., Any], spec: PythonArgs) -> Any:
    """Await an async function here; run a sync one in a worker thread."""
    if inspect.iscoroutinefunction(func):
        return await func(*spec.args, **spec.kwargs)
    result = await _run_in_daemon_thread(functools.partial(func, *spec.args, **spec.kwargs))
    if inspect.isawaitable(result):  # e.g. an object with an async __call__
        result = await result
    return result


async def _awaited(value: Any) -> Any:
    return await value


def _call_error(exc: BaseException, masker: Masker) -> ActionError:
    exc_name = "KeyboardInterrupt" if isinstance(exc, _ThreadInterrupt) else type(exc).__name__
    return ActionError(masker.mask(f"{exc_name}: {exc}"))


class PythonAction:
    """``python`` action; see the module docstring."""

    name = "python"
    # REMOTE: a `module:function` reference is importable on a worker as well as here.
    capabilities: frozenset[Capability] = frozenset({Capability.OUTSIDE_EFFECTS, Capability.REMOTE})

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        """Call the function; output its (JSON-normalised, masked) return value."""
        spec = parse_python_args(args)
        if _imported(spec.function):
            func = resolve_function(spec.function)  # attribute lookups only: no thread hop
        else:
            # Importing may run arbitrary module code: keep it off the event loop.
            func = await _run_in_daemon_thread(functools.partial(resolve_function, spec.function))
        try:
            result = await _call(func, spec)
        except ActionError:
            raise
        except (Exception, SystemExit, _ThreadInterrupt) as exc:
            # Cancellation exceptions derive from BaseException only: they propagate.
            raise _call_error(exc, ctx.masker) from exc
        return ctx.masker.mask_data(json_normalise(result))

    def run_blocking(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        """The call on the caller's own thread, for a caller that has its process to
        itself and stops it with KeyboardInterrupt (a Ray worker; cancelling then stops the
        function, where `run` abandons its thread). NotImplemented for an async function:
        it needs `run`."""
        spec = parse_python_args(args)
        func = resolve_function(spec.function)
        if inspect.iscoroutinefunction(func):
            return NotImplemented
        try:
            result = func(*spec.args, **spec.kwargs)
            if inspect.isawaitable(result):  # e.g. an object with an async __call__
                result = anyio.run(_awaited, result)
        except ActionError:
            raise
        except (Exception, SystemExit) as exc:  # KeyboardInterrupt: the caller's cancel
            raise _call_error(exc, ctx.masker) from exc
        return ctx.masker.mask_data(json_normalise(result))

    def target(self, args: Mapping[str, Any]) -> str:
        """One breaker per function: ``python:module:function``."""
        return f"python:{args.get('function')}"
