"""The public API: the names `wfctl` exports are pinned, each resolves, and none is heavy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import wfctl

PUBLIC = [
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


def test_exported_names_are_pinned() -> None:
    assert sorted(wfctl.__all__) == sorted(PUBLIC)
    assert sorted(dir(wfctl)) == sorted(PUBLIC)
    assert sorted([*wfctl._EXPORTS, "__version__"]) == sorted(PUBLIC)


def test_every_exported_name_resolves_to_its_definition() -> None:
    for name in PUBLIC:
        value = getattr(wfctl, name)
        assert value is not None, name
        if name != "__version__" and hasattr(value, "__name__"):
            assert value.__name__ == name, name


def test_unknown_names_raise_attribute_error() -> None:
    try:
        wfctl.nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("wfctl.nope resolved")


def test_importing_wfctl_imports_nothing_heavy() -> None:
    code = (
        "import sys, wfctl\n"
        "heavy = [m for m in ('langgraph', 'anyio', 'jinja2', 'yaml', 'jsonschema', 'rich',"
        " 'wfctl.engine', 'wfctl.actions') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_documented_python_example_runs(tmp_path: Path) -> None:
    import anyio

    path = tmp_path / "gate.yaml"
    path.write_text(
        "workflow_id: gate\nname: Gate\nsteps:\n"
        "  - {step_id: prepare, action: set, with: {values: {n: 1}}}\n"
        "  - step_id: approve\n    step_type: human_approval\n    dependencies: [prepare]\n"
        "    with: {message: ok?}\n",
        encoding="utf-8",
    )
    workflow = wfctl.load_workflow(path)
    options = wfctl.RunOptions(approvals={"approve": wfctl.ApprovalDecision(True, by="me")})
    result = anyio.run(wfctl.run_workflow, workflow, {}, options)
    assert result.status is wfctl.WorkflowState.COMPLETED
    assert result.steps["approve"].output["by"] == "me"
    assert result.vars["n"] == 1
