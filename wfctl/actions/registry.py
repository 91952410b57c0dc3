"""Finding actions by name: built-ins first, then the `wfctl.actions` entry-point group.

:func:`builtin_action_names` and :func:`available_action_names` import no action module
(the validator calls them); :func:`get_action` imports and instantiates on first use and
caches the instance.

Writing a plugin action: a class (instantiated without arguments) or an instance with a
``name`` string, an ``async def run(self, args, ctx)`` and a ``def target(self, args)``
(see :class:`~wfctl.actions.base.Action`), named by an entry point of the
``wfctl.actions`` group::

    [project.entry-points."wfctl.actions"]
    notify = "my_pkg.actions:NotifyAction"

It may declare ``capabilities``, a frozenset of
:class:`~wfctl.actions.base.Capability`, saying what it does; the engine reads them with
:func:`~wfctl.actions.base.capabilities_of` and never asks for an action by name:

* ``OUTSIDE_EFFECTS``: it changes something outside the run (files, services, messages),
  so the journal commits the step's start before it runs. Leave it out only for actions
  that just compute from their arguments (like ``set``): those may run again on resume
  without anyone noticing.
* ``PROCESS``: it starts processes (the engine expects their group to be killed on
  timeout or cancel).
* ``STREAMS_OUTPUT``: it reports output lines through ``ctx.on_output`` while it runs.
* ``REMOTE``: it can run on another machine (a Ray worker): its arguments and output
  pickle, and what it needs is importable there.

A plugin that declares nothing is treated as having outside effects (and nothing else):
the safe assumption. An unknown capability is a load error.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from typing import Any, cast

from wfctl.actions.base import Action, Capability
from wfctl.format import actions as _names
from wfctl.format.actions import (
    BUILTIN_ACTIONS,
    ENTRY_POINT_GROUP,
    available_action_names,
    plugin_entry_points,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ActionLoadError",
    "UnknownActionError",
    "available_action_names",
    "builtin_action_names",
    "get_action",
    "register_action",
    "unregister_action",
]

_BUILTINS = BUILTIN_ACTIONS
_BUILTIN_NAMES = frozenset(_BUILTINS)

_lock = threading.Lock()
_instances: dict[str, Action] = {}


class UnknownActionError(KeyError):
    """No built-in action and no installed plugin has this name."""

    def __init__(self, name: str, known: frozenset[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known
        self.message = f"unknown action {name!r}; known actions: {', '.join(sorted(known))}"

    def __str__(self) -> str:  # KeyError would show the repr of its argument
        return self.message


class ActionLoadError(RuntimeError):
    """A plugin action is installed but could not be loaded or is not an Action."""


def builtin_action_names() -> frozenset[str]:
    """Names of the built-in actions. Imports nothing."""
    return _BUILTIN_NAMES


def _instantiate(obj: Any, origin: str) -> Action:
    try:
        action = obj() if inspect.isclass(obj) else obj
    except Exception as exc:
        raise ActionLoadError(
            f"{origin} could not be instantiated: {type(exc).__name__}: {exc}"
        ) from exc
    run = getattr(action, "run", None)
    if not callable(run) or not callable(getattr(action, "target", None)):
        raise ActionLoadError(
            f"{origin} is not an action: it needs an async run(args, ctx) and target(args)"
        )
    if not inspect.iscoroutinefunction(run):
        raise ActionLoadError(f"{origin}: run() must be an async method")
    if not isinstance(getattr(action, "name", None), str):
        raise ActionLoadError(f"{origin}: the action has no `name` string attribute")
    _check_capabilities(getattr(action, "capabilities", None), origin)
    return cast(Action, action)


def _check_capabilities(declared: Any, origin: str) -> None:
    """A declaration the engine would misread (a typo, a bare string) fails the load."""
    if declared is None:
        return
    known = {c.value for c in Capability}
    if isinstance(declared, str) or not isinstance(declared, set | frozenset | list | tuple):
        raise ActionLoadError(f"{origin}: `capabilities` must be a set of Capability values")
    unknown = sorted(repr(c) for c in declared if not isinstance(c, str) or c not in known)
    if unknown:
        raise ActionLoadError(
            f"{origin}: unknown capabilities {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )


def get_action(name: str) -> Action:
    """The action called `name`: a built-in, else an installed `wfctl.actions` plugin.

    Raises :class:`UnknownActionError` (a KeyError) listing the known names, or
    :class:`ActionLoadError` when a plugin fails to load.
    """
    with _lock:
        cached = _instances.get(name)
        if cached is not None:
            return cached
        if name in _BUILTINS:
            module_name, class_name = _BUILTINS[name]
            cls = getattr(importlib.import_module(module_name), class_name)
            action: Action = cls()
        else:
            ep = plugin_entry_points().get(name)
            if ep is None:
                raise UnknownActionError(name, available_action_names())
            origin = f"action plugin {name!r} ({ep.value})"
            try:
                loaded = ep.load()
            except Exception as exc:
                raise ActionLoadError(
                    f"{origin} failed to load: {type(exc).__name__}: {exc}"
                ) from exc
            action = _instantiate(loaded, origin)
        _instances[name] = action
        return action


def register_action(action: object) -> Action:
    """Make an action instance available under its `name` in this process (for programs
    that embed wfctl, and tests); it shadows a plugin of the same name."""
    checked = _instantiate(action, f"action {getattr(action, 'name', action)!r}")
    with _lock:
        _instances[checked.name] = checked
        _names._registered.add(checked.name)
    return checked


def unregister_action(name: str) -> None:
    """Undo :func:`register_action`."""
    with _lock:
        _names._registered.discard(name)
        _instances.pop(name, None)


def _reset_for_tests() -> None:
    """Forget cached instances and entry points (tests install plugins on the fly)."""
    with _lock:
        _instances.clear()
        _names._registered.clear()
        plugin_entry_points.cache_clear()
