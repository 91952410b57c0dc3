"""Finding actions by name: built-ins first, then the `wfctl.actions` entry-point group.

:func:`builtin_action_names` and :func:`available_action_names` import no action module
(the validator calls them); :func:`get_action` imports and instantiates on first use and
caches the instance.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from typing import TYPE_CHECKING, Any, cast

from wfctl.actions.base import Action

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "ENTRY_POINT_GROUP",
    "ActionLoadError",
    "UnknownActionError",
    "available_action_names",
    "builtin_action_names",
    "get_action",
]

ENTRY_POINT_GROUP = "wfctl.actions"

# name -> (module, class); imported lazily.
_BUILTINS: dict[str, tuple[str, str]] = {
    "shell": ("wfctl.actions.shell", "ShellAction"),
    "python": ("wfctl.actions.python_call", "PythonAction"),
    "http": ("wfctl.actions.http", "HttpAction"),
    "noop": ("wfctl.actions.builtin", "NoopAction"),
    "set": ("wfctl.actions.builtin", "SetAction"),
    "sleep": ("wfctl.actions.builtin", "SleepAction"),
    "fail": ("wfctl.actions.builtin", "FailAction"),
}
_BUILTIN_NAMES = frozenset(_BUILTINS)

_lock = threading.Lock()
_instances: dict[str, Action] = {}
_entry_points: dict[str, EntryPoint] | None = None


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


def _plugin_entry_points() -> dict[str, EntryPoint]:
    global _entry_points
    if _entry_points is None:
        from importlib.metadata import entry_points

        found: dict[str, EntryPoint] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault(ep.name, ep)  # first distribution on sys.path wins
        _entry_points = found
    return _entry_points


def available_action_names() -> frozenset[str]:
    """Built-in names plus the names of installed plugins (metadata only: no plugin is
    imported)."""
    return _BUILTIN_NAMES | frozenset(_plugin_entry_points())


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
    return cast(Action, action)


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
            ep = _plugin_entry_points().get(name)
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


def _reset_for_tests() -> None:
    """Forget cached instances and entry points (tests install plugins on the fly)."""
    global _entry_points
    with _lock:
        _instances.clear()
        _entry_points = None
