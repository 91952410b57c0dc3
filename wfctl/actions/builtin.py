"""The small built-in actions: noop, set, sleep, fail."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import anyio

from wfctl.actions.base import ERROR_KINDS, ActionContext, ActionError

__all__ = ["NO_OUTSIDE_EFFECTS", "FailAction", "NoopAction", "SetAction", "SleepAction"]

# Actions that change nothing outside the run: the journal need not commit before them.
NO_OUTSIDE_EFFECTS = frozenset({"noop", "set", "sleep", "fail"})


def _invalid(message: str) -> ActionError:
    return ActionError(message, kind="validation", retryable=False)


class NoopAction:
    """Does nothing; output ``null``."""

    name = "noop"

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        return None

    def target(self, args: Mapping[str, Any]) -> str:
        return "noop"


class SetAction:
    """Output the `values` map (the scheduler merges it into `vars`).

    Secret values are masked: state is stored in plain text, so a secret must never end up
    in `vars`. Use the secret directly where it is needed instead.
    """

    name = "set"
    sets_vars = True  # the engine merges the output into `vars`

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        values = args.get("values", {})
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise _invalid(f"set: `values` must be a map, got {type(values).__name__}")
        return ctx.masker.mask_data(dict(values))

    def target(self, args: Mapping[str, Any]) -> str:
        return "set"


class SleepAction:
    """Sleep `seconds` (a non-negative number); output ``{"slept": seconds}``."""

    name = "sleep"

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        raw = args.get("seconds")
        if isinstance(raw, bool) or raw is None:
            raise _invalid(f"sleep: `seconds` must be a number, got {raw!r}")
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            raise _invalid(f"sleep: `seconds` must be a number, got {raw!r}") from None
        if not math.isfinite(seconds) or seconds < 0:
            raise _invalid(f"sleep: `seconds` must be a finite number >= 0, got {raw!r}")
        await anyio.sleep(seconds)
        return {"slept": seconds}

    def target(self, args: Mapping[str, Any]) -> str:
        return "sleep"


class FailAction:
    """Always fail, with `message` and error `kind` (default ``error``)."""

    name = "fail"

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        message = args.get("message") or "failed by the fail action"
        kind = args.get("kind") or "error"
        if kind not in ERROR_KINDS:
            raise _invalid(
                f"fail: unknown error kind {kind!r}; one of {', '.join(sorted(ERROR_KINDS))}"
            )
        raise ActionError(ctx.masker.mask(str(message)), kind=str(kind))

    def target(self, args: Mapping[str, Any]) -> str:
        return "fail"
