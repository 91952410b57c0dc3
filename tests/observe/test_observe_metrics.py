"""Prometheus metrics of a run: `--metrics-file` (text format for node_exporter's textfile
collector, written atomically) read back with prometheus_client's own parser, and
`--push-gateway` against Debian's real prometheus-pushgateway on 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import ROOT, Run, clean_env, wfctl
from prometheus_client.parser import text_string_to_metric_families

from wfctl.observe.metrics import METRICS

DATA = ROOT / "tests" / "data" / "observe"
SECRET = "tok-S3cr3t-991"


def _run(cwd: Path, *args: str) -> Run:
    cwd.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "traced.yaml", cwd / "traced.yaml")
    env = clean_env(OBSERVE_TOKEN=SECRET)
    return wfctl(["run", "traced.yaml", "--no-live", "--report", "report.json", *args], cwd, env)


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def _value(samples: dict[str, Any], name: str, **labels: str) -> float:
    matches = [v for got, v in samples[name] if labels.items() <= got.items()]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return float(matches[0])


def _check_run_metrics(samples: dict[str, Any], report: dict[str, Any]) -> None:
    w = {"workflow_id": "traced"}
    # The Pushgateway adds its grouping labels (job, instance); the file has none.
    info = [
        ({k: v for k, v in labels.items() if k not in ("job", "instance")}, value)
        for labels, value in samples["wfctl_run_info"]
    ]
    assert info == [({**w, "run_id": report["execution_id"], "status": "failed"}, 1.0)]
    assert _value(samples, "wfctl_run_success", **w) == 0
    assert _value(samples, "wfctl_run_exit_code", **w) == 1
    assert _value(samples, "wfctl_run_duration_seconds", **w) == pytest.approx(report["duration"])
    assert _value(samples, "wfctl_run_steps", status="completed", **w) == 5
    assert _value(samples, "wfctl_run_steps", status="failed", **w) == 1
    assert _value(samples, "wfctl_run_steps", status="skipped", **w) == 1
    assert _value(samples, "wfctl_run_retries", **w) == 1
    assert _value(samples, "wfctl_run_attempts", **w) == report["metrics"]["attempts_total"]
    assert _value(samples, "wfctl_run_success_rate", **w) == pytest.approx(5 / 6)
    assert _value(samples, "wfctl_run_sla_met", **w) == 1
    assert _value(samples, "wfctl_step_attempts", step_id="flaky", **w) == 2
    flaky = report["steps"]["flaky"]["duration"]
    assert _value(
        samples, "wfctl_step_duration_seconds", step_id="flaky", status="completed", **w
    ) == pytest.approx(flaky)
    assert _value(samples, "wfctl_step_duration_seconds", step_id="leak", status="failed", **w) >= 0


def test_metrics_file_in_the_textfile_collector_format(tmp_path: Path) -> None:
    target = tmp_path / "textfile" / "wfctl.prom"
    target.parent.mkdir()
    target.write_text("# an older run\n")
    before = target.stat().st_ino
    run = _run(tmp_path / "ws", "--metrics-file", str(target))
    assert run.rc == 1, run
    text = target.read_text(encoding="utf-8")
    samples = _samples(text)
    _check_run_metrics(samples, run.report())
    # Every documented metric is declared (HELP and TYPE lines), even those without samples.
    for name in METRICS:
        assert f"# TYPE {name} gauge" in text, name
    assert SECRET not in text
    # Written beside and renamed over: a new file, no temporary left for the collector.
    assert target.stat().st_ino != before
    assert [p.name for p in target.parent.iterdir()] == ["wfctl.prom"]
    assert "warning" not in run.stderr


def test_every_metric_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Observability", 1)[1].split("\n## ", 1)[0]
    for name, (_, labels) in METRICS.items():
        assert f"`{name}`" in section, name
        for label in labels:
            assert f"`{label}`" in section, (name, label)


def test_a_directory_as_metrics_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    run = _run(tmp_path, "--metrics-file", "out")
    assert run.rc == 2, run
    assert "--metrics-file out is a directory" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "report.json").exists()


def test_push_to_a_real_pushgateway(tmp_path: Path, pushgateway: str) -> None:
    first = _run(tmp_path / "one", "--push-gateway", pushgateway)
    assert first.rc == 1, first
    assert "warning" not in first.stderr, first
    second = _run(tmp_path / "two", "--push-gateway", pushgateway)
    assert second.rc == 1, second
    text = httpx.get(f"{pushgateway}/metrics", timeout=10).text
    samples = _samples(text)
    group = {"job": "wfctl", "workflow_id": "traced"}
    # Each push replaces the workflow's group: the second run's metrics only.
    ours = {
        name: [(labels, v) for labels, v in found if group.items() <= labels.items()]
        for name, found in samples.items()
    }
    _check_run_metrics(ours, second.report())
    assert _value(samples, "push_time_seconds", **group) > 0
    assert first.report()["execution_id"] not in text


def test_an_unreachable_pushgateway_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    run = _run(tmp_path, "--push-gateway", "http://127.0.0.1:9")
    assert run.rc == 1, run  # the run's own outcome (a failed step), not the push
    assert "warning: could not push metrics to http://127.0.0.1:9" in run.stderr
    assert run.report()["status"] == "failed"
