"""docs/FORMAT.md's generated tables agree with the schema and the code registry; the
schema's enums agree with ErrorKind and the model."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wfctl.format import docs
from wfctl.format.codes import CODES
from wfctl.format.error_kinds import NEVER_RETRIED, ErrorKind
from wfctl.format.schema import enum, load_schema, resolve

FORMAT_MD = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"


def test_format_md_is_up_to_date() -> None:
    text = FORMAT_MD.read_text(encoding="utf-8")
    assert docs.render(text) == text, "docs/FORMAT.md drifted: run python -m wfctl.format.docs"


def test_format_md_is_the_file_the_generator_writes() -> None:
    assert docs.format_md_path() == FORMAT_MD


def test_a_schema_change_shows_as_drift() -> None:
    text = FORMAT_MD.read_text(encoding="utf-8")
    schema = copy.deepcopy(load_schema())
    field = schema["$defs"]["retry_policy"]["properties"]["max_attempts"]
    field["default"] = 7
    field["description"] = "Changed."
    changed = docs.render(text, schema)
    assert changed != text
    assert "| `max_attempts` | integer >= 1 | `7` | Changed. |" in changed


def test_prose_outside_the_markers_is_kept() -> None:
    text = FORMAT_MD.read_text(encoding="utf-8")
    rendered = docs.render(text.replace("### Trigger rules", "### Trigger rules (edited)"))
    assert "### Trigger rules (edited)" in rendered


def test_every_table_and_every_code_is_on_the_page() -> None:
    text = FORMAT_MD.read_text(encoding="utf-8")
    for name in [*docs.TABLES, "types", "codes"]:
        assert f"<!-- BEGIN GENERATED: {name} -->" in text, name
    for code in CODES:
        assert f"| `{code}` |" in text, code


def test_a_missing_or_unknown_section_is_an_error() -> None:
    with pytest.raises(ValueError, match="no generated section for"):
        docs.render("# nothing generated here\n")
    text = FORMAT_MD.read_text(encoding="utf-8")
    bogus = text + "\n<!-- BEGIN GENERATED: bogus -->\n<!-- END GENERATED: bogus -->\n"
    with pytest.raises(ValueError, match="unknown generated section 'bogus'"):
        docs.render(bogus)


def test_check_exits_1_on_drift_and_the_rewrite_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "FORMAT.md"
    fresh = FORMAT_MD.read_text(encoding="utf-8")
    page.write_text(fresh.replace("| `max_attempts` |", "| `max_tries` |"), encoding="utf-8")
    assert docs.main(["--check", str(page)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert docs.main([str(page)]) == 0
    assert page.read_text(encoding="utf-8") == fresh
    assert docs.main(["--check", str(page)]) == 0


def test_object_table_rendering() -> None:
    table = docs.render_object(load_schema(), "/$defs/circuit_breaker")
    assert table.splitlines() == [
        "| field | type | default | description |",
        "|---|---|---|---|",
        "| `failure_threshold` | integer >= 1 | `5` | Consecutive failures that open the "
        "circuit. |",
        "| `reset_timeout` | Duration | `30` | Seconds the circuit stays open before a trial "
        "call is let through. |",
    ]


def _fields(node: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    """(pointer, schema) of every field of every object in the schema, skipping the
    `if`/`then` subschemas that only restate fields to constrain them."""
    if isinstance(node, dict):
        for name, field in node.get("properties", {}).items():
            yield f"{pointer}/properties/{name}", field
        for key, child in node.items():
            if key not in ("if", "then", "else"):
                yield from _fields(child, f"{pointer}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _fields(child, f"{pointer}/{i}")


def test_every_field_has_a_description() -> None:
    missing = [p for p, field in _fields(load_schema()) if not field.get("description")]
    assert not missing, missing


def test_every_named_type_has_a_title_and_description() -> None:
    defs = load_schema()["$defs"]
    for name in docs.TYPES:
        assert defs[name].get("title") and defs[name].get("description"), name
    for pointer in docs.TABLES.values():
        if pointer:
            assert resolve(load_schema(), pointer).get("properties"), pointer


# ------------------------------------------------------------- error kinds and the model


def test_retry_on_and_fail_kind_are_error_kinds() -> None:
    kinds = {kind.value for kind in ErrorKind}
    retry_on = set(enum("/$defs/retry_policy/properties/retry_on"))
    fail_kind = set(enum("/$defs/fail_with/properties/kind"))
    assert retry_on <= kinds, retry_on - kinds
    assert fail_kind <= kinds, fail_kind - kinds
    assert not retry_on & {kind.value for kind in NEVER_RETRIED}


def test_the_models_default_retry_on_is_in_the_schema() -> None:
    from wfctl.model import RetryPolicy

    schema_retry_on = set(enum("/$defs/retry_policy/properties/retry_on"))
    model_default = set(RetryPolicy().retry_on)
    assert model_default <= schema_retry_on, model_default - schema_retry_on
    retry_on = load_schema()["$defs"]["retry_policy"]["properties"]["retry_on"]
    assert set(retry_on["default"]) == model_default


def test_the_models_enums_are_the_schemas() -> None:
    from wfctl.model import Backoff, StepType, TriggerRule

    pairs = [
        (StepType, "/$defs/step/properties/step_type"),
        (TriggerRule, "/$defs/step/properties/trigger_rule"),
        (Backoff, "/$defs/retry_policy/properties/backoff"),
    ]
    for kind, pointer in pairs:
        assert {member.value for member in kind} == set(enum(pointer)), pointer
