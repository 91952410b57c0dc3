"""The README's observability snippet, run as written (after its install line) against a
real OTLP receiver and a real Pushgateway on 127.0.0.1 put where the snippet points."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
from cli_helpers import EXAMPLES, ROOT, clean_env


def _snippet() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Observability", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    lines = block.group(1).splitlines()
    assert lines[0].startswith("pip install")  # the environment has it already
    return "\n".join(lines[1:]) + "\n"


def test_the_readme_snippet_runs(tmp_path: Path, otlp: Any, pushgateway: str) -> None:
    script = _snippet()
    assert "http://127.0.0.1:4318" in script and "http://127.0.0.1:9091" in script
    script = script.replace("http://127.0.0.1:4318", f"http://127.0.0.1:{otlp.server_port}")
    script = script.replace("http://127.0.0.1:9091", pushgateway)
    (tmp_path / "workflows").mkdir()
    shutil.copy(EXAMPLES / "data-pipeline.yaml", tmp_path / "workflows")
    env = clean_env()
    env["PATH"] = f"{Path(shutil.which('python') or 'python').parent}:{env['PATH']}"
    # `wfctl` as a user types it: the console script, this checkout first on PYTHONPATH.
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "completed"
    assert "wfctl_run_success{workflow_id=" in (tmp_path / "wfctl.prom").read_text()
    names = {
        span.name
        for body in otlp.received.bodies
        for rs in body.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    }
    assert any(name.startswith("run ") for name in names)
    assert "wfctl_run_info" in httpx.get(f"{pushgateway}/metrics", timeout=10).text
