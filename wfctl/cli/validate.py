"""`wfctl validate`: schema and semantic checks of workflow files (the CI gate; stays light)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from wfctl.cli._output import use_color
from wfctl.cli.exit_codes import ExitCode


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"


def validate(
    paths: Annotated[
        list[str],
        typer.Argument(help="Workflow files, or directories searched for *.yaml / *.yml."),
    ],
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", help="text, json, or github (workflow commands)."),
    ] = OutputFormat.text,
) -> None:
    """Check workflows against the schema and the semantic rules; exit 2 if any is invalid."""
    from wfctl.validate import output as diagnostic_output
    from wfctl.validate.files import validate_paths

    results = validate_paths(paths)
    out = sys.stdout
    match output_format:
        case OutputFormat.json:
            diagnostic_output.write_json(results, out)
        case OutputFormat.github:
            diagnostic_output.write_github(results, out)
        case _:
            diagnostic_output.write_text(results, out, styled=use_color(out))
    raise typer.Exit(ExitCode.OK if all(r.ok for r in results) else ExitCode.INVALID)
