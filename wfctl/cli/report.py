"""`wfctl report PATH`: render a saved JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from wfctl.cli._output import fail_usage, table_console

# A 100,000-step report is ~100 MB; more than this is not a report (`/dev/zero`).
MAX_REPORT_BYTES = 1 << 30
_CHUNK = 1 << 20
# The bytes a JSON text can start with (one value, after whitespace and a BOM).
_JSON_STARTS = frozenset(bytes([c]) for c in b'{["-0123456789tfn')


def _read_bounded(path: str) -> bytes:
    """The file's bytes, at most MAX_REPORT_BYTES; a usage error for more, or for a first
    chunk that cannot start a JSON object (read no further than that)."""
    chunks: list[bytes] = []
    size = 0
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            if not chunks and chunk.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] not in _JSON_STARTS:
                fail_usage(f"{path} is not a JSON report: it does not start like JSON")
            size += len(chunk)
            if size > MAX_REPORT_BYTES:
                fail_usage(f"{path} is not a JSON report: larger than {MAX_REPORT_BYTES >> 20} MiB")
            chunks.append(chunk)
    return b"".join(chunks)


def _read_report(path: str) -> Any:
    """The report's data, checked against the report schema; a usage error otherwise."""
    try:
        data = json.loads(_read_bounded(path).decode("utf-8"))
    except OSError as exc:
        fail_usage(f"cannot read {path}: {exc.strerror}")
    except (ValueError, RecursionError) as exc:
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
