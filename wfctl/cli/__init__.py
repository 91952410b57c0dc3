"""The `wfctl` command line: a thin layer over the stages; heavy imports stay inside commands."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from wfctl import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_TIMEOUT = 3
EXIT_WAITING = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 completed · 1 failed · 2 invalid workflow or usage · 3 timed out · "
    "4 waiting for approval · 70 internal error · 130 interrupted."
)

app = typer.Typer(
    name="wfctl",
    help="Validate, draw and run YAML workflows.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_debug = False

StateDirOption = Annotated[
    str | None,
    typer.Option(
        "--state-dir",
        metavar="DIR",
        envvar="WFCTL_HOME",
        help="Where runs are journaled [./.wfctl].",
    ),
]

# Options shared by `run` and `resume`.
InputsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        metavar="KEY=VALUE",
        help="Repeatable; VALUE is parsed as JSON if it can be (not for string inputs).",
    ),
]
ReportOption = Annotated[
    str | None,
    typer.Option(
        "--report", metavar="PATH", help="Where to write the JSON report [.wfctl/reports/ID.json]."
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Only failures and the end.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the report on stdout and nothing else there.")
]
NoLiveOption = Annotated[
    bool, typer.Option("--no-live", help="Plain lines instead of the live table.")
]
NoInputOption = Annotated[
    bool,
    typer.Option(
        "--no-input", help="Never prompt: approval steps wait (exit 4) for wfctl approve."
    ),
]


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wfctl {__version__}")
        raise typer.Exit(EXIT_OK)


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
    global _debug
    _debug = debug or _debug


def use_color(stream: object) -> bool:
    """Colour only on a terminal, never with NO_COLOR set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@app.command()
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
    if output_format is OutputFormat.json:
        diagnostic_output.write_json(results, out)
    elif output_format is OutputFormat.github:
        diagnostic_output.write_github(results, out)
    else:
        diagnostic_output.write_text(results, out, styled=use_color(out))
    raise typer.Exit(EXIT_OK if all(r.ok for r in results) else EXIT_INVALID)


@app.command()
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


@app.command(epilog=EXIT_CODES_HELP)
def run(
    file: Annotated[str, typer.Argument(metavar="FILE", help="The workflow file to run.")],
    inputs: InputsOption = None,
    inputs_file: Annotated[
        str | None,
        typer.Option("--inputs-file", metavar="PATH", help="YAML or JSON file of inputs."),
    ] = None,
    report: ReportOption = None,
    junit: Annotated[
        str | None,
        typer.Option(
            "--junit", metavar="PATH", help="Also write JUnit XML (one testcase per step)."
        ),
    ] = None,
    max_parallel: Annotated[
        int | None,
        typer.Option("--max-parallel", min=1, help="Override max_parallel_steps."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and run nothing.")
    ] = False,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
    no_live: NoLiveOption = False,
    approve: Annotated[
        list[str] | None,
        typer.Option(
            "--approve", metavar="STEP", help="Pre-approve a human_approval step (repeatable)."
        ),
    ] = None,
    fail_on_sla: Annotated[
        bool, typer.Option("--fail-on-sla", help="Exit 1 when an SLA target is breached.")
    ] = False,
    no_input: NoInputOption = False,
    state: StateDirOption = None,
) -> None:
    """Run a workflow with a live table of step statuses and write a JSON report."""
    from wfctl.cli.session import RunOptions, run_from_cli

    opts = RunOptions(
        file=file,
        inputs=tuple(inputs or ()),
        inputs_file=inputs_file,
        report=report,
        junit=junit,
        max_parallel=max_parallel,
        dry_run=dry_run,
        quiet=quiet,
        json_output=json_output,
        live=False if no_live else None,
        approve=tuple(approve or ()),
        fail_on_sla=fail_on_sla,
        no_input=no_input,
        state_dir=state,
    )
    raise typer.Exit(run_from_cli(opts))


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    tree = "tree"


def _load_or_exit(file: str) -> Any:
    from wfctl.format.diagnostics import WorkflowError
    from wfctl.validate.files import load_workflow
    from wfctl.validate.output import diagnostic_line

    try:
        return load_workflow(file)
    except WorkflowError as exc:
        for d in exc.diagnostics:
            typer.echo(diagnostic_line(d), err=True)
        raise typer.Exit(EXIT_INVALID) from None
    except OSError as exc:
        fail_usage(f"cannot read {file}: {exc.strerror}")


@app.command()
def graph(
    file: Annotated[str, typer.Argument(help="The workflow file to draw.")],
    output_format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="mermaid, dot, or tree (terminal).")
    ] = GraphFormat.mermaid,
    langgraph: Annotated[
        bool,
        typer.Option("--langgraph", help="Print the compiled LangGraph control graph's Mermaid."),
    ] = False,
) -> None:
    """Draw a workflow: steps, dependencies, branches with their conditions, containers."""
    from wfctl.view import drawing

    workflow = _load_or_exit(file)
    if langgraph:
        from wfctl.engine.control_graph import control_graph_mermaid

        sys.stdout.write(control_graph_mermaid(workflow))
    elif output_format is GraphFormat.tree:
        from rich.console import Console

        Console(no_color=not use_color(sys.stdout), highlight=False).print(
            drawing.to_tree(workflow)
        )
    elif output_format is GraphFormat.dot:
        sys.stdout.write(drawing.to_dot(workflow))
    else:
        sys.stdout.write(drawing.to_mermaid(workflow))


