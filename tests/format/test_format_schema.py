"""wfctl.format.schema: the helpers that read defaults and enums from the schema."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wfctl.format import schema


def test_default_at_a_pointer() -> None:
    assert schema.default("/properties/timeout") == 3600
    assert schema.default("/properties/max_parallel_steps") == 10
    assert schema.default("/$defs/retry_policy/properties/backoff") == "exponential"
    assert schema.default("/$defs/react_tool/properties/parameters") == {"type": "object"}


def test_default_returns_fresh_containers() -> None:
    first = schema.default("/$defs/retry_policy/properties/retry_on")
    first.append("validation")
    assert "validation" not in schema.default("/$defs/retry_policy/properties/retry_on")
    assert (
        "validation"
        not in schema.load_schema()["$defs"]["retry_policy"]["properties"]["retry_on"]["default"]
    )


def test_a_field_without_default_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="has no default"):
        schema.default("/properties/name")
    with pytest.raises(KeyError):
        schema.default("/properties/no_such_field")


def test_enum_of_a_field_and_of_list_items() -> None:
    assert schema.enum("/$defs/human_approval_with/properties/on_timeout") == ("reject", "approve")
    assert "timeout" in schema.enum("/$defs/retry_policy/properties/retry_on")
    with pytest.raises(KeyError, match="has no enum"):
        schema.enum("/properties/timeout")


def test_resolve_follows_rfc_6901() -> None:
    doc = {"a/b": {"m~n": [10, 20]}}
    assert schema.resolve(doc, "") is doc
    assert schema.resolve(doc, "/a~1b/m~0n/1") == 20


def test_node_is_cached() -> None:
    assert schema.node("/$defs/step") is schema.node("/$defs/step")


def test_the_schema_helpers_stay_light() -> None:
    code = (
        "import sys; import wfctl.format.schema as s; s.default('/properties/timeout'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jsonschema', 'yaml', 'jinja2', 'anyio', 'httpx', 'langgraph')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
