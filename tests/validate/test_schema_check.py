"""JSON Schema errors as human messages: wording, position, hints, no cascades; and the
compiled fast validity check, which must agree with jsonschema."""

from __future__ import annotations

import copy
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from wfctl.document.loader import load_text
from wfctl.format.diagnostics import Diagnostic, WorkflowError
from wfctl.format.schema import load_schema
from wfctl.validate._fast_check import _Compiler, _Unsupported
from wfctl.validate._fast_check import json_equal as _json_equal
from wfctl.validate.schema_messages import (
    describe_value,
    did_you_mean,
    fast_is_valid,
    schema_diagnostics,
)

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.yaml"))
INVALID = sorted((ROOT / "tests" / "data" / "invalid").glob("*.yaml"))
HEADER = "workflow_id: w\nname: W\n"


def check(body: str) -> list[Diagnostic]:
    text = HEADER + textwrap.dedent(body).lstrip("\n")
    return schema_diagnostics(load_text(text, "w.yaml"))


def one(body: str) -> Diagnostic:
    found = check(body)
    assert len(found) == 1, [(d.line, d.col, d.path, d.message) for d in found]
    return found[0]


# -- helpers ---------------------------------------------------------------------------


def test_did_you_mean() -> None:
    assert did_you_mean("dependancies", ["dependencies", "next_steps"]) == (
        "did you mean 'dependencies'?"
    )
    assert did_you_mean("post", ["GET", "POST"]) == "did you mean 'POST'?"
    assert did_you_mean("zzz", ["dependencies"]) is None
    assert did_you_mean("x", []) is None


def test_describe_value() -> None:
    assert describe_value(0) == "0"
    assert describe_value(True) == "true"
    assert describe_value(None) == "null"
    assert describe_value("abc") == "'abc'"
    assert describe_value("x" * 50) == repr("x" * 37 + "...")
    assert describe_value({"a": 1}) == "a mapping"
    assert describe_value([1]) == "a list"


# -- messages and positions ----------------------------------------------------------


def test_bound_points_at_the_value() -> None:
    d = one(
        """
        steps:
          - step_id: a
            action: noop
            retry_policy:
              max_attempts: 0
        """
    )
    assert (d.line, d.col) == (7, 21)
    assert d.path == "steps[0].retry_policy.max_attempts"
    assert d.message == "must be >= 1 (got 0)"


def test_unknown_keys_each_reported_at_the_key() -> None:
    found = check(
        """
        steps:
          - step_id: a
            action: noop
            dependancies: []
            retyr_policy: {}
            zzz: 1
        """
    )
    got = {(d.line, d.col, d.message, d.hint) for d in found}
    assert got == {
        (6, 5, "unknown key 'dependancies'", "did you mean 'dependencies'?"),
        (7, 5, "unknown key 'retyr_policy'", "did you mean 'retry_policy'?"),
        (8, 5, "unknown key 'zzz'", None),
    }


def test_unknown_key_lists_the_allowed_keys_of_a_small_mapping() -> None:
    d = one(
        """
        circuit_breaker: {zzz: 1}
        steps: [{step_id: a, action: noop}]
        """
    )
    assert d.message == "unknown key 'zzz'"
    assert d.hint == "allowed keys: failure_threshold, reset_timeout"
    d = one("steps: [{step_id: a, action: noop, with: {x: 1}}]\n")
    assert d.hint == "the noop action takes no arguments"


def test_misspelt_required_key_is_one_problem() -> None:
    d = one(
        """
        stepz:
          - {step_id: a, action: noop}
        """
    )
    assert d.message == "unknown key 'stepz'"
    assert d.hint == "did you mean 'steps'?"
    d = one("steps: [{step_id: a, action: shell, with: {comand: ls}}]\n")
    assert d.message == "unknown key 'comand'"
    assert d.hint == "did you mean 'command'?"


def test_step_of_the_wrong_type_is_one_problem() -> None:
    # A string "step" also fails every if/then/not clause; only the type error is useful.
    d = one(
        """
        steps:
          - build
        """
    )
    assert (d.line, d.col, d.path) == (4, 5, "steps[0]")
    assert d.message == "must be a mapping (got 'build')"


