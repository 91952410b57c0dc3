"""One `wfctl run` from the command line: inputs, view, signals, report, exit code."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from wfctl.format.diagnostics import WorkflowError
from wfctl.model.inputs import InputError, parse_assignment

EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class RunOptions:
    file: str
    inputs: tuple[str, ...] = ()
    inputs_file: str | None = None
    report: str | None = None
    junit: str | None = None
    max_parallel: int | None = None
    dry_run: bool = False
    quiet: bool = False
    json_output: bool = False
    live: bool | None = None  # None: decide from the terminal
    approve: tuple[str, ...] = ()
    no_input: bool = False
    workdir: str | None = None
    fail_on_sla: bool = False
    state_dir: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)


def _err(message: str) -> None:
    sys.stderr.write(message + "\n")


def read_inputs(opts: RunOptions) -> dict[str, Any]:
    """Inputs from --inputs-file then -i KEY=VALUE (later ones win)."""
    values: dict[str, Any] = {}
    if opts.inputs_file:
        path = Path(opts.inputs_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read inputs file {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"inputs file {path} is not UTF-8 text (byte {exc.start})") from None
        if path.suffix == ".json":
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise InputError(f"inputs file {path} is not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise InputError(f"inputs file {path} must hold a mapping of names to values")
        else:
            # The same strict loader as workflows: no duplicate keys, no YAML 1.1 surprises.
            from wfctl.document.loader import load_text
            from wfctl.validate.output import diagnostic_line

            try:
                data = load_text(text, str(path)).data if text.strip() else {}
            except WorkflowError as exc:
                raise InputError(
                    "bad inputs file: " + "; ".join(diagnostic_line(d) for d in exc.diagnostics)
                ) from None
        values.update(data)
    for assignment in opts.inputs:
        key, value = parse_assignment(assignment)
        values[key] = value
    return values


def coerce_cli_strings(
    declared: Mapping[str, Any], assignments: tuple[str, ...], values: dict[str, Any]
) -> None:
    """`-i tag=123` for a string input means the text "123", not the number."""
    for assignment in assignments:
        key, _, raw = assignment.partition("=")
        schema = declared.get(key.strip())
        if isinstance(schema, Mapping) and schema.get("type") == "string":
            values[key.strip()] = raw


def _print_diagnostics(exc: WorkflowError) -> None:
    from wfctl.validate.output import diagnostic_line

    for d in exc.diagnostics:
        _err(diagnostic_line(d) + (f"\n    hint: {d.hint}" if d.hint else ""))
    _err(f"{exc.diagnostics[0].file}: invalid workflow, nothing was run")


def _check_output_path(path: str | None, option: str) -> str | None:
    """Why a report path cannot be written, found before anything runs."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir():
        return f"{option} {path} is a directory; give a file name"
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return f"{option} {path}: {parent} is not a directory"
    if parent.exists() and not os.access(parent, os.W_OK):
        return f"{option} {path}: cannot write in {parent}"
    return None


def state_dir(opts: RunOptions) -> Path:
    return Path(opts.state_dir or os.environ.get("WFCTL_HOME") or ".wfctl")


def use_live(opts: RunOptions, out: IO[str]) -> bool:
    if opts.live is not None:
        return opts.live and not opts.json_output
    if opts.json_output or os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        return False
    return bool(out.isatty())


