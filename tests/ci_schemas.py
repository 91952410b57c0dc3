"""The published schemas CI files are checked against: the Jenkins/Ant JUnit XSD (lxml)
and the official SARIF 2.1.0 JSON Schema (jsonschema). Both are vendored unchanged under
tests/data/ (their READMEs name the source)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from cli_helpers import ROOT
from jsonschema import Draft4Validator
from lxml import etree

JUNIT_XSD = ROOT / "tests" / "data" / "junit" / "junit-10.xsd"
SARIF_SCHEMA = ROOT / "tests" / "data" / "sarif" / "sarif-schema-2.1.0.json"


@functools.cache
def junit_schema() -> etree.XMLSchema:
    """The Jenkins JUnit XSD, parsed once."""
    return etree.XMLSchema(etree.parse(str(JUNIT_XSD)))


def assert_valid_junit(path: Path) -> etree._ElementTree:
    """Fail unless `path` is well-formed XML valid against the Jenkins JUnit XSD; the tree."""
    tree = etree.parse(str(path))  # raises XMLSyntaxError on control characters
    schema = junit_schema()
    assert schema.validate(tree), f"{path} is not valid JUnit:\n{schema.error_log}"
    return tree


@functools.cache
def _sarif_validator() -> Draft4Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)


def assert_valid_sarif(log: dict[str, Any]) -> None:
    """Fail listing every place `log` does not match the SARIF 2.1.0 schema."""
    errors = sorted(_sarif_validator().iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "not valid SARIF 2.1.0:\n" + "\n".join(
        f"  {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors
    )
