"""How to run a workflow: the options `run_workflow` takes, in one frozen object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wfctl.records import ApprovalDecision, ApprovalHandler

if TYPE_CHECKING:
    import anyio

    from wfctl.engine.backends import Backend
    from wfctl.engine.sla_handlers import BreachSource
    from wfctl.events import EventBus
    from wfctl.state.replay import Replayed
    from wfctl.state.store import StateStore

__all__ = ["RunOptions"]


@dataclass(frozen=True)
class RunOptions:
    """Everything about one run except the workflow and its inputs (all optional)."""

    run_id: str | None = None  # default: a new sortable id
    bus: EventBus | None = None  # subscribers see every event (after the journal)
    max_parallel: int | None = None  # default: the workflow's max_parallel_steps
    approvals: Mapping[str, ApprovalDecision] | None = None  # decisions already given
    approval_handler: ApprovalHandler | None = None  # asked at each approval step
    workdir: Path | None = None  # default: the current directory
    env: Mapping[str, str] | None = None  # default: os.environ (secrets are read here)
    seed: int | None = None  # seeds the retry jitter
    estimates: Mapping[str, float] | None = None  # step durations from earlier runs
    cancel: anyio.Event | None = None  # set it to cancel the run
    store: StateStore | None = None  # makes the run durable (journal, checkpoints)
    resume: Replayed | None = None  # a journal replay to continue
    backend: Backend | None = None  # where attempts run; default: this process
    # The SLA breaches at the end of the run, for the workflow's on_sla_breach handlers
    # (the CLI passes its metrics collector's; without it those handlers never run).
    sla_breaches: BreachSource | None = None
    executor: str | None = None  # else a backend by name: local | ray (default: workflow's)
    ray_address: str | None = None  # the ray executor's cluster (default: RAY_ADDRESS)
    engine: str | None = None  # "events" | "langgraph"; default: $WFCTL_ENGINE, else events
    # Bytes of each step attempt's output lines the journal keeps (the tail); None: 1 MiB.
    journal_output_limit: int | None = None
    use_cache: bool = True  # False (`--no-cache`): steps with `cache:` run and are recorded

    def with_(self, **changes: Any) -> RunOptions:
        """A copy with some options changed."""
        from dataclasses import replace

        return replace(self, **changes)
