"""Render validation results as text (Rich on a terminal), JSON, GitHub annotations or
SARIF 2.1.0 (GitHub code scanning)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Final

from wfctl.format.diagnostics import Diagnostic
from wfctl.format.printable import printable
from wfctl.validate.files import FileResult


def _summary(results: Sequence[FileResult]) -> str:
    invalid = sum(1 for r in results if not r.ok)
    errors = sum(len(r.diagnostics) for r in results)
    files = f"{len(results)} file{'s' if len(results) != 1 else ''}"
    if not invalid:
        return f"{files} valid"
    return f"{invalid} of {files} invalid, {errors} problem{'s' if errors != 1 else ''}"


_MAX_PATH: Final = 80


def short_path(path: str) -> str:
    """A JSON path short enough for one line (a 60-level nesting error has a long one)."""
    if len(path) <= _MAX_PATH:
        return path
    return f"{path[: _MAX_PATH // 2]}...{path[-(_MAX_PATH // 2 - 3) :]}"


def diagnostic_line(d: Diagnostic) -> str:
    """`file:line:col path: message` — the one-line form used in plain text and errors."""
    where = f"{short_path(d.path)}: " if d.path else ""
    # Keys and values of the file are in it: never print their escape sequences raw.
    return printable(f"{d.location()} {where}{d.message}")


def write_text(results: Sequence[FileResult], out: IO[str], styled: bool) -> None:
    """Human-readable listing; styled with Rich when writing to a colour terminal."""
    if styled:
        _write_styled(results, out)
        return
    for r in results:
        for d in r.diagnostics:
            out.write(f"{diagnostic_line(d)} ({d.code})\n")
            if d.hint:
                out.write(f"    hint: {printable(d.hint)}\n")
    out.write(_summary(results) + "\n")


def _write_styled(results: Sequence[FileResult], out: IO[str]) -> None:
    from rich.console import Console
    from rich.markup import escape

    # soft_wrap: never break a `file:line:col` line (editors and terminals link it).
    console = Console(file=out, highlight=False, soft_wrap=True)
    for r in results:
        for d in r.diagnostics:
            where = f"[cyan]{escape(printable(short_path(d.path)))}[/]: " if d.path else ""
            console.print(
                f"[bold]{escape(printable(d.location()))}[/] {where}"
                f"[red]{escape(printable(d.message))}[/] [dim]({d.code})[/]"
            )
            if d.hint:
                console.print(f"    [yellow]hint:[/] {escape(printable(d.hint))}")
    style = "green" if all(r.ok for r in results) else "red"
    console.print(f"[{style}]{escape(_summary(results))}[/]")


def write_json(results: Sequence[FileResult], out: IO[str]) -> None:
    """One JSON document: overall validity, per-file diagnostics and a summary."""
    doc = {
        "valid": all(r.ok for r in results),
        "files": [
            {"file": r.file, "valid": r.ok, "diagnostics": [d.to_json() for d in r.diagnostics]}
            for r in results
        ],
        "summary": {
            "files": len(results),
            "invalid": sum(1 for r in results if not r.ok),
            "problems": sum(len(r.diagnostics) for r in results),
        },
    }
    json.dump(doc, out, indent=2)
    out.write("\n")


def _gh_escape(text: str, prop: bool = False) -> str:
    # GitHub workflow-command escaping: data escapes %, CR, LF; properties also ':' and ','.
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def write_github(
    results: Sequence[FileResult], out: IO[str], summary: IO[str] | None = None
) -> None:
    """GitHub Actions `::error file=...,line=...,col=...::message` workflow commands.

    `out` gets only workflow commands (one per line); the summary line goes to `summary`
    (stderr from the CLI) so that every line of `out` is an annotation.
    """
    for r in results:
        for d in r.diagnostics:
            message = f"{short_path(d.path)}: {d.message}" if d.path else d.message
            if d.hint:
                message += f" ({d.hint})"
            out.write(
                f"::{d.severity.value} file={_gh_escape(d.file, True)},line={d.line},"
                f"col={d.col},title={_gh_escape('wfctl ' + d.code, True)}::{_gh_escape(message)}\n"
            )
    if summary is not None:
        summary.write(_summary(results) + "\n")


def write_sarif(results: Sequence[FileResult], out: IO[str]) -> None:
    """One SARIF 2.1.0 log (for GitHub code scanning's upload-sarif)."""
    from wfctl.validate._sarif import sarif_log

    json.dump(sarif_log(results), out, indent=2)
    out.write("\n")
