"""`wfctl run`: check everything that can be checked, then run a workflow file."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from wfctl.cli._executor import ExecutorOption, RayAddressOption
from wfctl.cli._journal_limit import JournalOutputLimitOption
from wfctl.cli._options import (
    InputsOption,
    JsonOption,
    LogFormatOption,
    MetricsFileOption,
    NoInputOption,
    NoLiveOption,
    OtelOption,
    PushGatewayOption,
    QuietOption,
    ReportOption,
    RunOptions,
    StateDirOption,
    TailOption,
)
from wfctl.cli._output import err, load_or_report
from wfctl.cli.exit_codes import ExitCode
from wfctl.observe.settings import LogFormat, ObserveSettings


class Engine(StrEnum):
    """`--engine`: what runs the compiled workflow."""

    events = "events"
    langgraph = "langgraph"


def _check_output_path(path: str | None, option: str) -> str | None:
    """Why a report path cannot be written, found before anything runs."""
    from wfctl.format.output_file import output_problem

    problem = None if path is None else output_problem(path)
    return None if problem is None else f"{option} {problem}"


def missing_extra(workflow: Any) -> str | None:
    """Why the workflow cannot run with what is installed (react steps without LangChain)."""
    from wfctl.model import StepType

    if not any(s.step_type is StepType.REACT for s in workflow.all_steps.values()):
        return None
    from wfctl.actions.react import missing_extra as react_missing

    return react_missing()


def _inputs_or_none(opts: RunOptions, workflow: Any) -> dict[str, Any] | None:
    from wfctl.cli._inputs import run_inputs
    from wfctl.model.inputs import InputError

    try:
        return run_inputs(workflow.inputs, opts.inputs_file, opts.inputs)
    except InputError as exc:
        err(f"error: {opts.file}: {exc}; nothing was run")
        return None


def _output_problem(opts: RunOptions) -> str | None:
    return (
        _check_output_path(opts.report, "--report")
        or _check_output_path(opts.junit, "--junit")
        or _check_output_path(opts.observe.metrics_file, "--metrics-file")
    )


def _otel_problem(opts: RunOptions) -> str | None:
    if not opts.observe.otel:
        return None
    from wfctl.observe.settings import otel_missing

    problem = otel_missing()
    return f"--otel: {problem}" if problem else None


def _preflight(opts: RunOptions, workflow: Any) -> dict[str, Any] | None:
    """The resolved inputs, or None after printing why nothing can run."""
    problem = _output_problem(opts) or _otel_problem(opts)
    if problem:
        err(f"error: {problem}; nothing was run")
        return None
    resolved = _inputs_or_none(opts, workflow)
    if resolved is None:
        return None
    unknown = [s for s in opts.approve if s not in workflow.all_steps]
    if unknown:
        err(f"error: --approve names unknown step {', '.join(unknown)}")
        return None
    refused = _approve_problem(opts, workflow)
    if refused:
        err(f"error: --approve: {refused}; nothing was run")
        return None
    return resolved


def _approve_problem(opts: RunOptions, workflow: Any) -> str | None:
    """Why the user may not pre-approve one of the --approve steps (not an approver)."""
    if not opts.approve:
        return None
    from wfctl.durable import IdentityError, approver_identity, approver_problem

    try:
        who = approver_identity()
    except IdentityError as exc:
        return str(exc)
    return next(filter(None, (approver_problem(workflow, s, who) for s in opts.approve)), None)


def _start(opts: RunOptions, workflow: Any, resolved: dict[str, Any]) -> int:
    """A new run: its id, the store and its lock, then the session."""
    import anyio

    from wfctl.cli import _engine
    from wfctl.cli._session import run_session
    from wfctl.state.lock import RunLock
    from wfctl.state.store import StoreError, open_store

    try:
        store = open_store(opts.state_path())
    except StoreError as exc:
        err(f"error: {exc}")
        return ExitCode.INVALID
    run_id = _engine.new_run_id()
    lock = RunLock(store.directory, run_id)
    lock.acquire()
    try:
        code: int = anyio.run(run_session, opts, workflow, resolved, run_id, store)
        return code
    finally:
        lock.release()
        store.close()


def _invalid_junit(opts: RunOptions) -> Callable[[Any], None] | None:
    """With --junit, what writes an invalid workflow's problems as JUnit (a failed file)."""
    if opts.junit is None:
        return None
    junit = opts.junit

    def write(exc: Any) -> None:
        from wfctl.report.junit import write_validation_junit

        problem = _check_output_path(junit, "--junit")
        if problem:
            err(f"error: {problem}")
            return
        write_validation_junit(
            Path(junit), [(opts.file, exc.diagnostics)], f"wfctl run {opts.file}"
        )

    return write


def run_from_cli(opts: RunOptions) -> int:
    """Run a workflow file as `wfctl run` does; returns the exit code."""
    workflow = load_or_report(opts.file, on_invalid=_invalid_junit(opts))
    if workflow is None:
        return ExitCode.INVALID
    resolved = _preflight(opts, workflow)
    if resolved is None:
        return ExitCode.INVALID
    if opts.dry_run:
        from wfctl.cli._dry_run import dry_run

        env = {**os.environ, **opts.extra_env}
        planned = dry_run(workflow, sys.stdout, env, opts.state_path(), as_json=opts.json_output)
        return ExitCode.OK if planned else ExitCode.INVALID
    missing = missing_extra(workflow)
    if missing:
        err(f"error: {opts.file}: {missing}; nothing was run")
        return ExitCode.INVALID
    return _start(opts, workflow, resolved)


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
    tail: TailOption = 20,
    otel: OtelOption = False,
    metrics_file: MetricsFileOption = None,
    push_gateway: PushGatewayOption = None,
    log_format: LogFormatOption = LogFormat.TEXT,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    journal_output_limit: JournalOutputLimitOption = None,
    engine: Annotated[
        Engine | None,
        typer.Option(
            "--engine",
            envvar="WFCTL_ENGINE",
            help="events (the event-driven scheduler) or langgraph (the workflow's own "
            "LangGraph graph, checkpointed) [events].",
        ),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Run steps with `cache:` (their results still recorded)."),
    ] = False,
) -> None:
    """Run a workflow with a live table of step statuses and write a JSON report."""
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
        tail=tail,
        observe=ObserveSettings(otel, metrics_file, push_gateway, log_format),
        executor=executor,
        ray_address=ray_address,
        journal_output_limit=journal_output_limit,
        use_cache=not no_cache,
        # The engine reads it from the run's environment (`resume`: from the journal).
        extra_env={"WFCTL_ENGINE": engine.value} if engine is not None else {},
    )
    raise typer.Exit(run_from_cli(opts))
