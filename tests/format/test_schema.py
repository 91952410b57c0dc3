"""The published workflow schema and the example workflows that must validate against it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "schemas" / "workflow.schema.json"
WORKFLOWS = sorted((ROOT / "workflows").glob("*.yaml"))
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)

HEADER = "# yaml-language-server: $schema=../schemas/workflow.schema.json"

# Subschemas under these keywords refine or test a schema declared elsewhere (if/then/else
# clauses, `not`, `contains`); they declare no properties of their own.
REFINEMENTS = {"if", "then", "else", "not", "contains"}

# Object schemas whose keys belong to the user, not to us: no additionalProperties needed.
FREE_FORM = {
    "/properties/global_variables",  # initial vars: any names and values
    "/properties/inputs/additionalProperties",  # the user's JSON Schema of one input
    "/$defs/user_schema",  # the user's JSON Schemas (input_validation, output_schema, ...)
    "/$defs/step/properties/with",  # any action; built-ins are checked by builtin_action_with
    "/$defs/agent/properties/with",
    "/$defs/react_tool/properties/with",
    "/$defs/python_with/properties/kwargs",  # keyword arguments of the user's function
    "/$defs/set_with/properties/values",  # the user's variables
}


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _declarations(schema: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema that declares something (refinement clauses excluded), with its pointer."""
    if not isinstance(schema, dict):
        return
    yield pointer, schema
    for key, value in schema.items():
        if key in REFINEMENTS:
            continue
        if key in ("properties", "$defs", "patternProperties"):
            for name, sub in value.items():
                yield from _declarations(sub, f"{pointer}/{key}/{_escape(name)}")
        elif key in ("items", "additionalProperties", "propertyNames"):
            yield from _declarations(value, f"{pointer}/{key}")
        elif key in ("allOf", "anyOf", "oneOf", "prefixItems"):
            for i, sub in enumerate(value):
                yield from _declarations(sub, f"{pointer}/{key}/{i}")


def _is_object_schema(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind)


def _errors(instance: Any) -> list[tuple[list[Any], str]]:
    return sorted(
        ((list(e.absolute_path), str(e.validator)) for e in VALIDATOR.iter_errors(instance)),
        key=repr,
    )


# -- the schema itself ------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] == "https://wfctl.dev/schemas/workflow.schema.json"
    assert SCHEMA["title"]
    assert SCHEMA["description"]


def test_reusable_definitions_exist() -> None:
    expected = {
        "id",
        "duration",
        "expression",
        "retry_policy",
        "circuit_breaker",
        "sla_targets",
        "agent",
        "step",
        "condition_branch",
        "shell_with",
        "python_with",
        "http_with",
        "noop_with",
        "set_with",
        "sleep_with",
        "fail_with",
        "human_approval_with",
        "react_with",
        "react_tool",
    }
    assert expected <= set(SCHEMA["$defs"])


def test_every_property_and_definition_has_title_and_description() -> None:
    missing = []
    for pointer, schema in _declarations(SCHEMA):
        parts = pointer.split("/")
        is_named = pointer == "" or (len(parts) >= 2 and parts[-2] in ("properties", "$defs"))
        if is_named and not (schema.get("title") and schema.get("description")):
            missing.append(pointer or "/")
    assert not missing, f"missing title or description at: {missing}"


def test_every_object_we_own_rejects_unknown_keys() -> None:
    problems = []
    seen = set()
    for pointer, schema in _declarations(SCHEMA):
        if not _is_object_schema(schema) or pointer in FREE_FORM:
            continue
        seen.add(pointer)
        if "properties" in schema:
            if schema.get("additionalProperties") is not False:
                problems.append(f"{pointer}: record without additionalProperties: false")
        elif "additionalProperties" not in schema:
            problems.append(f"{pointer}: map without a schema for its values")
    assert not problems, "\n".join(problems)
    # The allowlist must not name places that no longer exist (or it hides nothing).
    stale = {p for p in FREE_FORM if not any(p == q for q, _ in _declarations(SCHEMA))}
    assert not stale, f"stale FREE_FORM entries: {stale}"
    assert len(seen) > 20


def test_defaults_validate_against_their_own_schema() -> None:
    for pointer, schema in _declarations(SCHEMA):
        if "default" not in schema:
            continue
        standalone = {k: v for k, v in schema.items() if k != "$defs"}
        standalone["$defs"] = SCHEMA["$defs"]
        errors = list(Draft202012Validator(standalone).iter_errors(schema["default"]))
        assert not errors, f"{pointer}: default {schema['default']!r}: {errors[0].message}"