def test_type_error_hints() -> None:
    d = one("version: 1.10\nsteps: [{step_id: a, action: noop}]\n")
    assert d.message == "must be a string (got 1.1)"
    assert d.hint == 'quote it: "1.10"'  # the text as written, not the float
    d = one('timeout: "30"\nsteps: [{step_id: a, action: noop}]\n')
    assert d.message == "must be a number (got '30')"
    assert d.hint == "remove the quotes to make it a number"


def test_null_value_points_at_its_key() -> None:
    d = one(
        """
        steps:
          - step_id: a
            action: noop
            retry_policy:
        """
    )
    assert (d.line, d.col) == (6, 5)
    assert d.message == "must be a mapping (got null)"


def test_enum_with_case_hint() -> None:
    d = one("steps: [{step_id: a, action: http, with: {url: 'http://x', method: get}}]\n")
    assert d.message.startswith("must be one of: GET, POST")
    assert d.message.endswith("(got 'get')")
    assert d.hint == "did you mean 'GET'?"


def test_template_or_number_message() -> None:
    d = one("steps: [{step_id: a, action: sleep, with: {seconds: soon}}]\n")
    assert d.message == "must be a number or a `{{ }}` template (got 'soon')"
    assert d.path == "steps[0].with.seconds"
    assert one("steps: [{step_id: a, action: sleep, with: {seconds: -1}}]\n").message == (
        "must be >= 0 (got -1)"
    )
    assert check("steps: [{step_id: a, action: sleep, with: {seconds: '{{ vars.s }}'}}]\n") == []


def test_pattern_uses_the_schema_title() -> None:
    d = one("steps: [{step_id: 'build app', action: noop}]\n")
    assert d.message == "'build app' is not a valid identifier"
    assert d.hint is not None and d.hint.startswith("A letter or _")


def test_property_names_point_at_the_key() -> None:
    d = one(
        """
        inputs:
          1st: {type: string}
        steps: [{step_id: a, action: noop}]
        """
    )
    assert (d.line, d.col) == (4, 3)
    assert d.path == "inputs.1st" or d.path == 'inputs["1st"]'
    assert d.message == "key '1st' is not a valid identifier"


def test_duplicate_list_item() -> None:
    d = one(
        """
        steps:
          - {step_id: a, action: noop}
          - {step_id: b, action: noop, dependencies: [a, a]}
        """
    )
    assert d.path == "steps[1].dependencies[1]"
    assert d.message == "'a' is listed more than once"
    assert (d.line, d.col) == (5, 50)


def test_not_clause_uses_its_description_and_points_at_the_key() -> None:
    d = one(
        """
        steps:
          - step_id: a
            action: noop
            agent_capability: x
        """
    )
    assert (d.line, d.col) == (6, 5)
    assert d.message == "'agent_capability' is not allowed here"
    assert d.hint == "A step runs either `action` or `agent_capability`, not both."
    d = one(
        """
        steps:
          - step_id: a
            step_type: parallel
            parallel_steps: [{step_id: b, action: noop}]
            loop_delay: 3
        """
    )
    assert d.message == "'loop_delay' is not allowed here"
    assert d.hint == "`loop_delay` needs `step_type: loop`."


@pytest.mark.parametrize(
    ("body", "message", "hint"),
    [
        (
            "steps: [{step_id: a, step_type: loop, action: noop}]",
            "needs 'loop_condition' or 'for_each'",
            "required when step_type is 'loop'",
        ),
        ("steps: [{step_id: a}]", "needs 'action' or 'agent_capability'", None),
        (
            "steps: [{step_id: a, step_type: human_approval}]",
            "missing required key 'with'",
            "required when step_type is 'human_approval'",
        ),
        (
            "steps: [{step_id: a, step_type: react, with: {prompt: hi}}]",
            "missing required key 'model'",
            "required when step_type is 'react' and there is no 'agent_capability'",
        ),
        (
            "agents: [{name: x, capabilities: [c]}]\nsteps: [{step_id: a, action: noop}]",
            "needs 'action' or 'model'",
            None,
        ),
        (
            "agents: [{name: x, capabilities: [c], model: 'a:b', with: {}}]\n"
            "steps: [{step_id: a, action: noop}]",
            "missing required key 'action'",
            "required when 'with' is set",
        ),
        (
            "steps: [{step_id: a, action: shell, with: {cwd: /tmp}}]",
            "missing required key 'command'",
            "required when action is 'shell'",
        ),
    ],
)
def test_conditional_requirements(body: str, message: str, hint: str | None) -> None:
    d = one(body + "\n")
    assert d.message == message
    assert d.hint == hint


