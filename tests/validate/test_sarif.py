"""`wfctl validate --format sarif`: SARIF 2.1.0 for GitHub code scanning, checked against
the official SARIF 2.1.0 JSON Schema (vendored unchanged under tests/data/sarif/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ci_schemas import assert_valid_sarif
from cli_helpers import ROOT, run_cli, wfctl

from wfctl.format.codes import CODES
from wfctl.validate._sarif import artifact_uri

INVALID = ROOT / "tests" / "data" / "invalid"
EXAMPLES = ROOT / "workflows"


def test_every_problem_of_the_invalid_corpus_is_a_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(["validate", "--format", "sarif", str(INVALID)], capsys)
    assert code == 2
    log = json.loads(out)
    assert_valid_sarif(log)
    _, json_out, _ = run_cli(["validate", "--format", "json", str(INVALID)], capsys)
    diagnostics = [d for f in json.loads(json_out)["files"] for d in f["diagnostics"]]
    [run] = log["runs"]
    assert run["tool"]["driver"]["name"] == "wfctl"
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted({d["code"] for d in diagnostics})
    assert all(r["shortDescription"]["text"] == CODES[r["id"]].meaning for r in rules)
    assert len(run["results"]) == len(diagnostics) > 50
    for result, d in zip(run["results"], diagnostics, strict=True):
        assert result["ruleId"] == d["code"] == rules[result["ruleIndex"]]["id"]
        assert result["level"] == d["severity"]
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == artifact_uri(d["file"])
        assert physical["region"] == {
            "startLine": max(d["line"], 1),
            "startColumn": max(d["col"], 1),
        }
        assert d["message"] in result["message"]["text"]


def test_valid_files_give_an_empty_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["validate", "-f", "sarif", str(EXAMPLES)], capsys)
    assert code == 0, err
    log = json.loads(out)
    assert_valid_sarif(log)
    assert log["version"] == "2.1.0" and log["runs"][0]["results"] == []
    assert len(log["runs"][0]["artifacts"]) == len(list(EXAMPLES.glob("*.yaml")))


def test_relative_paths_stay_relative_for_the_checkout(tmp_path: Path) -> None:
    sub = tmp_path / "my flows"
    sub.mkdir()
    shutil.copy(INVALID / "schema_misspelt_dependencies.yaml", sub / "bad.yaml")
    run = wfctl(["validate", "--format", "sarif", "my flows"], tmp_path)
    assert run.rc == 2, run
    log = json.loads(run.stdout)
    assert_valid_sarif(log)
    [result] = log["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "my%20flows/bad.yaml"
    assert run.stderr == ""  # stdout is the whole SARIF file, for upload-sarif


def test_absolute_paths_become_file_uris(capsys: pytest.CaptureFixture[str]) -> None:
    path = INVALID / "schema_misspelt_dependencies.yaml"
    code, out, _ = run_cli(["validate", "-f", "sarif", str(path)], capsys)
    assert code == 2
    log = json.loads(out)
    assert_valid_sarif(log)
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri["uri"] == path.as_uri()


def test_file_level_problems_point_at_line_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["validate", "-f", "sarif", "no/such/file.yaml"], capsys)
    assert code == 2
    log = json.loads(out)
    assert_valid_sarif(log)
    [result] = log["runs"][0]["results"]
    assert result["ruleId"] == "not-found"
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] >= 1 and region["startColumn"] >= 1