# -- example workflows ----------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _walk_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        yield from _walk_steps(step.get("parallel_steps", []))


def test_there_are_enough_examples() -> None:
    assert len(WORKFLOWS) >= 6


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_example_starts_with_schema_line_and_purpose(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER
    assert lines[1].startswith("# Purpose: ") and len(lines[1]) > len("# Purpose: ") + 10


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_example_validates(path: Path) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in VALIDATOR.iter_errors(_load(path))
    ]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_example_references_are_consistent(path: Path) -> None:
    """A light version of the semantic checks, so the examples stay coherent."""
    data = _load(path)
    steps = list(_walk_steps(data["steps"]))
    ids = [s["step_id"] for s in steps]
    assert len(ids) == len(set(ids)), "duplicate step ids"
    handlers = set()
    for step in steps:
        refs = [*step.get("dependencies", []), *step.get("next_steps", [])]
        refs += [t for b in step.get("conditions", []) for t in b["next_steps"]]
        handlers.update(step.get("error_handlers", []), step.get("rollback_actions", []))
        assert set(refs) <= set(ids), f"{step['step_id']} names unknown steps"
    assert handlers <= set(ids)
    for step in steps:
        if step["step_id"] in handlers:
            assert not step.get("dependencies"), f"handler {step['step_id']} has dependencies"
    capabilities = {c for a in data.get("agents", []) for c in a["capabilities"]}
    for step in steps:
        if "agent_capability" in step:
            assert step["agent_capability"] in capabilities


def test_examples_together_use_every_feature() -> None:
    step_types: set[str] = set()
    actions: set[str] = set()
    trigger_rules: set[str] = set()
    step_fields: set[str] = set()
    workflow_fields: set[str] = set()
    for path in WORKFLOWS:
        data = _load(path)
        workflow_fields.update(data)
        for agent in data.get("agents", []):
            if "action" in agent:
                actions.add(agent["action"])
        for step in _walk_steps(data["steps"]):
            step_fields.update(step)
            step_types.add(step.get("step_type", "action"))
            if "action" in step:
                actions.add(step["action"])
            if "trigger_rule" in step:
                trigger_rules.add(step["trigger_rule"])
            for tool in step.get("with", {}).get("tools", []):
                if "action" in tool:
                    actions.add(tool["action"])
    step_type_enum = SCHEMA["$defs"]["step"]["properties"]["step_type"]["enum"]
    trigger_enum = SCHEMA["$defs"]["step"]["properties"]["trigger_rule"]["enum"]
    assert step_types == set(step_type_enum)
    assert {"shell", "python", "http", "noop", "set", "sleep", "fail"} <= actions
    assert trigger_rules == set(trigger_enum)
    assert {
        "for_each",
        "loop_condition",
        "loop_max_iterations",
        "loop_delay",
        "loop_concurrency",
        "rollback_actions",
        "error_handlers",
        "agent_capability",
        "custom_metrics",
        "input_mapping",
        "input_validation",
        "output_mapping",
        "when",
        "conditions",
        "parallel_steps",
        "retry_policy",
        "timeout",
    } <= step_fields
    assert {
        "inputs",
        "global_variables",
        "secrets",
        "timeout",
        "max_parallel_steps",
        "retry_policy",
        "circuit_breaker",
        "sla_targets",
        "agents",
    } <= workflow_fields


# -- what the schema accepts and rejects --------------------------------------------


def _wf(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"workflow_id": "demo", "name": "Demo", "steps": list(steps), **top}


SHELL = {"step_id": "a", "action": "shell", "with": {"command": "echo hi"}}


def _step(**fields: Any) -> dict[str, Any]:
    return {"step_id": "a", **fields}