def test_two_else_branches() -> None:
    d = one(
        """
        steps:
          - step_id: c
            step_type: conditional
            conditions:
              - next_steps: [a]
              - next_steps: [a]
          - {step_id: a, action: noop}
        """
    )
    assert d.path == "steps[0].conditions"
    assert d.message == "at most 1 item may leave out 'when'"


def test_nested_child_step_problem() -> None:
    d = one(
        """
        steps:
          - step_id: p
            step_type: parallel
            parallel_steps:
              - step_id: c
                action: noop
                retry_polcy: {}
        """
    )
    assert d.path == "steps[0].parallel_steps[0].retry_polcy"
    assert (d.line, d.col) == (9, 9)
    assert d.hint == "did you mean 'retry_policy'?"


def test_every_problem_is_reported() -> None:
    found = check(
        """
        timeout: -1
        max_parallel_steps: 0
        steps:
          - {step_id: a, action: noop, timeout: 0}
          - {step_id: b, action: http, with: {url: x, method: get}}
        """
    )
    assert [d.path for d in found] == [
        "timeout",
        "max_parallel_steps",
        "steps[0].timeout",
        "steps[1].with.method",
    ]


def test_examples_have_no_schema_problems() -> None:
    for path in WORKFLOWS:
        assert schema_diagnostics(load_text(path.read_bytes(), str(path))) == [], path


# -- the compiled fast check -------------------------------------------------------------


VALIDATOR = Draft202012Validator(load_schema())
SCALARS: list[Any] = [None, True, 0, -1, 1.5, "", "x", "{{ x }}", "GET", [], {}, ["a"]]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _mutants(data: dict[str, Any]) -> Iterator[Any]:
    """Deterministic mutations: delete each value, replace it with each of a few scalars."""
    for path in list(_paths(data))[1:]:
        parent_path, last = path[:-1], path[-1]
        for replacement in [*SCALARS, "<delete>"]:
            mutant = copy.deepcopy(data)
            parent = mutant
            for element in parent_path:
                parent = parent[element]
            if replacement == "<delete>":
                del parent[last]
            else:
                parent[last] = copy.deepcopy(replacement)
            yield mutant


def _documents() -> Iterator[Any]:
    for path in [*WORKFLOWS, *INVALID]:
        try:
            yield load_text(path.read_bytes(), str(path)).data
        except WorkflowError:
            continue


def test_fast_check_agrees_with_jsonschema_on_files() -> None:
    seen = 0
    for data in _documents():
        assert fast_is_valid(data) is VALIDATOR.is_valid(data)
        seen += 1
    assert seen > 40


def test_fast_check_agrees_with_jsonschema_on_mutations() -> None:
    disagreements = []
    total = 0
    valid = 0
    for path in WORKFLOWS[:3]:
        data = yaml.safe_load(path.read_text("utf-8"))
        for i, mutant in enumerate(_mutants(data)):
            if i % 7:  # a deterministic sample keeps this test fast
                continue
            total += 1
            expected = VALIDATOR.is_valid(mutant)
            valid += expected
            if fast_is_valid(mutant) is not expected:
                disagreements.append(json.dumps(mutant)[:300])
    assert total > 100 and 0 < valid < total
    assert disagreements == []


def test_fast_check_json_semantics() -> None:
    assert _json_equal(1, 1.0)
    assert not _json_equal(True, 1)
    assert not _json_equal(0, False)
    assert _json_equal({"a": [1, "x"]}, {"a": [1.0, "x"]})
    assert not _json_equal("1", 1)
    # An integer-valued float is an integer, a boolean is not a number.
    check_int = _Compiler({}).compile({"type": "integer", "minimum": 1})
    assert check_int(2.0) and not check_int(True) and not check_int(0) and not check_int(1.5)


def test_fast_check_gives_up_on_unknown_keywords() -> None:
    with pytest.raises(_Unsupported):
        _Compiler({}).compile({"unevaluatedProperties": False})
    with pytest.raises(_Unsupported):
        _Compiler({}).compile({"$ref": "#/$defs/missing"})
    recursive = {"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}}
    check_nested = _Compiler(recursive).compile({"$ref": "#/$defs/n"})
    assert check_nested([[], [[]]]) and not check_nested([[1]])
