"""`wfctl graph`: draw a workflow as Mermaid, DOT or a terminal tree."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from wfctl.cli._output import fail_usage, use_color
from wfctl.cli.exit_codes import ExitCode


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    tree = "tree"


def _load_or_exit(file: str) -> Any:
    from wfctl.format.diagnostics import WorkflowError
    from wfctl.model.load import load_workflow
    from wfctl.validate.output import diagnostic_line

    try:
        return load_workflow(file)
    except WorkflowError as exc:
        for d in exc.diagnostics:
            typer.echo(diagnostic_line(d), err=True)
        raise typer.Exit(ExitCode.INVALID) from None
    except OSError as exc:
        fail_usage(f"cannot read {file}: {exc.strerror}")


def _print_tree(workflow: Any) -> None:
    from rich.console import Console

    from wfctl.view import drawing

    Console(no_color=not use_color(sys.stdout), highlight=False).print(drawing.to_tree(workflow))


def _drawing(workflow: Any, output_format: GraphFormat) -> str:
    from wfctl.view import drawing

    return (
        drawing.to_dot(workflow)
        if output_format is GraphFormat.dot
        else drawing.to_mermaid(workflow)
    )


def _agent_drawings(workflow: Any) -> dict[str, Any]:
    """Each react step's agent graph (model and tools nodes), drawn as its subgraph; none
    without the agents extra (the step is then one node)."""
    from wfctl.model import ReactBody

    react = {
        s.step_id: s.body for s in workflow.all_steps.values() if isinstance(s.body, ReactBody)
    }
    if not react:
        return {}
    from wfctl.actions.react import ToolSpec, agent_drawing, missing_extra

    if missing_extra() is not None:
        return {}
    return {
        step_id: agent_drawing(
            tuple(ToolSpec(t.name, t.description, t.parameters) for t in body.tools)
        )
        for step_id, body in react.items()
    }


def graph(
    file: Annotated[str, typer.Argument(help="The workflow file to draw.")],
    output_format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="mermaid, dot, or tree (terminal).")
    ] = GraphFormat.mermaid,
    langgraph: Annotated[
        bool,
        typer.Option(
            "--langgraph",
            help="Print the workflow's compiled LangGraph graph (what --engine langgraph "
            "runs), drawn by LangGraph as Mermaid.",
        ),
    ] = False,
) -> None:
    """Draw a workflow: steps, dependencies, branches with their conditions, containers."""
    workflow = _load_or_exit(file)
    if langgraph:
        from wfctl.compile.langgraph import mermaid
        from wfctl.compile.plan import compile_plan

        sys.stdout.write(mermaid(compile_plan(workflow), _agent_drawings(workflow)))
    elif output_format is GraphFormat.tree:
        _print_tree(workflow)
    else:
        sys.stdout.write(_drawing(workflow, output_format))
