"""Which exporters a run uses: command-line options and the standard OTEL_* variables."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from wfctl.format.extras import install_hint

__all__ = ["LogFormat", "ObserveSettings", "otel_missing", "tracing_requested"]

OTEL_HINT = install_hint("otel")


class LogFormat(StrEnum):
    """`--log-format`: the plain log or live table, or one JSON object per event."""

    TEXT = "text"
    JSON = "json"


# Setting either endpoint is how OpenTelemetry users say "export traces" everywhere else.
_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_FALSE = frozenset({"", "0", "false", "no", "off"})


def tracing_requested(flag: bool, env: Mapping[str, str]) -> bool:
    """Traces on with `--otel` or an OTLP endpoint variable, unless OpenTelemetry's own
    switches (`OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`) turn them off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() not in _FALSE:
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return flag or any(env.get(var, "").strip() for var in _ENDPOINT_VARS)


def otel_missing() -> str | None:
    """Why traces cannot be exported here (the `otel` extra is not installed), or None."""
    try:
        found = importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is not None
        found = found and importlib.util.find_spec("opentelemetry.sdk.trace") is not None
    except ModuleNotFoundError:
        found = False
    return None if found else f"OpenTelemetry traces need the otel extra: {OTEL_HINT}"


@dataclass(frozen=True)
class ObserveSettings:
    """The observability options of one `wfctl run` / `wfctl resume`."""

    otel: bool = False  # --otel (the endpoint variables switch it on too)
    metrics_file: str | None = None  # --metrics-file: Prometheus text format
    push_gateway: str | None = None  # --push-gateway: a Pushgateway URL
    log_format: LogFormat = LogFormat.TEXT  # json: one object per event on stderr

    @property
    def json_log(self) -> bool:
        return self.log_format is LogFormat.JSON

    @property
    def exports_metrics(self) -> bool:
        return self.metrics_file is not None or self.push_gateway is not None
