"""wfctl: a workflow engine on the command line.

Python API: `load_workflow(path)` and `await run_workflow(workflow, inputs, ...)`.
Both are imported lazily so that `import wfctl` (and `wfctl validate`) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["RunResult", "__version__", "load_workflow", "run_workflow"]

if TYPE_CHECKING:
    from wfctl.engine.runner import run_workflow
    from wfctl.model.load import load_workflow
    from wfctl.records import RunResult


def __getattr__(name: str) -> Any:
    if name == "load_workflow":
        from wfctl.model.load import load_workflow

        return load_workflow
    if name == "run_workflow":
        from wfctl.engine.runner import run_workflow

        return run_workflow
    if name == "RunResult":
        from wfctl.records import RunResult

        return RunResult
    raise AttributeError(f"module 'wfctl' has no attribute {name!r}")
