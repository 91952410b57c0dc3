"""An action step with `cache:`: its recorded output reused, or its run recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wfctl.model import Step
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["cache_digest_of", "cached_output", "record_cached"]


def cache_digest_of(ex: Executor, step: Step) -> str | None:
    """The step's cache digest in this run, or None (no cache, or no state file)."""
    if step.cache is None or ex.cache is None:
        return None
    from wfctl.state.cache import cache_digest

    rendered = step.cache.key.render(ex.context(step))
    return cache_digest(ex.workflow.workflow_id, step.step_id, step.cache.definition, rendered)


def cached_output(ex: Executor, step: Step, record: StepRecord, digest: str) -> tuple[bool, Any]:
    """(hit, output): on a hit the record says where the output came from."""
    assert ex.cache is not None and step.cache is not None
    found = ex.cache.lookup(digest, step.cache.ttl)
    if found is None:
        return False, None
    run_id, output = found
    record.reason = f"cached from run {run_id}"
    return True, output


def record_cached(ex: Executor, step: Step, record: StepRecord, digest: str) -> None:
    """Keep a completed step's output for later runs."""
    assert ex.cache is not None
    ex.cache.record(digest, ex.run_id, step.step_id, record.output)
