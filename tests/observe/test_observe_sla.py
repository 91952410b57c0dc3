"""`on_sla_breach`: handler steps run at the end of a run that missed an SLA target; here a
webhook through the `http` action, received by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from cli_helpers import ROOT, Run, wfctl

DATA = ROOT / "tests" / "data" / "observe"


def _run(tmp_path: Path, name: str, webhook: Any) -> Run:
    shutil.copy(DATA / name, tmp_path / name)
    url = f"http://127.0.0.1:{webhook.server_port}"
    args = ["run", name, "--no-live", "--report", "report.json", "-i", f"webhook={url}"]
    return wfctl(args, tmp_path)


def test_a_breach_posts_to_the_webhook(tmp_path: Path, webhook: Any) -> None:
    run = _run(tmp_path, "sla_webhook.yaml", webhook)
    assert run.rc == 0, run  # a breach is reported, it does not fail the run
    assert webhook.received.paths == ["/alerts"]
    body = webhook.received.bodies[0]
    assert body == {
        "workflow": "sla-webhook",
        "kind": "sla_breach",
        "message": body["message"],
        "targets": "step_max_duration",
        "step": "slow",
    }
    assert "step slow" in body["message"] and "SLA 0.05s" in body["message"]
    report = run.report()
    assert report["sla"]["met"] is False
    notify = report["steps"]["notify"]
    assert notify["status"] == "completed"
    assert [(h["purpose"], h["status"]) for h in notify["handler_runs"]] == [
        ("sla_breach", "completed")
    ]
    assert report["steps"]["fast"]["status"] == "completed"


def test_no_breach_no_call(tmp_path: Path, webhook: Any) -> None:
    run = _run(tmp_path, "sla_met.yaml", webhook)
    assert run.rc == 0, run
    assert webhook.received.paths == []
    report = run.report()
    assert report["sla"]["met"] is True
    assert report["steps"]["notify"]["status"] == "skipped"


def test_a_failed_run_below_its_success_rate_alerts_and_stays_failed(
    tmp_path: Path, webhook: Any
) -> None:
    run = _run(tmp_path, "sla_rate.yaml", webhook)
    assert run.rc == 1, run
    assert [b["kind"] for b in webhook.received.bodies] == ["sla_breach"]
    assert "success rate 50%" in webhook.received.bodies[0]["message"]
    report = run.report()
    assert report["status"] == "failed"
    assert report["error"] == "step 'broken' failed: it broke"
    assert [b["target"] for b in report["sla"]["breaches"]] == ["min_success_rate"]


def test_a_failing_webhook_does_not_change_the_outcome(tmp_path: Path) -> None:
    shutil.copy(DATA / "sla_webhook.yaml", tmp_path / "sla_webhook.yaml")
    args = ["run", "sla_webhook.yaml", "--no-live", "--report", "report.json"]
    run = wfctl([*args, "-i", "webhook=http://127.0.0.1:9"], tmp_path)
    assert run.rc == 0, run
    notify = run.report()["steps"]["notify"]
    assert notify["status"] == "failed"
    assert "ConnectError" in notify["error"]


def test_unknown_and_dependent_breach_handlers_are_invalid(tmp_path: Path) -> None:
    shutil.copy(DATA / "invalid_sla.yaml", tmp_path / "invalid_sla.yaml")
    run = wfctl(["validate", "invalid_sla.yaml"], tmp_path)
    assert run.rc == 2, run
    assert (
        "invalid_sla.yaml:5:17 on_sla_breach[0]: unknown step 'notfy' in on_sla_breach"
        in run.stdout
    )
    assert "did you mean 'notify'?" in run.stdout
    assert "invalid_sla.yaml:10:5 steps[1].dependencies: step 'page'" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_the_readme_snippet_pages(tmp_path: Path, webhook: Any) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Observability", 1)[1].split("\n## ", 1)[0]
    snippet = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    # Completed as a user would: a header, and a build step slower than a tightened target.
    text = "workflow_id: readme-sla\nname: README SLA\n" + snippet.replace(
        "  # ... the workflow's steps ...\n",
        "  - {step_id: build, action: sleep, with: {seconds: 0.3}}\n",
    ).replace("{build: 120}", "{build: 0.05}")
    (tmp_path / "readme-sla.yaml").write_text(text, encoding="utf-8")
    url = f"http://127.0.0.1:{webhook.server_port}/hook"
    run = wfctl(["run", "readme-sla.yaml", "--no-live", "-i", f"webhook={url}"], tmp_path)
    assert run.rc == 0, run
    assert webhook.received.paths == ["/hook"]
    assert webhook.received.bodies[0]["text"].startswith("readme-sla: step build")