def dry_run(workflow: Any, out: IO[str]) -> None:
    """Print the plan: each step with what it waits on, in an order that could run."""
    from wfctl.compile.plan import compile_plan

    plan = compile_plan(workflow)

    def show(container: str | None, indent: str) -> None:
        level = plan.levels[container]
        done: set[str] = set()
        wave = 0
        pending = list(level.steps)
        while pending:
            ready = [
                s
                for s in pending
                if all(d in done or d not in level.dependents for d in s.dependencies)
            ]
            if not ready:
                break
            wave += 1
            for s in sorted(ready, key=lambda s: -plan.rank[s.step_id]):
                after = f" after {', '.join(s.dependencies)}" if s.dependencies else ""
                what = (
                    s.action
                    or (f"agent:{s.agent_capability}" if s.agent_capability else "")
                    or str(s.raw_with.get("model") or "")
                )
                kind = s.step_type.value + (f" {what}" if what else "")
                rule = f" [{s.trigger_rule.value}]" if s.trigger_rule.value != "all_success" else ""
                cond = f" when {s.when.source}" if s.when is not None else ""
                out.write(f"{indent}{wave}. {s.step_id} ({kind}){after}{rule}{cond}\n")
                if s.parallel_steps:
                    show(s.step_id, indent + "   ")
            done.update(s.step_id for s in ready)
            pending = [s for s in pending if s.step_id not in done]

    out.write(f"plan for {workflow.name} ({len(workflow.all_steps)} steps), nothing was run:\n")
    show(None, "  ")
    if workflow.handlers:
        out.write(f"  handlers (run on failure/rollback): {', '.join(sorted(workflow.handlers))}\n")


def _missing_extra(workflow: Any) -> str | None:
    """Why the workflow cannot run with what is installed (react steps without LangChain)."""
    from wfctl.model import StepType

    if not any(s.step_type is StepType.REACT for s in workflow.all_steps.values()):
        return None
    from wfctl.actions.react import missing_extra

    return missing_extra()


def run_from_cli(opts: RunOptions) -> int:
    """Run a workflow file as `wfctl run` does; returns the exit code."""
    workflow = _load_or_report(opts.file)
    if workflow is None:
        return EXIT_INVALID
    report_problem = _check_output_path(opts.report, "--report") or _check_output_path(
        opts.junit, "--junit"
    )
    if report_problem:
        _err(f"error: {report_problem}; nothing was run")
        return EXIT_INVALID
    try:
        given = read_inputs(opts)
        coerce_cli_strings(workflow.inputs, opts.inputs, given)
        from wfctl.model.inputs import resolve_inputs

        resolved = resolve_inputs(workflow.inputs, given)
    except InputError as exc:
        _err(f"error: {opts.file}: {exc}; nothing was run")
        return EXIT_INVALID
    unknown = [s for s in opts.approve if s not in workflow.all_steps]
    if unknown:
        _err(f"error: --approve names unknown step {', '.join(unknown)}")
        return EXIT_INVALID
    if opts.dry_run:
        dry_run(workflow, sys.stdout)
        return 0
    missing = _missing_extra(workflow)
    if missing:
        _err(f"error: {opts.file}: {missing}; nothing was run")
        return EXIT_INVALID

    import anyio

    from wfctl.engine.runner import new_run_id
    from wfctl.state.journal import RunLock, open_store
    from wfctl.state.store import StoreError

    try:
        store = open_store(state_dir(opts))
    except StoreError as exc:
        _err(f"error: {exc}")
        return EXIT_INVALID
    run_id = new_run_id()
    lock = RunLock(store.directory, run_id)
    lock.acquire()
    try:
        return anyio.run(_run_async, opts, workflow, resolved, run_id, store)
    finally:
        lock.release()
        store.close()


def resume_from_cli(run_id: str, opts: RunOptions, force: bool = False) -> int:
    """`wfctl resume RUN_ID`: continue a crashed, killed, cancelled or waiting run."""
    from wfctl.state.journal import RunLock, RunNotFound, opened_run

    try:
        with opened_run(state_dir(opts), run_id) as (store, row):
            lock = RunLock(store.directory, row.run_id)
            if not lock.acquire():
                raise RunNotFound(f"run {row.run_id} is being run by another wfctl process now")
            try:
                return _resume_locked(store, row, opts, force)
            finally:
                lock.release()
    except RunNotFound as exc:
        _err(f"error: {exc}")
        return EXIT_INVALID


