"""One run of a workflow from the command line, start to end: views, signals, the engine,
the report and the exit code. `wfctl run` and `wfctl resume` both end here."""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio

from wfctl.cli import _engine
from wfctl.cli._options import RunOptions
from wfctl.cli._output import err, guard_stdout
from wfctl.cli._signals import journal_failed, stop_on_store_failure
from wfctl.cli.exit_codes import ExitCode, for_state
from wfctl.events import EventBus
from wfctl.format.printable import printable, without_colours
from wfctl.model.inputs import InputError

if TYPE_CHECKING:
    from wfctl.observe.attach import Observers
    from wfctl.records import RunResult
    from wfctl.report.metrics import MetricsCollector, SlaBreach
    from wfctl.state.replay import Replayed
    from wfctl.state.store import StateStore
    from wfctl.view.live import LiveTable


def use_live(opts: RunOptions, out: IO[str]) -> bool:
    """The live table on a terminal, unless asked otherwise, in CI, on TERM=dumb, or --json."""
    if opts.live is not None:
        return opts.live and not opts.json_output
    if opts.json_output or os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        return False
    if os.environ.get("TERM") == "dumb":
        # A dumb terminal cannot move the cursor: the table would never be drawn.
        return False
    return bool(out.isatty())


@dataclass
class _Views:
    """Who watches the run: metrics and SLA, and the live table or the plain log."""

    bus: EventBus
    metrics: MetricsCollector
    live: LiveTable | None
    log_stream: IO[str]
    observers: Observers
    summary_stream: IO[str]


def _views(opts: RunOptions, workflow: Any, inputs: dict[str, Any], env: dict[str, str]) -> _Views:
    from wfctl.observe.attach import attach, run_masker
    from wfctl.report.metrics import MetricsCollector

    out = sys.stdout
    json_log = opts.observe.json_log  # JSON objects on stderr replace the table and lines
    log_stream = sys.stderr if opts.json_output or json_log else out
    live = None
    if use_live(opts, out) and not json_log:
        from wfctl.view.live import LiveTable

        live = LiveTable(workflow, out)

    def alert(breach: SlaBreach) -> None:
        if observers.alert(breach):
            return
        if live is not None:
            live.alert(breach.message)
        else:
            log_stream.write(f"SLA ALERT: {breach.message}\n")
            log_stream.flush()

    bus = EventBus()
    metrics = MetricsCollector(workflow.sla_targets, on_breach=alert)
    bus.subscribe(metrics)
    if live is not None:
        bus.subscribe(live)
    elif not json_log:
        from wfctl.view.plain import PlainLog

        bus.subscribe(PlainLog(log_stream, quiet=opts.quiet, tail=opts.tail))
    observers = attach(
        opts.observe,
        bus,
        lambda: run_masker(workflow, inputs, env),
        env,
        log_stream,
        lambda message: err(f"warning: {message}"),
    )
    return _Views(bus, metrics, live, log_stream, observers, out if json_log else log_stream)


def _approval_handler(
    opts: RunOptions, live: LiveTable | None, store: StateStore, run_id: str
) -> Any:
    """Decisions from the journal (`wfctl approve` from any terminal), and a prompt on
    the terminal for approval steps when there is someone to ask."""
    from wfctl.durable import IdentityError, JournalDecisions, approver_identity, trusted_root

    if opts.no_input or opts.json_output or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return JournalDecisions(store, run_id)
    from wfctl.view.prompt import TerminalApprover

    try:
        identity = approver_identity()
    except IdentityError as exc:
        err(f"warning: {exc}; no approval prompt (decide with wfctl approve)")
        return JournalDecisions(store, run_id)
    prompt = TerminalApprover(live, identity, enforce=not trusted_root())
    return JournalDecisions(store, run_id, prompt)


async def _tick_sla(metrics: MetricsCollector) -> None:
    # Events alone would report a hung step's SLA breach only once it ends.
    while True:
        await anyio.sleep(0.5)
        metrics.check_time()


async def _watched(call: _engine.EngineCall, views: _Views) -> RunResult:
    """The engine run, with signals handled and SLA time checked while it runs."""
    from wfctl.cli._signals import watch_signals
    from wfctl.expressions import watching_signals

    # Installed before anything slow (the LangGraph import): a signal that arrives early
    # still cancels the run cleanly and gets its report written.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        # Noted at delivery too: a long evaluation stops on a signal asyncio has not read.
        stop_watching = watching_signals()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch_signals, signals, call.cancel)
                sla = call.workflow.sla_targets
                if sla.max_duration is not None or sla.step_max_duration:
                    tg.start_soon(_tick_sla, views.metrics)
                # One run per process: what the imports built lives to the end. Frozen, the
                # collector stops walking it again and again while thousands of steps run.
                _engine.load_engine()
                gc.freeze()
                if views.live is not None:
                    views.live.start()
                try:
                    result = await _engine.run_engine(call)
                finally:
                    if views.live is not None:
                        views.live.stop()
                    tg.cancel_scope.cancel()
        finally:
            stop_watching()
    return result


def _sla_breaches(workflow: Any, metrics: MetricsCollector) -> Any:
    """What the engine asks at the end of a run with on_sla_breach handlers (else None)."""
    if not workflow.on_sla_breach:
        return None
    from wfctl.observe.sla import breaches_at_end

    return breaches_at_end(metrics)


