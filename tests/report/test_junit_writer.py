"""The JUnit writer on its own: whatever a step writes, the file is valid against the
Jenkins/Ant XSD and reads back (junitparser, lxml) with the text a person should see."""

from __future__ import annotations

from pathlib import Path

import pytest
from ci_schemas import assert_valid_junit, junit_schema
from hypothesis import given, settings
from hypothesis import strategies as st
from junitparser import Error, Failure, JUnitXml, Skipped
from lxml import etree

from wfctl.report._junit_xml import Case, Problem, Suite, junit_bytes, write_suites, xml_text

NASTY = "\x1b[1;31mred\x1b[0m \x00nul \x01\x08\x0b\x0c\x7f\x9b \ud800 \ufffe tab\tend\r\n"


def read_back(path: Path) -> list[dict[str, object]]:
    assert_valid_junit(path)
    [suite] = list(JUnitXml.fromfile(str(path)))
    return [
        {"case": c, "results": c.result, "out": c.system_out, "err": c.system_err} for c in suite
    ]


def test_control_characters_and_escapes_are_removed_everywhere(tmp_path: Path) -> None:
    case = Case(
        name=f"step {NASTY}",
        classname=f"wf{NASTY}",
        time=0.25,
        problems=[Problem(f"failed: {NASTY}", f"kind{NASTY}", f"text {NASTY}")],
        stdout=f"out {NASTY}",
        stderr=f"err {NASTY}",
    )
    path = tmp_path / "junit.xml"
    write_suites(
        path, [Suite(f"suite {NASTY}", [case], time=1.5, timestamp="2026-01-01T00:00:00Z")]
    )
    [got] = read_back(path)
    clean = "red nul    tab\tend\n"
    assert got["case"].name == f"step {clean}"
    [failure] = got["results"]
    assert isinstance(failure, Failure)
    assert (failure.message, failure.type, failure.text) == (
        f"failed: {clean}",
        f"kind{clean}",
        f"text {clean}",
    )
    assert (got["out"], got["err"]) == (f"out {clean}", f"err {clean}")


def test_counts_times_and_result_kinds(tmp_path: Path) -> None:
    cases = [
        Case("ok", "wf", time=1e-05),  # would be written `1e-05` without rounding
        Case("bad", "wf", problems=[Problem("a", "t1"), Problem("b", "t2", error=True)]),
        Case("later", "wf", skipped="run failed"),
        Case("clock", "wf", time=-0.5),
    ]
    path = tmp_path / "deep" / "junit.xml"  # the directory is created
    write_suites(path, [Suite("wf", cases, time=12345.6789)])
    tree = assert_valid_junit(path)
    suite = tree.getroot()[0]
    assert suite.get("time") == "12345.679"
    # Counted per case: `bad` has a failure and an error, and is one failed case.
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "0")
    assert suite.get("skipped") == "1"
    assert [c.get("time") for c in suite] == ["0.0", "0.0", "0.0", "0.0"]
    got = {c["case"].name: c["results"] for c in read_back(path)}
    write_suites(path, [Suite("wf", [Case("e", "wf", problems=[Problem("x", "y", error=True)])])])
    assert assert_valid_junit(path).getroot()[0].get("errors") == "1"
    assert [type(r) for r in got["bad"]] == [Failure, Error]
    assert [type(r) for r in got["later"]] == [Skipped]


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text("x" * 100_000, encoding="utf-8")
    write_suites(path, [Suite("wf", [Case("a", "wf")])])
    assert_valid_junit(path)
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]  # no temporary left


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=80))
def test_any_text_makes_a_valid_document(text: str) -> None:
    data = junit_bytes(
        [
            Suite(
                text or "s",
                [
                    Case(
                        text or "c",
                        text,
                        problems=[Problem(text, text, text)],
                        stdout=text,
                        stderr=text,
                    )
                ],
            )
        ]
    )
    tree = etree.fromstring(data).getroottree()
    assert junit_schema().validate(tree), junit_schema().error_log
    assert "\x1b" not in xml_text(text)


@pytest.mark.parametrize("text", ["plain", "", "\t\n"])
def test_xml_text_keeps_ordinary_text(text: str) -> None:
    assert xml_text(text) == text
