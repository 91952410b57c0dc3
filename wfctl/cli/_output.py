"""What every command prints the same way: errors, diagnostics, colour, tables."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from wfctl.cli.exit_codes import ExitCode
from wfctl.format.printable import printable

if TYPE_CHECKING:
    from rich.console import Console

    from wfctl.format.diagnostics import WorkflowError


def err(message: str) -> None:
    """One line (or more) on stderr."""
    sys.stderr.write(printable(message, lines=True) + "\n")


def fail_usage(message: str) -> NoReturn:
    """Print a usage error and exit 2."""
    typer.echo(f"error: {printable(message, lines=True)}", err=True)
    raise typer.Exit(ExitCode.INVALID)


def use_color(stream: object) -> bool:
    """Colour only on a terminal, never with NO_COLOR set (https://no-color.org) or on
    TERM=dumb (which has no escape sequences)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def table_console() -> Console:
    """A Rich console for tables: the terminal's width, or wide enough not to cut in a pipe."""
    from rich.console import Console

    tty = sys.stdout.isatty()
    return Console(no_color=not use_color(sys.stdout), highlight=False, width=None if tty else 200)


def print_diagnostics(exc: WorkflowError) -> None:
    """Each problem with its hint, then that nothing was run."""
    from wfctl.validate.output import diagnostic_line

    for d in exc.diagnostics:
        err(diagnostic_line(d) + (f"\n    hint: {d.hint}" if d.hint else ""))
    err(f"{exc.diagnostics[0].file}: invalid workflow, nothing was run")


def load_or_report(
    file: str, on_invalid: Callable[[WorkflowError], None] | None = None
) -> Any | None:
    """The validated workflow, or None after printing why it cannot be used (and passing
    the problems to `on_invalid`: `wfctl run --junit` writes them)."""
    from wfctl.format.diagnostics import WorkflowError
    from wfctl.model.load import load_workflow

    try:
        return load_workflow(file)
    except WorkflowError as exc:
        print_diagnostics(exc)
        if on_invalid is not None:
            on_invalid(exc)
    except OSError as exc:
        err(f"error: cannot read {file}: {exc.strerror}")
    return None
