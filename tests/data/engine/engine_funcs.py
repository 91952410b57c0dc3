"""Python callables for the engine tests (`python` action): counters, concurrency probes."""

from __future__ import annotations

import threading

import anyio

from wfctl.actions.base import ActionError

_lock = threading.Lock()
CALLS: dict[str, int] = {}
ACTIVE: dict[str, int] = {}
PEAK: dict[str, int] = {}


def reset() -> None:
    with _lock:
        CALLS.clear()
        ACTIVE.clear()
        PEAK.clear()


def count(key: str) -> int:
    """Return how many times `count(key)` has been called (1 on the first call)."""
    with _lock:
        CALLS[key] = CALLS.get(key, 0) + 1
        return CALLS[key]


def fail_times(key: str, times: int, kind: str = "error") -> dict:
    """Fail the first `times` calls for `key` (error kind `kind`), then succeed."""
    n = count(key)
    if n <= times:
        raise ActionError(f"planned failure {n} of {times}", kind=kind)
    return {"calls": n}


async def probe(key: str, seconds: float, value: object = None) -> object:
    """Sleep while counting how many probes for `key` run at once; return `value`."""
    with _lock:
        ACTIVE[key] = ACTIVE.get(key, 0) + 1
        PEAK[key] = max(PEAK.get(key, 0), ACTIVE[key])
    try:
        await anyio.sleep(seconds)
    finally:
        with _lock:
            ACTIVE[key] -= 1
    return value


async def async_echo(value: object) -> object:
    await anyio.sleep(0)
    return value


def sync_echo(value: object) -> dict:
    return {"value": value, "thread": threading.current_thread().name != "MainThread"}


def returns_set() -> object:
    return {1, 2, 3}


def echo_secret(value: str) -> dict:
    """Return a secret in several disguises (the engine must mask every one)."""
    import base64
    import json

    return {
        "plain": value,
        "json": json.dumps({"v": value}),
        "b64": base64.b64encode(value.encode()).decode(),
    }


def raise_with(value: str) -> None:
    raise RuntimeError(f"could not use {value}")


def parse_int(value: str) -> int:
    return int(value)


def slow_first(key: str, seconds: float) -> dict:
    """Sleep `seconds` on the first call for `key` (to trip a step timeout), then return."""
    import time

    n = count(key)
    if n == 1:
        time.sleep(seconds)
    return {"calls": n}


async def async_slow_first(key: str, seconds: float) -> dict:
    n = count(key)
    if n == 1:
        await anyio.sleep(seconds)
    return {"calls": n}



async def probe_or_fail(key: str, seconds: float | str) -> object:
    """`probe` for a number; for text, fail after one turn of the event loop (so that
    siblings started with it are running by then)."""
    if isinstance(seconds, str):
        await anyio.sleep(0)
        raise RuntimeError(seconds)
    return await probe(key, seconds)
