"""Functions called by the `python` action in tests/test_actions_python.py."""

from __future__ import annotations

import threading
import time

import anyio

from wfctl.actions.base import ActionError

EVENTS: list[str] = []


def add(a, b=0):
    return a + b


def describe(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs, "thread": threading.current_thread().name}


async def async_add(a, b=0):
    await anyio.sleep(0)
    return a + b


async def async_forever(marker):
    EVENTS.append(f"{marker}:start")
    try:
        await anyio.sleep(100)
    finally:
        EVENTS.append(f"{marker}:cleanup")


def sync_sleep(seconds):
    time.sleep(seconds)
    return "slept"


def boom(message="bad input"):
    raise ValueError(message)


def custom_failure():
    raise ActionError("the service said no", kind="http_status", retryable=False)


def exits():
    raise SystemExit(3)


def returns_object():
    return {"when": object()}


def returns_nan():
    return float("nan")


def returns_tuple():
    return (1, (2, 3))


def returns_secret(secret):
    return {"token": secret, "nested": [f"Bearer {secret}"]}


class Greeter:
    @staticmethod
    def hello(name):
        return f"hello {name}"


class AsyncCallable:
    async def __call__(self, x):
        return x * 2


doubler = AsyncCallable()
not_callable = 42
