"""Which action names exist: the built-ins and installed `wfctl.actions` plugins.

Names only, read from metadata: no action module is imported, so validation (which must
not import the actions) and the action registry share one list.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "BUILTIN_ACTIONS",
    "ENTRY_POINT_GROUP",
    "available_action_names",
    "plugin_entry_points",
]

ENTRY_POINT_GROUP: Final = "wfctl.actions"

#: Built-in action name -> (module, class), imported lazily by the registry.
BUILTIN_ACTIONS: Final[dict[str, tuple[str, str]]] = {
    "shell": ("wfctl.actions.shell", "ShellAction"),
    "python": ("wfctl.actions.python_call", "PythonAction"),
    "http": ("wfctl.actions.http", "HttpAction"),
    "noop": ("wfctl.actions.builtin", "NoopAction"),
    "set": ("wfctl.actions.builtin", "SetAction"),
    "sleep": ("wfctl.actions.builtin", "SleepAction"),
    "fail": ("wfctl.actions.builtin", "FailAction"),
}


#: Names registered in this process (`wfctl.actions.register_action`).
_registered: set[str] = set()


@cache
def plugin_entry_points() -> dict[str, EntryPoint]:
    """Installed plugins by name (the first distribution on sys.path wins)."""
    from importlib.metadata import entry_points

    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def available_action_names() -> frozenset[str]:
    """Built-in names, installed plugins' names (metadata only) and those registered in
    this process."""
    return frozenset(BUILTIN_ACTIONS) | frozenset(plugin_entry_points()) | frozenset(_registered)
