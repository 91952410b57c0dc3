"""JUnit for the CI gate: `wfctl validate --junit FILE` (a testcase per file, a failure
per problem) and `wfctl run --junit` given an invalid workflow; every file is checked
against the Jenkins/Ant JUnit XSD and read back with junitparser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ci_schemas import assert_valid_junit
from cli_helpers import DATA, EXAMPLES, ROOT, wfctl
from junitparser import Failure, JUnitXml

INVALID = ROOT / "tests" / "data" / "invalid"


def cases(path: Path) -> tuple[Any, dict[str, Any]]:
    assert_valid_junit(path)
    [suite] = list(JUnitXml.fromfile(str(path)))
    return suite, {c.name: c for c in suite}


def test_validate_junit_has_a_case_per_file_and_a_failure_per_problem(tmp_path: Path) -> None:
    for name in ("mixed_several_problems.yaml", "schema_misspelt_dependencies.yaml"):
        shutil.copy(INVALID / name, tmp_path / name)
    shutil.copy(EXAMPLES / "release.yaml", tmp_path / "release.yaml")
    text = wfctl(["validate", ".", "--format", "json"], tmp_path)
    run = wfctl(["validate", ".", "--junit", "out/validate.xml"], tmp_path)
    assert run.rc == 2, run
    expected = {f["file"]: f["diagnostics"] for f in json.loads(text.stdout)["files"]}
    suite, by_file = cases(tmp_path / "out" / "validate.xml")
    assert suite.name == "wfctl validate"
    assert sorted(by_file) == sorted(expected) and len(by_file) == 3
    assert (suite.tests, suite.failures, suite.errors) == (3, 2, 0)
    for file, diagnostics in expected.items():
        case = by_file[file]
        assert case.classname == "wfctl.validate"
        failures = [r for r in case.result if isinstance(r, Failure)]
        assert len(failures) == len(diagnostics)
        for failure, d in zip(failures, diagnostics, strict=True):
            assert failure.type == d["code"]
            assert failure.message.startswith(f"{d['file']}:{d['line']}:{d['col']} ")
            assert d["message"] in failure.message
            if d["hint"]:
                assert f"hint: {d['hint']}" in (failure.text or "")
    [valid] = [f for f, diagnostics in expected.items() if not diagnostics]
    assert valid.endswith("release.yaml") and by_file[valid].is_passed


def test_validate_junit_when_everything_is_valid(tmp_path: Path) -> None:
    run = wfctl(["validate", str(EXAMPLES), "--junit", "v.xml"], tmp_path)
    assert run.rc == 0, run
    suite, by_file = cases(tmp_path / "v.xml")
    assert suite.failures == 0 and len(by_file) == len(list(EXAMPLES.glob("*.yaml")))
    assert all(c.is_passed for c in by_file.values())


def test_validate_junit_to_an_unwritable_place_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    run = wfctl(["validate", str(EXAMPLES / "release.yaml"), "--junit", "file/v.xml"], tmp_path)
    assert run.rc == 2, run
    assert run.stderr.startswith("error: --junit file/v.xml: "), run
    assert "Traceback" not in run.stderr


def test_run_junit_of_an_invalid_workflow_names_each_problem(tmp_path: Path) -> None:
    shutil.copy(DATA / "invalid.yaml", tmp_path / "invalid.yaml")
    run = wfctl(["run", "invalid.yaml", "--junit", "reports/junit.xml"], tmp_path)
    assert run.rc == 2, run
    assert "nothing was run" in run.stderr
    assert not (tmp_path / "ran.marker").exists()
    suite, by_file = cases(tmp_path / "reports" / "junit.xml")
    assert suite.name == "wfctl run invalid.yaml"
    [failure] = by_file["invalid.yaml"].result
    assert isinstance(failure, Failure) and failure.type == "schema"
    assert failure.message.startswith("invalid.yaml:9:5 steps[1].dependancies: unknown key")
    assert "hint: did you mean 'dependencies'?" in (failure.text or "")


def test_run_junit_of_a_valid_workflow_is_not_written_before_the_run(tmp_path: Path) -> None:
    # Preflight problems other than the workflow itself write no JUnit (nothing to report).
    shutil.copy(DATA / "inputs.yaml", tmp_path / "inputs.yaml")
    run = wfctl(["run", "inputs.yaml", "--junit", "j.xml"], tmp_path)  # `who` is missing
    assert run.rc == 2, run
    assert not (tmp_path / "j.xml").exists()
