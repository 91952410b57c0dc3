"""`wfctl schema`: print a published JSON Schema."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from wfctl.cli._output import fail_usage


def schema(
    which: Annotated[str, typer.Argument(help="workflow (default) or report.")] = "workflow",
) -> None:
    """Print a published JSON Schema (for editors and other tools)."""
    from wfctl.format.schema import schema_path

    try:
        path = schema_path(f"{which}.schema.json")
    except FileNotFoundError:
        fail_usage(f"unknown schema '{which}' (known: workflow, report)")
    sys.stdout.write(path.read_text(encoding="utf-8"))