def _resume_locked(store: Any, row: Any, opts: RunOptions, force: bool) -> int:
    from wfctl.engine.executor import ApprovalDecision
    from wfctl.model.inputs import resolve_inputs
    from wfctl.state.journal import replay

    if row.status == "completed":
        print(f"run {row.run_id} already completed; nothing to resume")
        return 0
    if row.status in ("failed", "timeout"):
        what = "failed" if row.status == "failed" else "timed out"
        _err(f"run {row.run_id} {what} and was rolled back; start a new run instead")
        return 1
    workflow = _load_or_report(row.file)
    if workflow is None:
        return EXIT_INVALID
    if workflow.sha256 != row.sha256 and not force:
        _err(
            f"error: {row.file} changed since run {row.run_id} started; the plan may "
            "no longer match. Resume anyway with --force"
        )
        return EXIT_INVALID
    missing = _missing_extra(workflow)
    if missing:
        _err(f"error: {row.file}: {missing}; nothing was run")
        return EXIT_INVALID
    # Secret inputs were never stored: their defaults apply again, or they must be
    # passed again (resolve_inputs names any that are missing).
    given = {
        k: v for k, v in row.inputs.items() if not (k in workflow.secret_inputs and v == "***")
    }
    try:
        given.update(read_inputs(opts))
        coerce_cli_strings(workflow.inputs, opts.inputs, given)
        resolved = resolve_inputs(workflow.inputs, given)
    except InputError as exc:
        _err(f"error: {exc}")
        return EXIT_INVALID
    replayed = replay(workflow.all_steps, (e for _, e in store.events(row.run_id)))
    decisions = {
        step: ApprovalDecision(ok, by=by, comment=comment)
        for step, (ok, by, comment) in store.approvals(row.run_id).items()
    }
    import anyio

    # Relative paths in the workflow meant the directory the run started in.
    workdir = row.options.get("workdir")
    return anyio.run(
        _run_async,
        replace(opts, file=row.file, approve=(), workdir=workdir),
        workflow,
        resolved,
        row.run_id,
        store,
        replayed,
        decisions,
    )


def _load_or_report(file: str) -> Any | None:
    """The validated workflow, or None after printing why it cannot be used."""
    from wfctl.validate.files import load_workflow

    try:
        return load_workflow(file)
    except WorkflowError as exc:
        _print_diagnostics(exc)
    except OSError as exc:
        _err(f"error: cannot read {file}: {exc.strerror}")
    return None


