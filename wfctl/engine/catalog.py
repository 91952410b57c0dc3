"""The actions of one run, looked up once, and what each declares about itself.

The engine never tests an action's name: it asks what the action declares (its
:class:`~wfctl.actions.base.Capability` set, `sets_vars`).
"""

from __future__ import annotations

from typing import Any

from wfctl.actions.base import Action, Capability, capabilities_of
from wfctl.model import Step

__all__ = ["ActionCatalog"]


class ActionCatalog:
    """Per run: action instances by name and their declared traits (cached)."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}
        self._caps: dict[str, frozenset[Capability]] = {}
        self._sets_vars: dict[str | None, bool] = {None: False}

    def get(self, name: str) -> Action:
        """The action called `name` (registry lookup once per run)."""
        action = self._actions.get(name)
        if action is None:
            from wfctl.actions.registry import get_action

            action = self._actions[name] = get_action(name)
        return action

    def capabilities(self, name: str) -> frozenset[Capability] | None:
        """What the action declares; None if there is no such action."""
        caps = self._caps.get(name)
        if caps is None:
            try:
                action: Any = self.get(name)
            except Exception:
                return None
            caps = self._caps[name] = capabilities_of(action)
        return caps

    def has_outside_effects(self, name: str | None) -> bool:
        """May the action touch the world (the journal commits before it starts)?"""
        caps = self.capabilities(name) if name is not None else None
        return caps is None or Capability.OUTSIDE_EFFECTS in caps

    def starts_processes(self, name: str | None) -> bool:
        """Does the action start processes (so its arguments may reach a command line)?"""
        caps = self.capabilities(name) if name is not None else None
        return caps is not None and Capability.PROCESS in caps

    def may_template_secrets(self, step: Step) -> bool:
        """Secret values never reach a command line by templating (PITFALLS.md)."""
        return not self.starts_processes(step.action)

    def sets_vars(self, name: str | None) -> bool:
        """Does the action's output merge into `vars` (declared: `sets_vars = True`)?"""
        known = self._sets_vars.get(name)
        if known is None:
            try:
                known = bool(getattr(self.get(str(name)), "sets_vars", False))
            except Exception:
                known = False
            self._sets_vars[name] = known
        return known
