"""wfctl: a workflow engine on the command line, and its Python API.

    import anyio, wfctl

    workflow = wfctl.load_workflow("workflows/release.yaml")
    options = wfctl.RunOptions(approvals={"approve": wfctl.ApprovalDecision(True, by="me")})
    result = anyio.run(wfctl.run_workflow, workflow, {"version": "1.2.3"}, options)

Every name is imported on first use, so that `import wfctl` (and `wfctl validate`) stays
light. Modules whose names start with `_`, and everything not listed in `__all__`, are
internal and may change between releases.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from wfctl.actions.base import Action, ActionContext, ActionError, Capability
    from wfctl.actions.registry import register_action
    from wfctl.durable import approve_run, resume_run
    from wfctl.engine.backends import Backend
    from wfctl.engine.langgraph_embed import to_langgraph
    from wfctl.engine.options import RunOptions
    from wfctl.engine.runner import run_workflow
    from wfctl.format.diagnostics import Diagnostic, WorkflowError
    from wfctl.format.error_kinds import ErrorKind
    from wfctl.model import StepStatus, Workflow, WorkflowState
    from wfctl.model.load import load_workflow
    from wfctl.records import ApprovalDecision, ApprovalRequest, RunResult, StepRecord
    from wfctl.validate.files import FileResult, validate_paths

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # load and validate
    "load_workflow": "wfctl.model.load",
    "validate_paths": "wfctl.validate.files",
    "FileResult": "wfctl.validate.files",
    "Diagnostic": "wfctl.format.diagnostics",
    "WorkflowError": "wfctl.format.diagnostics",
    "Workflow": "wfctl.model",
    # run, resume (RunOptions.resume) and approve (RunOptions.approvals)
    "run_workflow": "wfctl.engine.runner",
    "RunOptions": "wfctl.engine.options",
    "RunResult": "wfctl.records",
    "StepRecord": "wfctl.records",
    "StepStatus": "wfctl.model",
    "WorkflowState": "wfctl.model",
    "ApprovalDecision": "wfctl.records",
    "ApprovalRequest": "wfctl.records",
    "approve_run": "wfctl.durable",
    "resume_run": "wfctl.durable",
    # writing actions and backends
    "Action": "wfctl.actions.base",
    "ActionContext": "wfctl.actions.base",
    "ActionError": "wfctl.actions.base",
    "Capability": "wfctl.actions.base",
    "ErrorKind": "wfctl.format.error_kinds",
    "register_action": "wfctl.actions.registry",
    "Backend": "wfctl.engine.backends",
    # embedding in a LangGraph application
    "to_langgraph": "wfctl.engine.langgraph_embed",
}

__all__ = [
    "Action",
    "ActionContext",
    "ActionError",
    "ApprovalDecision",
    "ApprovalRequest",
    "Backend",
    "Capability",
    "Diagnostic",
    "ErrorKind",
    "FileResult",
    "RunOptions",
    "RunResult",
    "StepRecord",
    "StepStatus",
    "Workflow",
    "WorkflowError",
    "WorkflowState",
    "__version__",
    "approve_run",
    "load_workflow",
    "register_action",
    "resume_run",
    "run_workflow",
    "to_langgraph",
    "validate_paths",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wfctl' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
