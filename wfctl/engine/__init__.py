"""The engine: runs a compiled plan event-driven, each attempt through one attempt loop.

The names a program that embeds wfctl needs are exported here (imported lazily, so that
importing this package stays light): `run_workflow`, `RunOptions`, the approval types and
`ActionError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "ActionError",
    "ApprovalDecision",
    "ApprovalHandler",
    "ApprovalRequest",
    "Backend",
    "RunOptions",
    "run_workflow",
]

if TYPE_CHECKING:
    from wfctl.actions.base import ActionError
    from wfctl.engine.backends import Backend
    from wfctl.engine.options import RunOptions
    from wfctl.engine.runner import run_workflow
    from wfctl.records import ApprovalDecision, ApprovalHandler, ApprovalRequest

_WHERE = {
    "ActionError": "wfctl.actions.base",
    "ApprovalDecision": "wfctl.records",
    "ApprovalHandler": "wfctl.records",
    "ApprovalRequest": "wfctl.records",
    "Backend": "wfctl.engine.backends",
    "RunOptions": "wfctl.engine.options",
    "run_workflow": "wfctl.engine.runner",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'wfctl.engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