async def run_session(
    opts: RunOptions,
    workflow: Any,
    inputs: dict[str, Any],
    run_id: str,
    store: StateStore,
    replayed: Replayed | None = None,
    decisions: dict[str, Any] | None = None,
) -> int:
    """Run (or resume) `workflow` as the CLI does; the exit code."""
    guard_stdout()  # a broken stdout must not stop the run before its report
    env = {**os.environ, **opts.extra_env}
    views = _views(opts, workflow, inputs, env)
    approvals = dict(decisions or {})
    approvals.update({s: _engine.approval(True, by="--approve") for s in opts.approve})
    try:
        _engine.read_secrets(workflow, env)
    except InputError as exc:
        err(f"error: {opts.file}: {exc}; nothing was run")
        return ExitCode.INVALID
    from wfctl.cli._executor import ready_backend

    backend, problem = ready_backend(opts.executor, opts.ray_address, workflow, opts.workdir)
    if problem is not None:
        err(f"error: {opts.file}: {problem}; nothing was run")
        return ExitCode.INVALID
    call = _engine.EngineCall(
        workflow=workflow,
        inputs=inputs,
        run_id=run_id,
        bus=views.bus,
        store=store,
        cancel=anyio.Event(),
        env=env,
        approvals=approvals,
        approval_handler=_approval_handler(opts, views.live, store, run_id),
        max_parallel=opts.max_parallel,
        workdir=opts.workdir,
        resume=replayed,
        sla_breaches=_sla_breaches(workflow, views.metrics),
        backend=backend,
        journal_output_limit=opts.journal_output_limit,
        use_cache=opts.use_cache,
    )
    failures = stop_on_store_failure(store, call.cancel)
    try:
        result = await _watched(call, views)
    except Exception:
        if not failures:
            raise
        return journal_failed(failures[0], run_id)
    if failures:
        return journal_failed(failures[0], run_id)
    return _finish(opts, workflow, inputs, result, views, store)


def _finish(
    opts: RunOptions,
    workflow: Any,
    inputs: dict[str, Any],
    result: RunResult,
    views: _Views,
    store: StateStore,
) -> int:
    """Write the report (and JUnit), record the run's end, print the summary; the exit code."""
    from wfctl.report.build import build_report
    from wfctl.report.tail import failed_tails, truncations
    from wfctl.state.output_cap import DROPPED_KIND

    shown_inputs = {k: ("***" if k in workflow.secret_inputs else v) for k, v in inputs.items()}
    code = for_state(result.status.value)
    # From the journal, and only when a step failed: nothing is kept while the run runs.
    tails = failed_tails((e for _, e in store.events(result.run_id)), result.steps, opts.tail)
    report = build_report(
        result,
        workflow,
        shown_inputs,
        views.metrics,
        exit_code=code,
        tails=tails,
        truncated=truncations(store.events_of_kind(result.run_id, DROPPED_KIND)),
    )
    breaches = views.metrics.breaches
    if code == ExitCode.OK and opts.fail_on_sla and breaches:
        code = ExitCode.FAILED
        report["exit_code"] = int(code)
        report["error"] = "SLA breached (--fail-on-sla): " + breaches[0].message
    report_path = (
        Path(opts.report)
        if opts.report
        else opts.state_path() / "reports" / f"{result.run_id}.json"
    )
    store.set_status(result.run_id, result.status.value, result.error, report_path=str(report_path))
    code = _write_outputs(opts, report, report_path) or code
    views.observers.finish(report, lambda message: err(f"warning: {message}"))
    _print_outcome(opts, code, result, report, report_path, views.summary_stream)
    return code


def _write_outputs(opts: RunOptions, report: dict[str, Any], report_path: Path) -> ExitCode | None:
    """Write the report and the JUnit file; exit 2 if one could not be written."""
    from wfctl.format.output_file import OutputPathError
    from wfctl.report.build import write_json_atomic
    from wfctl.report.junit import write_junit

    writers: list[tuple[Callable[[Path, dict[str, Any]], None], Path]] = [
        (write_json_atomic, report_path)
    ]
    if opts.junit:
        writers.append((write_junit, Path(opts.junit)))
    code = None
    for write, path in writers:
        try:
            write(path, report)
        except OutputPathError as exc:
            err(f"error: {exc}")
            code = ExitCode.INVALID
    return code


def _print_outcome(
    opts: RunOptions,
    code: int,
    result: RunResult,
    report: dict[str, Any],
    path: Path,
    log_stream: IO[str],
) -> None:
    if opts.json_output:
        from wfctl.report.build import report_json

        sys.stdout.write(report_json(report))
    elif not opts.quiet or code != ExitCode.OK:
        _summary(result, report, path, log_stream)


def _summary(result: RunResult, report: dict[str, Any], path: Path, out: IO[str]) -> None:
    counts = report["metrics"]["status_counts"]
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    out.write(f"{result.status.value}: {', '.join(parts)} in {result.duration:.2f}s\n")
    for step_id in result.waiting_for:
        out.write(
            f"  waiting for approval: {printable(step_id)}\n"
            f"    approve:  wfctl approve {result.run_id} {step_id}\n"
            f"    (or reject: wfctl approve {result.run_id} {step_id} --reject)\n"
        )
    if result.waiting_for:
        out.write(f"  then continue with: wfctl resume {result.run_id}\n")
    from wfctl.view.plain import failure_tails

    error = report.get("error")
    if error and result.status.value != "waiting_approval":
        out.write(f"  {without_colours(str(error))}\n")  # may quote the workflow's own text

    for line in failure_tails(report):
        out.write(line + "\n")
    out.write(f"report: {path}\n")
    out.flush()
