"""The Typer app: the root options and one command per module of this package.

Command modules import only what their options need; the work is imported inside each
command, so `wfctl --help` and `wfctl validate` stay light.
"""

from __future__ import annotations

from typing import Annotated

import typer

from wfctl import __version__
from wfctl.cli import (
    approve,
    doctor,
    graph,
    init,
    report,
    resume,
    run,
    runs,
    schema,
    show,
    validate,
)
from wfctl.cli.exit_codes import ExitCode, epilog

EXIT_CODES_HELP = epilog()

app = typer.Typer(
    name="wfctl",
    help="Validate, draw and run YAML workflows.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _Flags:
    """Process-wide flags set by the root options (`--debug`)."""

    debug = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wfctl {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks for internal errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    _Flags.debug = debug or _Flags.debug


app.command()(validate.validate)
app.command()(schema.schema)
app.command()(init.init)
app.command(epilog=EXIT_CODES_HELP)(run.run)
app.command()(graph.graph)
app.command("report")(report.show_report)
app.command(epilog=EXIT_CODES_HELP)(resume.resume)
app.command()(approve.approve)
app.command()(runs.runs)
app.command()(show.show)
app.command()(doctor.doctor)
