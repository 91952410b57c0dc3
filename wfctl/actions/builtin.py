"""The small built-in actions: noop, set, sleep, fail.

None of them changes anything outside the run, so each declares no capabilities.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import anyio

from wfctl.actions.base import ERROR_KINDS, ActionContext, ActionError, Capability

__all__ = ["NO_OUTSIDE_EFFECTS", "FailAction", "NoopAction", "SetAction", "SleepAction"]

_NONE: frozenset[Capability] = frozenset()


def _invalid(message: str) -> ActionError:
    return ActionError(message, kind="validation", retryable=False)


class NoopAction:
    """Does nothing; output ``null``."""

    name = "noop"
    capabilities: frozenset[Capability] = _NONE

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
    capabilities: frozenset[Capability] = _NONE
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


def _seconds(raw: Any) -> float:
    """`sleep`'s `seconds`: a finite number >= 0 (a numeric string is accepted)."""
    if isinstance(raw, bool) or raw is None:
        raise _invalid(f"sleep: `seconds` must be a number, got {raw!r}")
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        raise _invalid(f"sleep: `seconds` must be a number, got {raw!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise _invalid(f"sleep: `seconds` must be a finite number >= 0, got {raw!r}")
    return seconds


class SleepAction:
    """Sleep `seconds` (a non-negative number); output ``{"slept": seconds}``."""

    name = "sleep"
    capabilities: frozenset[Capability] = _NONE

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        seconds = _seconds(args.get("seconds"))
        await anyio.sleep(seconds)
        return {"slept": seconds}

    def target(self, args: Mapping[str, Any]) -> str:
        return "sleep"


class FailAction:
    """Always fail, with `message` and error `kind` (default ``error``)."""

    name = "fail"
    capabilities: frozenset[Capability] = _NONE

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


#: Names of the built-in actions that change nothing outside the run (the journal need
#: not commit before them), derived from their declared capabilities. The engine moves
#: to :func:`wfctl.actions.base.capabilities_of`; this stays until it has.
NO_OUTSIDE_EFFECTS: frozenset[str] = frozenset(
    action.name
    for action in (NoopAction, SetAction, SleepAction, FailAction)
    if Capability.OUTSIDE_EFFECTS not in action.capabilities
)
