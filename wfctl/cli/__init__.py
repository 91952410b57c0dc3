"""The `wfctl` command line: a thin layer over the stages; heavy imports stay inside commands.

`main` is the console-script entry point; `app` assembles one command per module.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

from wfctl.cli._output import reserve_std_fds
from wfctl.cli.app import _Flags, app
from wfctl.cli.exit_codes import ExitCode


def _interrupted() -> int:
    typer.echo("interrupted", err=True)
    return ExitCode.INTERRUPTED


def _usage_error(exc: typer.TyperException) -> int:
    # Usage errors (unknown option, missing argument): typer's own message, exit 2.
    show = getattr(exc, "show", None)
    if callable(show):
        show()
    else:
        typer.echo(f"error: {exc.format_message()}", err=True)
    return ExitCode.INVALID


def _broken_pipe() -> int:
    # `wfctl ... | head`: the reader left; not our error.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return ExitCode.OK


def _store_error(exc: BaseException) -> BaseException | None:
    """The state store's error in `exc` (or in an exception group of it), if any."""
    store = sys.modules.get("wfctl.state.store")
    if store is None:
        return None
    if isinstance(exc, store.StoreError):
        found: BaseException = exc
        return found
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            nested = _store_error(inner)
            if nested is not None:
                return nested
    return None


def _internal_error(exc: Exception) -> int:
    """A bug: one line and a hint, or the whole traceback with --debug. A state file
    that cannot be read or written (damaged, disk full) is not a bug: one line, exit 70."""
    found = _store_error(exc)
    if found is not None and not _Flags.debug:
        typer.echo(f"error: {found}", err=True)
        return ExitCode.INTERNAL
    if _Flags.debug:
        import traceback

        traceback.print_exc()
        sys.exit(ExitCode.INTERNAL)
    first = str(exc).splitlines()[0] if str(exc) else ""
    typer.echo(
        f"internal error: {type(exc).__name__}: {first} (run with --debug for details)",
        err=True,
    )
    return ExitCode.INTERNAL


def _dispatch(args: list[str]) -> object:
    """The command's exit code, whatever way it ended."""
    command = typer.main.get_command(app)
    try:
        return command.main(args=args, prog_name="wfctl", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return _interrupted()
    except typer.TyperException as exc:
        return _usage_error(exc)
    except BrokenPipeError:
        return _broken_pipe()
    except Exception as exc:
        return _internal_error(exc)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry point: maps every outcome to a documented exit code."""
    args = sys.argv[1:] if argv is None else argv
    reserve_std_fds()
    _Flags.debug = "--debug" in args or os.environ.get("WFCTL_DEBUG", "") not in ("", "0")
    code = _dispatch(args)
    sys.exit(int(code) if isinstance(code, int) else ExitCode.OK)


__all__ = ["app", "main"]
