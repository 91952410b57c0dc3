"""JUnit XML documents written with junitparser, valid against the Jenkins/Ant schema.

Callers describe suites of cases in plain data; this module is the only one that knows
the XML: text is cleaned of what XML 1.0 cannot hold (terminal escapes, control
characters), times are plain decimals (the schema's SUREFIRE_TIME has no exponent), and
the file is replaced in one step so a CI job never reads half of it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite
from junitparser.junitparser import FinalResult

from wfctl.report.tail import plain_text

# What XML 1.0 allows besides tab/LF/CR: no surrogates, no U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """`text` as XML 1.0 can carry it: terminal escapes and control characters (CR too)
    removed, tab and newline kept."""
    return _NOT_XML.sub("", plain_text(text))


@dataclass(frozen=True)
class Problem:
    """One `<failure>` (or `<error>` when `error`) of a case."""

    message: str
    type: str
    text: str = ""
    error: bool = False


@dataclass(frozen=True)
class Case:
    """One `<testcase>`: failures, or a skip reason, and the captured output."""

    name: str
    classname: str
    time: float = 0.0
    problems: Sequence[Problem] = ()
    skipped: str | None = None
    stdout: str | None = None
    stderr: str | None = None


@dataclass(frozen=True)
class Suite:
    """One `<testsuite>`; `time` None sums the cases."""

    name: str
    cases: Sequence[Case] = field(default_factory=tuple)
    time: float | None = None
    timestamp: str | None = None


def _seconds(value: float | None) -> float:
    # A plain decimal: junitparser writes str(float), and round() keeps it out of the
    # exponent form (1e-05) that SUREFIRE_TIME rejects. Negative clock steps count as 0.
    return round(max(value or 0.0, 0.0), 3)


def _case(c: Case) -> TestCase:
    case = TestCase(xml_text(c.name), xml_text(c.classname), _seconds(c.time))
    results: list[FinalResult] = []
    for p in c.problems:
        result = (Error if p.error else Failure)(xml_text(p.message), xml_text(p.type))
        if p.text:
            result.text = xml_text(p.text)
        results.append(result)
    if c.skipped is not None:
        results.append(Skipped(xml_text(c.skipped)))
    if results:
        case.result = results
    if c.stdout:
        case.system_out = xml_text(c.stdout)
    if c.stderr:
        case.system_err = xml_text(c.stderr)
    return case


def _kind(c: Case) -> str:
    """What a case counts as: a failure wins over an error, either over a skip."""
    if any(not p.error for p in c.problems):
        return "failure"
    if c.problems:
        return "error"
    return "skipped" if c.skipped is not None else "passed"


def _suite(s: Suite) -> TestSuite:
    suite = TestSuite(xml_text(s.name))
    suite.add_testcases([_case(c) for c in s.cases])
    # Counted per test case, as Ant and Surefire do (junitparser counts each element,
    # and a file with three problems is one failed case).
    kinds = [_kind(c) for c in s.cases]
    suite.failures, suite.errors = kinds.count("failure"), kinds.count("error")
    suite.skipped = kinds.count("skipped")
    if s.time is not None:
        suite.time = _seconds(s.time)
    if s.timestamp:
        suite.timestamp = s.timestamp
    return suite


def junit_bytes(suites: Sequence[Suite]) -> bytes:
    """The JUnit XML document (UTF-8, with declaration) for `suites`."""
    xml = JUnitXml()
    for s in suites:
        xml.add_testsuite(_suite(s))
    buffer = io.BytesIO()
    xml.write(buffer)
    return buffer.getvalue()


def write_suites(path: Path, suites: Sequence[Suite]) -> None:
    """Write `suites` to `path` as one JUnit XML file (`write_output`: atomically to a
    regular file, through to /dev/stdout; a symlink or FIFO refused)."""
    from wfctl.format.output_file import write_output

    path.parent.mkdir(parents=True, exist_ok=True)
    write_output(path, junit_bytes(suites))
