"""What every command prints the same way: errors, diagnostics, colour, tables."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
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
    from wfctl.cli._heap import collector_paused

    # The workflow (and the modules that built it) lives to the end of the command.
    with collector_paused(keep=True):
        return _load_or_report(file, on_invalid)


def _load_or_report(file: str, on_invalid: Callable[[WorkflowError], None] | None) -> Any | None:
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


class GuardedStream:
    """stdout that cannot stop a run: once writing fails (`| head -1` left, `/dev/full`,
    a closed descriptor) the rest is discarded, one line on stderr says so, and the run
    goes on to write its report and exit as its result says."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.broken: str | None = None

    def write(self, text: str) -> int:
        """Write `text`, or drop it once the stream is broken."""
        if self.broken is None:
            try:
                return int(self._stream.write(text))
            except (OSError, ValueError) as exc:
                self._break(exc)
        return len(text)

    def flush(self) -> None:
        """Flush, or nothing once the stream is broken."""
        if self.broken is None:
            try:
                self._stream.flush()
            except (OSError, ValueError) as exc:
                self._break(exc)

    def isatty(self) -> bool:
        """False once broken (no live table on a stream that is gone)."""
        return self.broken is None and bool(self._stream.isatty())

    def _break(self, exc: BaseException) -> None:
        self.broken = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        err(f"warning: stdout is unusable ({self.broken}); the run goes on, see its report")
        # Python flushes stdout again at exit and fails with status 120: from now on fd 1
        # is /dev/null, and what was buffered for it is dropped.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        self._stream = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_stdout() -> GuardedStream:
    """Make `sys.stdout` a GuardedStream (a closed stdout becomes one already broken)."""
    current = sys.stdout
    if isinstance(current, GuardedStream):
        return current
    guarded = GuardedStream(current or Path(os.devnull).open("w", encoding="utf-8"))  # noqa: SIM115
    if current is None:
        guarded.broken = "closed"
    sys.stdout = guarded
    return guarded


def reserve_std_fds() -> None:
    """Put /dev/null on a closed stdin, stdout or stderr (`wfctl run ... >&-`): else the
    next file opened (the state database) would get that number, and a child process
    writing to its inherited stdout would write into it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
