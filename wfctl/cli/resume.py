"""`wfctl resume`: continue a run that crashed, was killed, was cancelled or is waiting."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wfctl.cli._complete import resumable_run
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
)
from wfctl.cli._output import err, load_or_report
from wfctl.cli.exit_codes import ExitCode
from wfctl.observe.settings import LogFormat, ObserveSettings

if TYPE_CHECKING:
    from wfctl.state.store import RunRow, StateStore


def _ended(row: RunRow) -> int | None:
    """The exit code when the run already ended and cannot be resumed; None if it can be."""
    if row.status == "completed":
        print(f"run {row.run_id} already completed; nothing to resume")
        return ExitCode.OK
    if row.status in ("failed", "timeout"):
        what = "failed" if row.status == "failed" else "timed out"
        err(f"run {row.run_id} {what} and was rolled back; start a new run instead")
        return ExitCode.FAILED
    return None


def _usable_workflow(row: RunRow, force: bool) -> Any | None:
    """The run's workflow, unchanged (or --force) and runnable; None after saying why not."""
    from wfctl.cli.run import missing_extra

    workflow = load_or_report(row.file)
    if workflow is None:
        return None
    if workflow.sha256 != row.sha256 and not force:
        err(
            f"error: {row.file} changed since run {row.run_id} started; the plan may "
            "no longer match. Resume anyway with --force"
        )
        return None
    missing = missing_extra(workflow)
    if missing:
        err(f"error: {row.file}: {missing}; nothing was run")
        return None
    return workflow


def _inputs(row: RunRow, workflow: Any, opts: RunOptions) -> dict[str, Any] | None:
    from wfctl.cli._inputs import run_inputs
    from wfctl.durable import stored_inputs
    from wfctl.model.inputs import InputError

    stored = stored_inputs(row, workflow)  # resolve_inputs names secrets still missing
    try:
        return run_inputs(workflow.inputs, None, opts.inputs, base=stored)
    except InputError as exc:
        err(f"error: {exc}")
        return None


def _stop_orphans(run_id: str) -> None:
    """Stop the step processes a killed owner left running (no second copy beside them)."""
    from wfctl.engine.orphans import stop_orphans

    stopped = stop_orphans(run_id)
    if stopped:
        steps = ", ".join(sorted({o.step_id for o in stopped}))
        err(
            f"stopped {len(stopped)} process(es) of step(s) {steps} that the earlier, "
            f"dead owner of run {run_id} left running"
        )


def _resume_locked(store: StateStore, row: RunRow, opts: RunOptions, force: bool) -> int:
    import anyio

    from wfctl.cli._session import run_session
    from wfctl.durable import journaled_state

    ended = _ended(row)
    if ended is not None:
        return ended
    workflow = _usable_workflow(row, force)
    if workflow is None:
        return ExitCode.INVALID
    from wfctl.durable import changed_plan_problem

    changed = changed_plan_problem(store, row, workflow)
    if changed:
        err(f"error: {changed}")
        return ExitCode.INVALID
    resolved = _inputs(row, workflow, opts)
    if resolved is None:
        return ExitCode.INVALID
    _stop_orphans(row.run_id)
    replayed, decisions = journaled_state(store, row, workflow)
    # Relative paths in the workflow meant the directory the run started in.
    resumed = replace(
        opts,
        file=row.file,
        approve=(),
        workdir=row.options.get("workdir"),
        # Where the run started (`--executor` at resume time overrides).
        executor=opts.executor or row.options.get("executor"),
    )
    code: int = anyio.run(
        run_session, resumed, workflow, resolved, row.run_id, store, replayed, decisions
    )
    return code


def resume_from_cli(run_id: str, opts: RunOptions, force: bool = False) -> int:
    """`wfctl resume RUN_ID`: continue a crashed, killed, cancelled or waiting run."""
    from wfctl.state.lock import RunLock
    from wfctl.state.store import RunNotFound, opened_run

    try:
        with opened_run(opts.state_path(), run_id) as (store, row):
            lock = RunLock(store.directory, row.run_id)
            if not lock.acquire():
                raise RunNotFound(f"run {row.run_id} is being run by another wfctl process now")
            try:
                return _resume_locked(store, row, opts, force)
            finally:
                lock.release()
    except RunNotFound as exc:
        err(f"error: {exc}")
        return ExitCode.INVALID


def resume(
    run_id: Annotated[
        str,
        typer.Argument(
            help="The run to continue (a unique prefix works).", autocompletion=resumable_run
        ),
    ],
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
    otel: OtelOption = False,
    metrics_file: MetricsFileOption = None,
    push_gateway: PushGatewayOption = None,
    log_format: LogFormatOption = LogFormat.TEXT,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    journal_output_limit: JournalOutputLimitOption = None,
) -> None:
    """Continue a run that crashed, was killed, was cancelled or is waiting for approval.

    Completed steps are not run again; steps that were in flight run again.
    """
    opts = RunOptions(
        file="",
        inputs=tuple(inputs or ()),
        report=report,
        json_output=json_output,
        live=False if no_live else None,
        quiet=quiet,
        no_input=no_input,
        state_dir=state,
        observe=ObserveSettings(otel, metrics_file, push_gateway, log_format),
        executor=executor,
        ray_address=ray_address,
        journal_output_limit=journal_output_limit,
    )
    raise typer.Exit(resume_from_cli(run_id, opts, force=force))
