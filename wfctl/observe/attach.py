"""The exporters a run asked for, subscribed to its event stream, and what they do at its
end. The CLI's session calls `attach` once and `Observers.finish` after the report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from wfctl.observe.settings import ObserveSettings, otel_missing, tracing_requested
from wfctl.secrets import Masker

if TYPE_CHECKING:
    from wfctl.events import EventBus
    from wfctl.observe.jsonlog import JsonLog
    from wfctl.observe.traces import TraceExporter
    from wfctl.report.metrics import SlaBreach

__all__ = ["Observers", "attach", "run_masker"]


def run_masker(workflow: Any, inputs: Mapping[str, Any], env: Mapping[str, str]) -> Masker:
    """A masker of the run's secret values (declared secrets, secret inputs)."""
    values = [env[var] for var in workflow.secrets.values() if var in env]
    values += [str(inputs[name]) for name in workflow.secret_inputs if name in inputs]
    return Masker(values)


@dataclass
class Observers:
    """What is subscribed: the JSON log and the trace exporter, each only when asked."""

    settings: ObserveSettings
    json_log: JsonLog | None = None
    traces: TraceExporter | None = None

    def alert(self, breach: SlaBreach) -> bool:
        """Log an SLA breach as a JSON object; False when there is no JSON log to do it."""
        if self.json_log is None:
            return False
        self.json_log.write(
            {
                "time": _iso(breach.ts),
                "level": "warning",
                "event": "sla_breach",
                **breach.to_json(),
            }
        )
        return True

    def finish(self, report: dict[str, Any], warn: Callable[[str], None]) -> None:
        """After the report: export the metrics; make sure the traces are sent. Problems
        are warnings (to `warn`, or JSON objects in the JSON log): the run's outcome stands."""
        if self.json_log is not None:
            log = self.json_log

            def warn(message: str) -> None:
                log.write(
                    {"time": _iso(time.time()), "level": "warning", "event": "warning"}
                    | {"message": message}
                )

        if self.traces is not None:
            self.traces.close()
        if self.settings.exports_metrics:
            from wfctl.observe.metrics import export_metrics

            export_metrics(
                report,
                time.time(),
                self.settings.metrics_file,
                self.settings.push_gateway,
                warn,
            )


def _iso(ts: float) -> str:
    from wfctl.observe.jsonlog import iso_time

    return iso_time(ts)


def _log_sdk_as_json(log: JsonLog) -> None:
    """The OpenTelemetry SDK's own warnings (an unreachable collector) as JSON objects too:
    stderr stays one object per line for the shipper."""

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log.write(
                {
                    "time": _iso(record.created),
                    "level": record.levelname.lower(),
                    "event": "log",
                    "logger": record.name,
                    "message": record.getMessage(),
                }
            )

    sdk = logging.getLogger("opentelemetry")
    sdk.addHandler(_Handler(logging.WARNING))
    sdk.propagate = False


def attach(
    settings: ObserveSettings,
    bus: EventBus,
    masker: Callable[[], Masker],
    env: Mapping[str, str],
    log_stream: IO[str],
    warn: Callable[[str], None],
) -> Observers:
    """Subscribe what `settings` and the OTEL_* variables of `env` ask for to `bus`."""
    observers = Observers(settings)
    if settings.json_log:
        from wfctl.observe.jsonlog import JsonLog

        observers.json_log = JsonLog(log_stream, masker())
        bus.subscribe(observers.json_log)
    if tracing_requested(settings.otel, env):
        missing = otel_missing()  # --otel without the extra stopped the run before it began
        if missing is not None:
            # Asked for by an OTEL_* variable of the environment (a CI-wide setting, say):
            # run without traces, and say so.
            warn(f"{missing}; running without traces")
            return observers
        from wfctl.observe.traces import TraceExporter

        observers.traces = TraceExporter(masker(), env)
        bus.subscribe(observers.traces)
        if observers.json_log is not None:
            _log_sdk_as_json(observers.json_log)
    return observers
