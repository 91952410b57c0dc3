"""The exporters cost nothing unless asked for: `wfctl --help`, `wfctl validate` and a run
without observability options never import OpenTelemetry, prometheus_client or protobuf."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_helpers import ROOT, clean_env

# LangGraph's langsmith imports the OpenTelemetry SDK itself where it is installed, so a
# run is checked for the exporter and protobuf (which only wfctl's traces use).
_EXPORTERS = (
    "opentelemetry.exporter",
    "opentelemetry.proto",
    "google.protobuf",
    "prometheus_client",
    "wfctl.observe.traces",
    "wfctl.observe.metrics",
    "wfctl.observe.jsonlog",
)
_ALL = ("opentelemetry", *_EXPORTERS)


@pytest.mark.parametrize(
    ("args", "code", "heavy"),
    [
        (["--help"], 0, _ALL),
        (["validate", "workflows/"], 0, _ALL),
        (
            ["run", "tests/data/run/fanout.yaml", "--no-live", "-q", "--report", "{tmp}/r.json"],
            0,
            _EXPORTERS,
        ),
    ],
    ids=["help", "validate", "run"],
)
def test_nothing_is_imported_unless_asked(
    args: list[str], code: int, heavy: tuple[str, ...], tmp_path: object
) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    script = (
        "import sys\n"
        "from wfctl.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exc:\n"
        f"    assert (exc.code or 0) == {code}, exc.code\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({heavy!r}))\n"
        "print('LOADED', loaded)\n"
    )
    env = clean_env(WFCTL_HOME=str(tmp_path))
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout, result.stdout
