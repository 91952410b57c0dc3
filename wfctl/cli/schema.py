"""`wfctl schema`: print a published JSON Schema."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from wfctl.cli._output import fail_usage


def schema(
    which: Annotated[str, typer.Argument(help="workflow (default) or report.")] = "workflow",
    path: Annotated[
        bool, typer.Option("--path", help="Print the installed file's path, not its content.")
    ] = False,
) -> None:
    """Print a published JSON Schema (for editors and other tools)."""
    from wfctl.format.schema import schema_path

    try:
        found = schema_path(f"{which}.schema.json")
    except FileNotFoundError:
        fail_usage(f"unknown schema '{which}' (known: workflow, report)")
    if path:
        sys.stdout.write(f"{found}\n")
        return
    sys.stdout.write(found.read_text(encoding="utf-8"))