async def _run_async(
    opts: RunOptions,
    workflow: Any,
    given: dict[str, Any],
    run_id: str,
    store: Any,
    replayed: Any = None,
    decisions: dict[str, Any] | None = None,
) -> int:
    import anyio

    from wfctl.engine.executor import ApprovalDecision
    from wfctl.engine.options import RunOptions
    from wfctl.engine.runner import load_engine, read_secrets, run_workflow
    from wfctl.events import EventBus
    from wfctl.report.build import build_report, write_json_atomic, write_junit
    from wfctl.report.metrics import MetricsCollector, SlaBreach

    out = sys.stdout
    log_stream = sys.stderr if opts.json_output else out
    bus = EventBus()
    live = None
    if use_live(opts, out):
        from wfctl.view.live import LiveTable

        live = LiveTable(workflow, out)

    def alert(breach: SlaBreach) -> None:
        if live is not None:
            live.alert(breach.message)
        else:
            log_stream.write(f"SLA ALERT: {breach.message}\n")
            log_stream.flush()

    approval_handler = None
    if not opts.no_input and not opts.json_output and sys.stdin.isatty() and out.isatty():
        from wfctl.view.prompt import TerminalApprover

        approval_handler = TerminalApprover(live)
    metrics = MetricsCollector(workflow.sla_targets, on_breach=alert)
    bus.subscribe(metrics)
    if live is not None:
        bus.subscribe(live)
    else:
        from wfctl.view.plain import PlainLog

        bus.subscribe(PlainLog(log_stream, quiet=opts.quiet))

    cancel = anyio.Event()
    approvals = dict(decisions or {})
    approvals.update({s: ApprovalDecision(True, by="--approve") for s in opts.approve})
    env = {**os.environ, **opts.extra_env}
    try:
        read_secrets(workflow, env)
    except InputError as exc:
        _err(f"error: {opts.file}: {exc}; nothing was run")
        return EXIT_INVALID

    async def watch_signals(signals: Any) -> None:
        count = 0
        async for signum in signals:
            count += 1
            if count == 1:
                name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
                _err(
                    f"\ninterrupted ({name}): cancelling running steps"
                    " (Ctrl-C again to exit at once)"
                )
                cancel.set()
            else:
                # Exit at once, but leave no step processes behind.
                shell = sys.modules.get("wfctl.actions.shell")
                if shell is not None:
                    shell.kill_all_now()
                os._exit(EXIT_INTERRUPTED)

    async def tick_sla() -> None:
        # Events alone would report a hung step's SLA breach only once it ends.
        while True:
            await anyio.sleep(0.5)
            metrics.check_time()

    result = None
    # Installed before anything slow (the LangGraph import): a signal that arrives early
    # still cancels the run cleanly and gets its report written.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_signals, signals)
            sla = workflow.sla_targets
            if sla.max_duration is not None or sla.step_max_duration:
                tg.start_soon(tick_sla)
            # One run per process: what the imports built lives to the end. Frozen, the
            # collector stops walking it again and again while thousands of steps run.
            load_engine(durable=store is not None)
            gc.freeze()
            if live is not None:
                live.start()
            try:
                result = await run_workflow(
                    workflow,
                    given,
                    RunOptions(
                        run_id=run_id,
                        bus=bus,
                        max_parallel=opts.max_parallel,
                        approvals=approvals,
                        approval_handler=approval_handler,
                        env=env,
                        workdir=Path(opts.workdir) if opts.workdir else None,
                        cancel=cancel,
                        store=store,
                        resume=replayed,
                    ),
                )
            finally:
                if live is not None:
                    live.stop()
                tg.cancel_scope.cancel()
    assert result is not None
    shown_inputs = {k: ("***" if k in workflow.secret_inputs else v) for k, v in given.items()}
    report = build_report(result, workflow, shown_inputs, metrics)
    code = result.exit_code
    if code == 0 and opts.fail_on_sla and metrics.breaches:
        code = 1
        report["exit_code"] = code
        report["error"] = "SLA breached (--fail-on-sla): " + metrics.breaches[0].message
    report_path = (
        Path(opts.report) if opts.report else state_dir(opts) / "reports" / f"{run_id}.json"
    )
    write_json_atomic(report_path, report)
    store.set_status(run_id, result.status.value, result.error, report_path=str(report_path))
    if opts.junit:
        write_junit(Path(opts.junit), report)
    if opts.json_output:
        json.dump(report, out, indent=2, default=str)
        out.write("\n")
    elif not opts.quiet or code != 0:
        _summary(result, report, report_path, log_stream)
    return code


def _summary(result: Any, report: dict[str, Any], path: Path, out: IO[str]) -> None:
    counts = report["metrics"]["status_counts"]
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    out.write(f"{result.status.value}: {', '.join(parts)} in {result.duration:.2f}s\n")
    if result.waiting_for:
        for step_id in result.waiting_for:
            out.write(
                f"  waiting for approval: {step_id}\n"
                f"    approve:  wfctl approve {result.run_id} {step_id}\n"
                f"    (or reject: wfctl approve {result.run_id} {step_id} --reject)\n"
            )
        out.write(f"  then continue with: wfctl resume {result.run_id}\n")
    error = report.get("error")
    if error and result.status.value not in ("waiting_approval",):
        out.write(f"  {error}\n")
    out.write(f"report: {path}\n")
    out.flush()
