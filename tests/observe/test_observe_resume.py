"""`wfctl resume` takes the observability options too, and its metrics cover the whole
run: the steps of the first process and of the resuming one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cli_helpers import DATA, wfctl
from prometheus_client.parser import text_string_to_metric_families


def test_resume_writes_metrics_of_the_whole_run(tmp_path: Path) -> None:
    shutil.copy(DATA / "approval.yaml", tmp_path / "approval.yaml")
    first = wfctl(["run", "approval.yaml", "--no-live", "--metrics-file", "first.prom"], tmp_path)
    assert first.rc == 4, first
    run_id = next(ln.split()[3] for ln in first.stdout.splitlines() if "approve:  wfctl" in ln)
    assert 'wfctl_run_info{run_id="' in (tmp_path / "first.prom").read_text()
    assert wfctl(["approve", run_id, "gate"], tmp_path).rc == 0
    second = wfctl(
        ["resume", run_id, "--metrics-file", "second.prom", "--log-format", "json"], tmp_path
    )
    assert second.rc == 0, second
    assert (tmp_path / "shipped.marker").exists()
    values = {
        (s.name, s.labels.get("status", "")): s.value
        for family in text_string_to_metric_families((tmp_path / "second.prom").read_text())
        for s in family.samples
    }
    assert values[("wfctl_run_success", "")] == 1
    assert values[("wfctl_run_steps", "completed")] == 3  # prepare ran in the first process
    events = [json.loads(line) for line in second.stderr.splitlines()]
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "completed"
