"""A run's report rebuilt from its journal (for `wfctl show` and `approve`, even of a live run)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from wfctl.report.build import RunFacts, StepMeta, assemble
from wfctl.report.tail import failed_tails, truncations

if TYPE_CHECKING:
    from wfctl.state.store import RunRow, StateStore

# Journal event kinds that the run-level metrics count.
_COUNTED = {"retry_scheduled": "retries", "circuit": "circuit_breaker_trips"}


def _counts(events: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(_COUNTED.values(), 0)
    for e in events:
        key = _COUNTED.get(e.get("kind", ""))
        if key is not None and (key == "retries" or e.get("state") == "open"):
            counts[key] += 1
    return counts


def _parents(events: list[dict[str, Any]]) -> dict[str, str]:
    return {
        e["step_id"]: e["container"]
        for e in events
        if e.get("kind") == "step_state" and e.get("container")
    }


def _workflow(row: RunRow) -> dict[str, Any]:
    # The version is in the workflow file, which may have changed since: not known here.
    return {
        "id": row.workflow_id,
        "name": row.workflow_name,
        "version": None,
        "file": row.file,
        "sha256": row.sha256,
    }


def _elapsed(row: RunRow) -> float:
    """How long the run took, or has taken so far when it has not ended."""
    return (row.ended_at or time.time()) - row.started_at


def _artifacts(store: StateStore, row: RunRow) -> str | None:
    """The run's artifacts directory (None for a run older than them: it has none)."""
    from wfctl.state.artifacts import artifacts_path

    path = artifacts_path(store.directory, row.run_id).resolve()
    return str(path) if path.is_dir() else None


def report_from_journal(store: StateStore, row: RunRow) -> dict[str, Any]:
    """The report of `row`'s run as far as its journal tells (the builder's shape)."""
    from wfctl.report.metrics import summarize
    from wfctl.state.lock import effective_status
    from wfctl.state.replay import replay

    events = [e for _, e in store.events(row.run_id)]
    started = next((e for e in events if e.get("kind") == "run_started"), None)
    replayed = replay(list(started["step_ids"]) if started else [], events)
    records = replayed.records
    parents = _parents(events)
    counts = _counts(events)
    finished = replayed.finished or {}
    facts = RunFacts(
        run_id=row.run_id,
        workflow=_workflow(row),
        status=effective_status(store.directory, row),
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration=finished.get("duration") or _elapsed(row),
        records=records,
        steps={k: StepMeta(k, None, parents.get(k)) for k in records},
        metrics=summarize(records, counts["retries"], counts["circuit_breaker_trips"]),
        inputs=row.inputs,
        error=row.error,
        waiting_for=tuple(k for k, r in records.items() if r.status.value == "waiting"),
        vars=replayed.vars,
        tails=failed_tails(events, records),
        truncated=truncations(events),
        artifacts_dir=_artifacts(store, row),
    )
    return assemble(facts)