VALID_CASES = {
    "minimal": _wf(SHELL),
    "argv command": _wf(_step(action="shell", with_={"command": ["echo", "hi"]})),
    "templated numbers": _wf(
        _step(action="sleep", with_={"seconds": "{{ inputs.delay }}"}),
        _step(
            step_id="b",
            action="shell",
            with_={"command": "exit 3", "ok_exit_codes": ["{{ inputs.code }}", 0]},
        ),
        _step(
            step_id="c",
            action="http",
            with_={"url": "{{ inputs.url }}", "expected_status": 204, "timeout": "{{ vars.t }}"},
        ),
    ),
    "third-party action takes any with": _wf(
        _step(action="acme.deploy", with_={"anything": {"goes": [1, 2]}})
    ),
    "capability instead of action": _wf(_step(agent_capability="summarize")),
    "react routed to an agent needs no model": _wf(
        _step(step_type="react", agent_capability="research", with_={"prompt": "Go"})
    ),
    "else branch last": _wf(
        _step(
            step_type="conditional",
            conditions=[{"when": "inputs.x", "next_steps": ["b"]}, {"next_steps": ["c"]}],
        )
    ),
    "loop with for_each expression": _wf(
        _step(step_type="loop", action="noop", for_each="inputs.items", loop_concurrency=2)
    ),
    "user schemas are free-form": _wf(
        _step(action="noop", input_validation={"type": "object", "x-custom": 1}),
        inputs={"token": {"type": "string", "secret": True}, "anything": True},
        global_variables={"nested": {"free": ["form"]}},
    ),
    "agent with a model only": _wf(
        SHELL, agents=[{"name": "llm", "capabilities": ["research"], "model": "openai:gpt-4o"}]
    ),
    "retry policy per-step fields at workflow level": _wf(
        SHELL, retry_policy={"continue_on_failure": True, "parallel_failure_threshold": 0.5}
    ),
    "workflows of the file, called by #name": _wf(
        _step(uses="#deploy", with_={"target": "prod"}),
        {"step_id": "b", "uses": "./lib/x.yaml", "step_type": "workflow"},
        workflows={
            "deploy": {
                "description": "Deploy one target",
                "inputs": {"target": {"type": "string"}},
                "global_variables": {"region": "eu"},
                "retry_policy": {"max_attempts": 2},
                "outputs": {"url": "https://{{ inputs.target }}"},
                "steps": [SHELL, {"step_id": "again", "uses": "#deploy", "when": "false"}],
                "on_exit": [{**SHELL, "step_id": "z"}],
            }
        },
    ),
}


def _fix_with(doc: dict[str, Any]) -> dict[str, Any]:
    """`with` is a Python keyword: the cases above spell it `with_`."""
    doc = copy.deepcopy(doc)
    for step in _walk_steps(doc["steps"]):
        if "with_" in step:
            step["with"] = step.pop("with_")
    return doc


@pytest.mark.parametrize("doc", VALID_CASES.values(), ids=list(VALID_CASES))
def test_schema_accepts(doc: dict[str, Any]) -> None:
    assert _errors(_fix_with(doc)) == []