@app.command("report")
def show_report(
    path: Annotated[str, typer.Argument(help="A JSON report written by wfctl run.")],
) -> None:
    """Render a saved JSON report as a table plus a summary."""
    import json

    from wfctl.view.report_view import render_report

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
    render_report(data, _console())


@app.command(epilog=EXIT_CODES_HELP)
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue (a unique prefix works).")],
    force: Annotated[
        bool, typer.Option("--force", help="Resume even though the workflow file changed.")
    ] = False,
    inputs: InputsOption = None,
    report: ReportOption = None,
    json_output: JsonOption = False,
    no_live: NoLiveOption = False,
    quiet: QuietOption = False,
    no_input: NoInputOption = False,
    state: StateDirOption = None,
) -> None:
    """Continue a run that crashed, was killed, was cancelled or is waiting for approval.

    Completed steps are not run again; steps that were in flight run again.
    """
    from wfctl.cli.session import RunOptions, resume_from_cli

    opts = RunOptions(
        file="",
        inputs=tuple(inputs or ()),
        report=report,
        json_output=json_output,
        live=False if no_live else None,
        quiet=quiet,
        no_input=no_input,
        state_dir=state,
    )
    raise typer.Exit(resume_from_cli(run_id, opts, force=force))


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="The waiting run.")],
    step_id: Annotated[str, typer.Argument(help="The human_approval step.")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving.")] = False,
    comment: Annotated[str, typer.Option("--comment", help="Why.")] = "",
    by: Annotated[str | None, typer.Option("--by", help="Who decides [current user].")] = None,
    state: StateDirOption = None,
) -> None:
    """Record an approval decision; then `wfctl resume RUN_ID` continues the run."""
    from wfctl.cli.history import approve_command
    from wfctl.state.store import state_dir

    raise typer.Exit(approve_command(state_dir(state), run_id, step_id, reject, comment, by))


@app.command()
def runs(
    workflow: Annotated[
        str | None, typer.Option("--workflow", help="Only this workflow_id.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only runs in this status.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many.")] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    state: StateDirOption = None,
) -> None:
    """List recent runs: id, workflow, status, started, duration."""
    from wfctl.cli.history import runs_command
    from wfctl.state.store import state_dir

    raise typer.Exit(runs_command(state_dir(state), workflow, status, limit, json_output))


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="The run to show (a unique prefix works).")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Tail a run in progress until it ends.")
    ] = False,
    state: StateDirOption = None,
) -> None:
    """Show a past or running run as a table, from its journal."""
    from wfctl.cli.history import show_command
    from wfctl.state.store import state_dir

    raise typer.Exit(show_command(state_dir(state), run_id, follow))


def _console() -> Any:
    """A Rich console for tables: the terminal's width, or wide enough not to cut in a pipe."""
    from rich.console import Console

    tty = sys.stdout.isatty()
    return Console(no_color=not use_color(sys.stdout), highlight=False, width=None if tty else 200)


def fail_usage(message: str) -> NoReturn:
    """Print a usage error and exit 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_INVALID)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: maps every outcome to a documented exit code."""
    global _debug
    args = sys.argv[1:] if argv is None else argv
    _debug = "--debug" in args or os.environ.get("WFCTL_DEBUG", "") not in ("", "0")
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="wfctl", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        typer.echo("interrupted", err=True)
        code = EXIT_INTERRUPTED
    except typer.TyperException as exc:
        # Usage errors (unknown option, missing argument): typer's own message, exit 2.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc.format_message()}", err=True)
        code = EXIT_INVALID
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # `wfctl ... | head`: the reader left; not our error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_OK
    except Exception as exc:
        if _debug:
            import traceback

            traceback.print_exc()
            sys.exit(EXIT_INTERNAL)
        first = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(
            f"internal error: {type(exc).__name__}: {first} (run with --debug for details)",
            err=True,
        )
        code = EXIT_INTERNAL
    sys.exit(code if isinstance(code, int) else EXIT_OK)
