"""Options shared by several commands (same flag, same help everywhere), and RunOptions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from wfctl.observe.settings import LogFormat, ObserveSettings

StateDirOption = Annotated[
    str | None,
    typer.Option(
        "--state-dir",
        metavar="DIR",
        envvar="WFCTL_HOME",
        help="Where runs are journaled [./.wfctl].",
    ),
]

# Options shared by `run` and `resume`.
InputsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        metavar="KEY=VALUE",
        help="Repeatable; VALUE is parsed as JSON if it can be (not for string inputs).",
    ),
]
ReportOption = Annotated[
    str | None,
    typer.Option(
        "--report", metavar="PATH", help="Where to write the JSON report [.wfctl/reports/ID.json]."
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Only failures and the end.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the report on stdout and nothing else there.")
]
NoLiveOption = Annotated[
    bool, typer.Option("--no-live", help="Plain lines instead of the live table.")
]
TailOption = Annotated[
    int,
    typer.Option(
        "--tail",
        metavar="N",
        min=0,
        help="Show (and report) the last N lines of a failed step's stdout and stderr; 0: none.",
    ),
]
NoInputOption = Annotated[
    bool,
    typer.Option(
        "--no-input", help="Never prompt: approval steps wait (exit 4) for wfctl approve."
    ),
]

# Observability (wfctl/observe): shared by `run` and `resume`.
OtelOption = Annotated[
    bool,
    typer.Option(
        "--otel",
        help="Export OpenTelemetry traces over OTLP/HTTP (on by itself when "
        "OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set).",
    ),
]
MetricsFileOption = Annotated[
    str | None,
    typer.Option(
        "--metrics-file",
        metavar="PATH",
        help="Write Prometheus metrics (text format, for node_exporter's textfile collector).",
    ),
]
PushGatewayOption = Annotated[
    str | None,
    typer.Option(
        "--push-gateway", metavar="URL", help="Push Prometheus metrics to this Pushgateway."
    ),
]
LogFormatOption = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        case_sensitive=False,
        help="text: the live table or plain lines; json: one JSON object per event on stderr.",
    ),
]


@dataclass(frozen=True)
class RunOptions:
    """What `wfctl run` and `wfctl resume` were asked to do."""

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
    tail: int = 20  # lines of a failed step's stdout/stderr shown and reported (--tail)
    observe: ObserveSettings = field(default_factory=ObserveSettings)
    executor: str | None = None  # --executor / WFCTL_EXECUTOR (None: the workflow's)
    ray_address: str | None = None  # --ray-address / RAY_ADDRESS
    journal_output_limit: int | None = None  # bytes (None: the journal's default)
    use_cache: bool = True  # --no-cache: steps with `cache:` run (and are recorded)

    def state_path(self) -> Path:
        """--state-dir, else $WFCTL_HOME, else ./.wfctl."""
        return Path(self.state_dir or os.environ.get("WFCTL_HOME") or ".wfctl")
