"""`wfctl init` and `wfctl schema --path`: a new workflow that editors and `validate` accept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import ROOT, run_cli, wfctl

MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.M)


def test_init_writes_a_workflow_that_validates_and_runs(tmp_path: Path) -> None:
    made = wfctl(["init", "nightly-build"], tmp_path)
    assert made.rc == 0, made.stderr
    target = tmp_path / "nightly-build.yaml"
    assert made.stdout.strip() == "wrote nightly-build.yaml"
    text = target.read_text(encoding="utf-8")
    assert "workflow_id: nightly-build\n" in text
    checked = wfctl(["validate", "nightly-build.yaml"], tmp_path)
    assert (checked.rc, checked.stdout.strip()) == (0, "1 file valid"), checked.stderr
    ran = wfctl(["run", "nightly-build.yaml", "-i", "who=ci", "--json"], tmp_path)
    assert ran.rc == 0, ran.stderr
    assert json.loads(ran.stdout)["status"] == "completed"


def test_the_modeline_resolves_outside_the_repository(tmp_path: Path) -> None:
    """The schema the modeline names is a real file beside the workflow, the bundled one."""
    assert wfctl(["init", "flow", "--dir", "sub/dir"], tmp_path).rc == 0
    target = tmp_path / "sub" / "dir" / "flow.yaml"
    match = MODELINE.search(target.read_text(encoding="utf-8"))
    assert match is not None
    copy = target.parent / match[1]
    assert copy.is_file()
    bundled = json.loads((ROOT / "schemas" / "workflow.schema.json").read_text("utf-8"))
    assert json.loads(copy.read_text("utf-8")) == bundled
    assert bundled["$id"].startswith("https://")


def test_init_can_point_the_modeline_elsewhere(tmp_path: Path) -> None:
    url = "https://example.org/workflow.schema.json"
    assert wfctl(["init", "flow", "--schema", url], tmp_path).rc == 0
    match = MODELINE.search((tmp_path / "flow.yaml").read_text("utf-8"))
    assert match is not None and match[1] == url
    assert not (tmp_path / ".wfctl-schema").exists()


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text("keep me\n", encoding="utf-8")
    refused = wfctl(["init", "flow"], tmp_path)
    assert refused.rc == 2
    assert "flow.yaml exists (use --force" in refused.stderr
    assert (tmp_path / "flow.yaml").read_text("utf-8") == "keep me\n"
    assert wfctl(["init", "flow", "--force"], tmp_path).rc == 0
    assert "workflow_id: flow" in (tmp_path / "flow.yaml").read_text("utf-8")


@pytest.mark.parametrize("bad", ["1st", "has space", "dots.not.allowed"])
def test_init_refuses_an_id_the_schema_refuses(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(["init", bad], capsys)
    assert rc == 2
    assert f"workflow id {bad!r}" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_schema_path_prints_a_file_with_the_schema(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc, out, _ = run_cli(["schema", "--path"], capsys)
    assert rc == 0
    path = Path(out.strip())
    assert path.is_file() and path.name == "workflow.schema.json"
    rc, content, _ = run_cli(["schema"], capsys)
    assert rc == 0 and json.loads(content) == json.loads(path.read_text("utf-8"))


def test_the_readme_vscode_snippet_maps_the_schema_onto_the_examples() -> None:
    """The README's VS Code settings are valid JSON, name a real schema file, and their
    glob matches the example workflows."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Editors", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```jsonc?\n(.*?)```", section, re.S)
    assert block is not None, "no JSON block in the Editors section"
    settings = json.loads(block[1])
    [(schema, globs)] = settings["yaml.schemas"].items()
    assert (ROOT / schema).is_file()
    matched = {p for g in globs for p in ROOT.glob(g)}
    assert set((ROOT / "workflows").glob("*.yaml")) <= matched
