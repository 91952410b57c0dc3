"""The SLA breaches of a run at its end, as the engine's `on_sla_breach` handlers see them:
judged by the run's metrics collector (wfctl/report/metrics.py), the one SLA check."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from wfctl.report.metrics import MetricsCollector, summarize

__all__ = ["breaches_at_end"]


def breaches_at_end(
    metrics: MetricsCollector,
) -> Callable[[Mapping[str, Any]], list[dict[str, Any]]]:
    """For `RunOptions.sla_breaches`: the time targets checked once more, the success rate
    judged on the step records, then every breach of the run (as the report lists them)."""

    def breaches(records: Mapping[str, Any]) -> list[dict[str, Any]]:
        now = time.time()
        metrics.check_time(now)
        metrics.finish(summarize(dict(records), 0, 0)["success_rate"], now)
        return [breach.to_json() for breach in metrics.breaches]

    return breaches
