"""Step actions: built-ins (shell, python, http, noop, set, sleep, fail) and plugins.

Importing this package is cheap (no anyio, no httpx): the action modules themselves are
imported on first use by :func:`get_action`.

Each action declares its ``capabilities`` (:class:`Capability`: outside effects, starts
processes, streams output, can run remotely), read with :func:`capabilities_of`; one that
declares none is taken to have outside effects. :mod:`wfctl.actions.registry` says how
to write and register a plugin action.
"""

from __future__ import annotations

from wfctl.actions.base import (
    ERROR_KINDS,
    Action,
    ActionContext,
    ActionError,
    Capability,
    ErrorKind,
    capabilities_of,
)
from wfctl.actions.registry import (
    ActionLoadError,
    UnknownActionError,
    available_action_names,
    builtin_action_names,
    get_action,
    register_action,
    unregister_action,
)

__all__ = [
    "ERROR_KINDS",
    "Action",
    "ActionContext",
    "ActionError",
    "ActionLoadError",
    "Capability",
    "ErrorKind",
    "UnknownActionError",
    "available_action_names",
    "builtin_action_names",
    "capabilities_of",
    "get_action",
    "register_action",
    "unregister_action",
]
