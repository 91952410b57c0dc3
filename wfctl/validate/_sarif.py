"""Validation results as SARIF 2.1.0, the format GitHub code scanning uploads.

One run of the `wfctl` tool; a rule per diagnostic code that occurs (its meaning from
the code registry), a result per diagnostic with its file, line and column. File paths
stay relative to where wfctl ran (as given on the command line), so GitHub resolves
them against the checkout; absolute ones become `file:` URIs.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any, Final

from wfctl import __version__
from wfctl.format.codes import CODES
from wfctl.format.diagnostics import Diagnostic
from wfctl.validate.files import FileResult

SARIF_SCHEMA: Final = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)


def artifact_uri(file: str) -> str:
    """A file name as a SARIF artifact URI: a relative reference, or `file:` if absolute."""
    path = PurePath(file)
    if path.is_absolute():
        return path.as_uri()
    return urllib.parse.quote(path.as_posix())


def _rule(code: str) -> dict[str, Any]:
    meaning = CODES[code].meaning
    return {
        "id": code,
        "name": "".join(part.capitalize() for part in code.split("-")),
        "shortDescription": {"text": meaning},
        "help": {"text": f"{meaning} The codes are listed in docs/FORMAT.md."},
    }


def _message(d: Diagnostic) -> str:
    text = f"{d.path}: {d.message}" if d.path else d.message
    return text + (f" (hint: {d.hint})" if d.hint else "")


def _result(d: Diagnostic, rule_index: int) -> dict[str, Any]:
    return {
        "ruleId": d.code,
        "ruleIndex": rule_index,
        "level": "error" if d.severity.value == "error" else "warning",
        "message": {"text": _message(d)},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(d.file)},
                    # SARIF lines and columns start at 1; a file-level problem has 0.
                    "region": {"startLine": max(d.line, 1), "startColumn": max(d.col, 1)},
                }
            }
        ],
    }


def sarif_log(results: Sequence[FileResult]) -> dict[str, Any]:
    """The SARIF 2.1.0 log of `results` (one run, every diagnostic of every file)."""
    diagnostics = [d for r in results for d in r.diagnostics]
    codes = sorted({d.code for d in diagnostics})
    index = {code: i for i, code in enumerate(codes)}
    driver = {
        "name": "wfctl",
        "version": __version__,
        "rules": [_rule(code) for code in codes],
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "columnKind": "unicodeCodePoints",
                "artifacts": [{"location": {"uri": artifact_uri(r.file)}} for r in results],
                "results": [_result(d, index[d.code]) for d in diagnostics],
            }
        ],
    }
