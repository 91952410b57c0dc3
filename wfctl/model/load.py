"""Load a workflow file into the model: document, validation, engine objects."""

from __future__ import annotations

import os

from wfctl.document.loader import load_file
from wfctl.format.diagnostics import WorkflowError
from wfctl.model.build import build_workflow
from wfctl.model.workflow import Workflow
from wfctl.validate.files import check_document

__all__ = ["load_workflow"]


def load_workflow(path: str | os.PathLike[str]) -> Workflow:
    """Load, validate and build a workflow; raises WorkflowError with every problem."""
    doc = load_file(path, display_name=str(path))
    problems = check_document(doc)
    if problems:
        raise WorkflowError(problems)
    return build_workflow(doc)
