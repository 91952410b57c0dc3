"""deploy/rayjob.yaml: a KubeRay RayJob whose entrypoint is `wfctl run`, and whose
workflow (in the ConfigMap) is valid and asks for a resource one worker group offers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from wfctl import validate_paths

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "rayjob.yaml"


def _documents() -> dict[str, Any]:
    docs = list(yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")))
    return {doc["kind"]: doc for doc in docs}


def test_the_rayjob_runs_wfctl_on_the_workflow_it_mounts() -> None:
    docs = _documents()
    job = docs["RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    spec = job["spec"]
    entry = spec["entrypoint"].split()
    assert entry[:2] == ["wfctl", "run"] and "--executor" in entry
    assert entry[entry.index("--executor") + 1] == "ray"
    assert "wfctl[ray]" in yaml.safe_load(spec["runtimeEnvYAML"])["pip"]
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mount = head["containers"][0]["volumeMounts"][0]
    assert entry[2].startswith(mount["mountPath"] + "/")
    volume = next(v for v in head["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert entry[2].rsplit("/", 1)[1] in docs["ConfigMap"]["data"]


def test_the_mounted_workflow_is_valid_and_its_resources_exist(tmp_path: Path) -> None:
    docs = _documents()
    path = tmp_path / "workflow.yaml"
    path.write_text(docs["ConfigMap"]["data"]["workflow.yaml"], encoding="utf-8")
    [result] = validate_paths([str(path)])
    assert result.ok and not result.diagnostics, result.diagnostics
    workflow = yaml.safe_load(path.read_text())
    wanted = {name for s in workflow["steps"] for name in s.get("resources", {})}
    offered: set[str] = set()
    for group in docs["RayJob"]["spec"]["rayClusterSpec"]["workerGroupSpecs"]:
        raw = group["rayStartParams"].get("resources")
        if raw:
            offered |= set(json.loads(json.loads(raw)))
    assert wanted and wanted <= offered
