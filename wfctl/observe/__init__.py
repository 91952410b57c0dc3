"""What a run tells the systems people already watch: OpenTelemetry traces, Prometheus
metrics, JSON log lines, SLA alerts.

Each exporter subscribes to the run's one event stream (or reads the finished report);
nothing here is imported, and no work is done per event, unless its feature is on. The
OpenTelemetry SDK and prometheus_client are imported only by the modules that use them.
"""

from __future__ import annotations

from wfctl.observe.settings import LogFormat, ObserveSettings, tracing_requested

__all__ = ["LogFormat", "ObserveSettings", "tracing_requested"]
