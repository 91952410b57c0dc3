"""The one call from the CLI into the engine.

Everything the CLI hands to `run_workflow` passes through `EngineCall`, so a change of
the engine's signature is met here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import anyio

    from wfctl.events import EventBus
    from wfctl.records import RunResult
    from wfctl.state.replay import Replayed
    from wfctl.state.store import StateStore


@dataclass(frozen=True)
class EngineCall:
    """One run as the CLI asks the engine for it."""

    workflow: Any
    inputs: dict[str, Any]
    run_id: str
    bus: EventBus
    store: StateStore
    cancel: anyio.Event
    env: dict[str, str]
    approvals: dict[str, Any]
    approval_handler: Any = None
    max_parallel: int | None = None
    workdir: str | None = None
    resume: Replayed | None = None
    sla_breaches: Any = None  # for the workflow's on_sla_breach handlers
    backend: Any = None  # a ready backend (--executor ray); None: local
    journal_output_limit: int | None = None  # None: the journal's default
    use_cache: bool = True  # --no-cache: False


def load_engine() -> None:
    """Import what the engine needs (LangGraph and all) now, before the GC is frozen."""
    from wfctl.engine.runner import load_engine as load

    load(durable=True)


def approval(ok: bool, by: str, comment: str = "") -> Any:
    """An approval decision as the engine takes it."""
    from wfctl.records import ApprovalDecision

    return ApprovalDecision(ok, by=by, comment=comment)


def read_secrets(workflow: Any, env: dict[str, str]) -> None:
    """Check the workflow's secrets are in `env` (InputError naming a missing one)."""
    from wfctl.engine.runner import read_secrets as read

    read(workflow, env)


def new_run_id() -> str:
    """A fresh, sortable run id."""
    from wfctl.engine.runner import new_run_id as new

    return new()


async def run_engine(call: EngineCall) -> RunResult:
    """Run (or resume) the workflow on the engine; the run's result."""
    from wfctl.engine.options import RunOptions
    from wfctl.engine.runner import run_workflow

    options = RunOptions(
        run_id=call.run_id,
        bus=call.bus,
        max_parallel=call.max_parallel,
        approvals=call.approvals,
        approval_handler=call.approval_handler,
        env=call.env,
        workdir=Path(call.workdir) if call.workdir else None,
        cancel=call.cancel,
        store=call.store,
        resume=call.resume,
        sla_breaches=call.sla_breaches,
        backend=call.backend,
        journal_output_limit=call.journal_output_limit,
        use_cache=call.use_cache,
    )
    return await run_workflow(call.workflow, call.inputs, options)
