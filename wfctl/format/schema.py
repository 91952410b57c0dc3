"""Where the published JSON Schemas live, and their cached validators."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # wfctl/


def schema_path(name: str = "workflow.schema.json") -> Path:
    """Path of a published schema: bundled in the wheel, or the repository's `schemas/`."""
    for candidate in (_PACKAGE_DIR / "_schemas" / name, _PACKAGE_DIR.parent / "schemas" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"schema {name} is not installed with wfctl")


@cache
def load_schema(name: str = "workflow.schema.json") -> dict[str, Any]:
    """The schema document as data (cached: read once per process)."""
    with schema_path(name).open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@cache
def validator_for(name: str = "workflow.schema.json") -> Any:
    """A Draft 2020-12 validator for a published schema, built once per process."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))