# (document, [(absolute_path, validator keyword), ...]): exactly these errors, nothing else.
INVALID_CASES: dict[str, tuple[dict[str, Any], list[tuple[list[Any], str]]]] = {
    "unknown top-level key": (_wf(SHELL, stepz=[]), [([], "additionalProperties")]),
    "unknown step key": (
        _wf({**SHELL, "depends_on": ["x"]}),
        [(["steps", 0], "additionalProperties")],
    ),
    "unknown retry_policy key": (
        _wf({**SHELL, "retry_policy": {"max_retries": 3}}),
        [(["steps", 0, "retry_policy"], "additionalProperties")],
    ),
    "unknown key in shell with": (
        _wf(_step(action="shell", with_={"command": "ls", "cmd": "ls"})),
        [(["steps", 0, "with"], "additionalProperties")],
    ),
    "unknown key in nested parallel child": (
        _wf(_step(step_type="parallel", parallel_steps=[{**SHELL, "step_id": "b", "x": 1}])),
        [(["steps", 0, "parallel_steps", 0], "additionalProperties")],
    ),
    "max_attempts 0": (
        _wf({**SHELL, "retry_policy": {"max_attempts": 0}}),
        [(["steps", 0, "retry_policy", "max_attempts"], "minimum")],
    ),
    "workflow max_attempts 0": (
        _wf(SHELL, retry_policy={"max_attempts": 0}),
        [(["retry_policy", "max_attempts"], "minimum")],
    ),
    "parallel without parallel_steps": (
        _wf(_step(step_type="parallel")),
        [(["steps", 0], "required")],
    ),
    "parallel_steps on an action step": (
        _wf({**SHELL, "parallel_steps": [{**SHELL, "step_id": "b"}]}),
        [(["steps", 0], "not")],
    ),
    "action and agent_capability": (
        _wf({**SHELL, "agent_capability": "summarize"}),
        [(["steps", 0], "not")],
    ),
    "neither action nor agent_capability": (
        _wf(_step(name="nothing to run")),
        [(["steps", 0], "required")],
    ),
    "bad step_type": (
        _wf({**SHELL, "step_type": "paralel"}),
        [(["steps", 0, "step_type"], "enum")],
    ),
    "bad step id": (
        _wf({**SHELL, "step_id": "1st step"}),
        [(["steps", 0, "step_id"], "pattern")],
    ),
    "bad workflow id": (
        {**_wf(SHELL), "workflow_id": "my workflow"},
        [(["workflow_id"], "pattern")],
    ),
    "lowercase http method": (
        _wf(_step(action="http", with_={"url": "http://x", "method": "get"})),
        [(["steps", 0, "with", "method"], "enum")],
    ),
    "unknown http method": (
        _wf(_step(action="http", with_={"url": "http://x", "method": "FETCH"})),
        [(["steps", 0, "with", "method"], "enum")],
    ),
    "http json and body": (
        _wf(_step(action="http", with_={"url": "http://x", "json": {}, "body": "x"})),
        [(["steps", 0, "with"], "not")],
    ),
    "status code out of range": (
        _wf(_step(action="http", with_={"url": "http://x", "expected_status": [200, 99]})),
        [(["steps", 0, "with", "expected_status", 1], "minimum")],
    ),
    "branch without next_steps": (
        _wf(_step(step_type="conditional", conditions=[{"when": "inputs.x"}])),
        [(["steps", 0, "conditions", 0], "required")],
    ),
    "two else branches": (
        _wf(
            _step(
                step_type="conditional",
                conditions=[{"next_steps": ["b"]}, {"next_steps": ["c"]}],
            )
        ),
        [(["steps", 0, "conditions"], "maxContains")],
    ),
    "shell without command": (
        _wf(_step(action="shell", with_={"env": {"A": "1"}})),
        [(["steps", 0, "with"], "required")],
    ),
    "shell without with": (_wf(_step(action="shell")), [(["steps", 0], "required")]),
    "sleep seconds not a number nor a template": (
        _wf(_step(action="sleep", with_={"seconds": "soon"})),
        [(["steps", 0, "with", "seconds"], "pattern")],
    ),
    "negative sleep": (
        _wf(_step(action="sleep", with_={"seconds": -1})),
        [(["steps", 0, "with", "seconds"], "minimum")],
    ),
    "bad python function": (
        _wf(_step(action="python", with_={"function": "json.dumps"})),
        [(["steps", 0, "with", "function"], "pattern")],
    ),
    "loop without condition or for_each": (
        _wf(_step(step_type="loop", action="noop")),
        [(["steps", 0], "required")],
    ),
    "loop_condition on an action step": (
        _wf({**SHELL, "loop_condition": "true"}),
        [(["steps", 0], "not")],
    ),
    "react without model": (
        _wf(_step(step_type="react", with_={"prompt": "Go"})),
        [(["steps", 0, "with"], "required")],
    ),
    "human approval with a bad on_timeout": (
        _wf(_step(step_type="human_approval", with_={"message": "ok?", "on_timeout": "skip"})),
        [(["steps", 0, "with", "on_timeout"], "enum")],
    ),
    "agent without action or model": (
        _wf(SHELL, agents=[{"name": "bot", "capabilities": ["x"]}]),
        [(["agents", 0], "required")],
    ),
    "secret env var name": (
        _wf(SHELL, secrets={"token": "MY-TOKEN"}),
        [(["secrets", "token"], "pattern")],
    ),
    "validation errors are never retried": (
        _wf(SHELL, retry_policy={"retry_on": ["timeout", "validation"]}),
        [(["retry_policy", "retry_on", 1], "enum")],
    ),
    "unquoted version": (_wf(SHELL, version=1.2), [(["version"], "type")]),
    "zero workflow timeout": (_wf(SHELL, timeout=0), [(["timeout"], "exclusiveMinimum")]),
    "no steps": (_wf(), [(["steps"], "minItems")]),
    "a workflow of `workflows:` without steps, or with a workflow_id": (
        _wf(SHELL, workflows={"a": {"inputs": {}}, "b": {"workflow_id": "b", "steps": [SHELL]}}),
        [(["workflows", "a"], "required"), (["workflows", "b"], "additionalProperties")],
    ),
    "a workflow name that is not an id, a uses that is neither #name nor a file": (
        _wf(_step(uses="#no way"), workflows={"no way": {"steps": [SHELL]}}),
        [(["steps", 0, "uses"], "pattern"), (["workflows"], "pattern")],
    ),
    "templated top-level number": (
        _wf(SHELL, max_parallel_steps="{{ inputs.n }}"),
        [(["max_parallel_steps"], "type")],
    ),
}


@pytest.mark.parametrize(("doc", "expected"), INVALID_CASES.values(), ids=list(INVALID_CASES))
def test_schema_rejects(doc: dict[str, Any], expected: list[tuple[list[Any], str]]) -> None:
    assert _errors(_fix_with(doc)) == sorted(expected, key=repr)
