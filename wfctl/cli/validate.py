"""`wfctl validate`: schema and semantic checks of workflow files (the CI gate; stays light)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wfctl.cli._output import err, use_color
from wfctl.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from wfctl.format.diagnostics import Diagnostic


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"


def validate(
    paths: Annotated[
        list[str],
        typer.Argument(help="Workflow files, or directories searched for *.yaml / *.yml."),
    ],
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="text, json, github (workflow commands) or sarif (SARIF 2.1.0, for code "
            "scanning).",
        ),
    ] = OutputFormat.text,
    junit: Annotated[
        str | None,
        typer.Option(
            "--junit",
            metavar="PATH",
            help="Also write JUnit XML: a testcase per file, a failure per problem.",
        ),
    ] = None,
) -> None:
    """Check workflows against the schema and the semantic rules; exit 2 if any is invalid."""
    from wfctl.cli._heap import collector_paused
    from wfctl.validate import output as diagnostic_output
    from wfctl.validate.files import validate_paths

    with collector_paused(keep=False):  # what the checks build is garbage when they end
        results = validate_paths(paths)
    out = sys.stdout
    match output_format:
        case OutputFormat.json:
            diagnostic_output.write_json(results, out)
        case OutputFormat.github:
            diagnostic_output.write_github(results, out)
        case OutputFormat.sarif:
            diagnostic_output.write_sarif(results, out)
        case _:
            diagnostic_output.write_text(results, out, styled=use_color(out))
    if junit is not None and not _write_junit(junit, [(r.file, r.diagnostics) for r in results]):
        raise typer.Exit(ExitCode.INVALID)
    raise typer.Exit(ExitCode.OK if all(r.ok for r in results) else ExitCode.INVALID)


def _write_junit(path: str, files: Sequence[tuple[str, Sequence[Diagnostic]]]) -> bool:
    """Write the validation JUnit file; False after saying why it could not be written."""
    from wfctl.report.junit import write_validation_junit

    try:
        write_validation_junit(Path(path), files)
    except OSError as exc:
        err(f"error: --junit {path}: {exc.strerror or exc}")
        return False
    return True
