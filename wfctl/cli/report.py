"""`wfctl report PATH`: render a saved JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from wfctl.cli._output import fail_usage, table_console


def _read_report(path: str) -> Any:
    """The report's data, checked against the report schema; a usage error otherwise."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        fail_usage(f"cannot read {path}: {exc.strerror}")
    except ValueError as exc:
        fail_usage(f"{path} is not a JSON report: {exc}")
    from wfctl.format.schema import validator_for

    errors = list(validator_for("report.schema.json").iter_errors(data))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        fail_usage(f"{path} is not a wfctl report: {where}: {first.message}")
    return data


def show_report(
    path: Annotated[str, typer.Argument(help="A JSON report written by wfctl run.")],
) -> None:
    """Render a saved JSON report as a table plus a summary."""
    from wfctl.view.report_view import render_report

    render_report(_read_report(path), table_console())
