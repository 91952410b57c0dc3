"""Property tests: random valid workflows validate cleanly and round-trip through the loader;
random mutations of them never crash the loader or the validator, only produce diagnostics."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from wfctl.document.loader import load_text
from wfctl.format.diagnostics import Diagnostic, WorkflowError
from wfctl.format.schema import load_schema
from wfctl.validate.files import check_document, validate_file
from wfctl.validate.schema_messages import fast_is_valid

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
VALIDATOR = Draft202012Validator(load_schema())
RETRY_KINDS = ["error", "timeout", "exit_code", "http_status", "connection", "circuit_open"]
# Strings that yaml.safe_dump (YAML 1.1 rules) leaves unquoted but wfctl's loader
# (YAML 1.2 core rules) reads differently or reports as ambiguous: `y`/`n` (YAML 1.1
# booleans to wfctl, strings to PyYAML), `08` (an integer to wfctl), `1E5` (a float to
# wfctl). Those are the loader's business (tests/document/test_loader.py); keep them out here.
_AMBIGUOUS = {"y", "Y", "n", "N"}
_NUMBER_LIKE = re.compile(r"^\s*[-+.]?[0-9]")

# -- valid workflows ---------------------------------------------------------------------

safe_text = st.text(
    alphabet=st.characters(
        whitelist_categories=("Lu", "Ll", "Nd", "Zs", "Po"),
        blacklist_characters="{}%\x85\u2028\u2029",
    ),
    max_size=12,
).filter(lambda s: s not in _AMBIGUOUS and not _NUMBER_LIKE.match(s))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    safe_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), inner, max_size=3),
    ),
    max_leaves=6,
)
var_names = st.from_regex(r"[a-z][a-z0-9_]{1,8}", fullmatch=True)


@st.composite
def retry_policies(draw: st.DrawFn) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    if draw(st.booleans()):
        policy["max_attempts"] = draw(st.integers(1, 5))
    if draw(st.booleans()):
        policy["backoff"] = draw(st.sampled_from(["fixed", "linear", "exponential"]))
    if draw(st.booleans()):
        policy["initial_delay"] = draw(st.floats(0, 10, allow_nan=False))
    if draw(st.booleans()):
        policy["max_delay"] = draw(st.integers(0, 60))
    if draw(st.booleans()):
        policy["jitter"] = draw(st.booleans())
    if draw(st.booleans()):
        policy["retry_on"] = draw(st.lists(st.sampled_from(RETRY_KINDS), unique=True))
    if draw(st.booleans()):
        policy["continue_on_failure"] = draw(st.booleans())
    if draw(st.booleans()):
        policy["parallel_failure_threshold"] = draw(st.floats(0, 1, allow_nan=False))
    return policy


@st.composite
def simple_steps(draw: st.DrawFn, step_id: str, upstream: list[str]) -> dict[str, Any]:
    """A noop/set/sleep step; `upstream` are ids it may depend on (earlier siblings)."""
    step: dict[str, Any] = {"step_id": step_id}
    action = draw(st.sampled_from(["noop", "set", "sleep"]))
    step["action"] = action
    if action == "set":
        step["with"] = {"values": draw(st.dictionaries(var_names, json_values, max_size=3))}
    elif action == "sleep":
        seconds = draw(st.one_of(st.integers(0, 3), st.just("{{ vars.pause }}")))
        step["with"] = {"seconds": seconds}
    deps = draw(st.lists(st.sampled_from(upstream), unique=True, max_size=3)) if upstream else []
    if deps:
        step["dependencies"] = deps
        ref = draw(st.sampled_from(deps))
        if draw(st.booleans()):
            step["when"] = f"steps.{ref}.status == 'completed' and inputs.flag"
        if draw(st.booleans()):
            step["input_mapping"] = {"previous": f"steps.{ref}.output"}
    if draw(st.booleans()):
        step["retry_policy"] = draw(retry_policies())
    if draw(st.booleans()):
        step["name"] = draw(safe_text)
    if draw(st.booleans()):
        step["timeout"] = draw(st.integers(1, 600))
    if draw(st.booleans()):
        step["trigger_rule"] = draw(
            st.sampled_from(["all_success", "all_done", "none_failed", "one_success"])
        )
    return step


@st.composite
def workflows(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 8))
    ids = [f"step_{i}" for i in range(count)]
    steps: list[dict[str, Any]] = []
    for i, step_id in enumerate(ids):
        kind = draw(st.sampled_from(["simple", "simple", "simple", "parallel", "conditional"]))
        later = ids[i + 1 :]
        if kind == "parallel":
            children: list[dict[str, Any]] = []
            child_ids = [f"{step_id}_c{j}" for j in range(draw(st.integers(1, 3)))]
            for j, child_id in enumerate(child_ids):
                children.append(draw(simple_steps(child_id, child_ids[:j])))
            step: dict[str, Any] = {
                "step_id": step_id,
                "step_type": "parallel",
                "parallel_steps": children,
            }
            deps = draw(st.lists(st.sampled_from(ids[:i]), unique=True, max_size=2)) if i else []
            if deps:
                step["dependencies"] = deps
            if draw(st.booleans()):
                step["retry_policy"] = {"parallel_failure_threshold": 0.5}
        elif kind == "conditional" and later:
            branches: list[dict[str, Any]] = []
            for b in range(draw(st.integers(1, 3))):
                targets = draw(st.lists(st.sampled_from(later), unique=True, min_size=1))
                branches.append({"when": f"inputs.count > {b}", "next_steps": targets})
            if draw(st.booleans()):
                branches.append({"next_steps": [draw(st.sampled_from(later))]})
            step = {"step_id": step_id, "step_type": "conditional", "conditions": branches}
        else:
            step = draw(simple_steps(step_id, ids[:i]))
        steps.append(step)
    workflow: dict[str, Any] = {
        "workflow_id": draw(
            st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True).filter(
                lambda s: s not in _AMBIGUOUS
            )
        ),
        "name": draw(safe_text.filter(bool)),
        "inputs": {
            "flag": {"type": "boolean", "default": draw(st.booleans())},
            "count": {"type": "integer", "minimum": 0, "default": draw(st.integers(0, 9))},
        },
        "global_variables": {
            "pause": 0,
            **draw(st.dictionaries(var_names, json_values, max_size=2)),
        },
        "steps": steps,
    }
    if draw(st.booleans()):
        workflow["retry_policy"] = draw(retry_policies())
    if draw(st.booleans()):
        workflow["max_parallel_steps"] = draw(st.integers(1, 20))
    if draw(st.booleans()):
        workflow["tags"] = draw(st.lists(safe_text.filter(bool), max_size=3, unique=True))
    if draw(st.booleans()):
        workflow["version"] = draw(st.sampled_from(["1.0", "1.10", "2"]))
    return _called_from_workflows(workflow) if draw(st.booleans()) else workflow


def _called_from_workflows(workflow: dict[str, Any]) -> dict[str, Any]:
    """The same steps as the body of a `workflows:` entry, which the only step calls."""
    keys = ("inputs", "global_variables", "retry_policy", "steps")
    body = {key: workflow.pop(key) for key in keys if key in workflow}
    return {**workflow, "workflows": {"body": body}, "steps": [{"step_id": "c", "uses": "#body"}]}


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def assert_well_formed(diagnostics: list[Diagnostic], text: str) -> None:
    lines = text.count("\n") + 2
    assert len(set(diagnostics)) == len(diagnostics), diagnostics
    for d in diagnostics:
        assert 1 <= d.line <= lines and d.col >= 1, d
        assert d.message and "\n" not in d.message, d


@SETTINGS
@given(workflows())
def test_valid_workflows_validate_and_round_trip(workflow: dict[str, Any]) -> None:
    text = dump(workflow)
    doc = load_text(text, "generated.yaml")
    assert doc.data == workflow
    assert VALIDATOR.is_valid(workflow), next(VALIDATOR.iter_errors(workflow)).message
    assert fast_is_valid(workflow) is True
    diagnostics = check_document(doc)
    assert diagnostics == [], "\n".join(f"{d.line}:{d.col} {d.message}" for d in diagnostics)


# -- mutations ---------------------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    node = data
    for element in path[:-1]:
        node = node[element]
    return node


def _all_steps(data: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    todo = list(data["steps"])
    while todo:
        step = todo.pop()
        found.append(step)
        todo.extend(step.get("parallel_steps", []))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Any, str]:
    """(mutated data, kind) for a random valid workflow and one random mutation."""
    data = copy.deepcopy(draw(workflows()))
    kind = draw(
        st.sampled_from(["delete", "rename", "replace", "add_dependency", "cycle", "swap_type"])
    )
    paths = list(_paths(data))
    if kind == "delete":
        path = draw(st.sampled_from(paths))
        del _parent(data, path)[path[-1]]
    elif kind == "rename":
        dict_paths = [p for p in paths if isinstance(p[-1], str)]
        path = draw(st.sampled_from(dict_paths))
        parent = _parent(data, path)
        new_key = path[-1] + draw(st.sampled_from(["s", "_x", "z", ""])) or "k"
        parent[new_key] = parent.pop(path[-1])
    elif kind == "replace":
        path = draw(st.sampled_from(paths))
        _parent(data, path)[path[-1]] = draw(
            st.one_of(scalars, st.lists(scalars, max_size=3), st.just({}), st.just({"x": 1}))
        )
    elif kind == "add_dependency":
        steps = _all_steps(data)
        step = draw(st.sampled_from(steps))
        ids = [s["step_id"] for s in steps]
        target = draw(st.one_of(st.sampled_from(ids), st.sampled_from(["nope", "step_99", "s"])))
        step.setdefault("dependencies", []).append(target)
    elif kind == "cycle":
        top = data["steps"]
        assume(len(top) >= 2)
        i = draw(st.integers(0, len(top) - 2))
        j = draw(st.integers(i + 1, len(top) - 1))
        top[j].setdefault("dependencies", [])
        if top[i]["step_id"] not in top[j]["dependencies"]:
            top[j]["dependencies"].append(top[i]["step_id"])
        top[i].setdefault("dependencies", []).append(top[j]["step_id"])
    else:  # swap_type
        step = draw(st.sampled_from(_all_steps(data)))
        step["step_type"] = draw(
            st.sampled_from(
                ["action", "parallel", "conditional", "loop", "react", "human_approval"]
            )
        )
    return data, kind


@SETTINGS
@given(mutated())
def test_mutations_produce_diagnostics_never_exceptions(case: tuple[Any, str]) -> None:
    data, kind = case
    text = dump(data)
    try:
        doc = load_text(text, "mutated.yaml")
    except WorkflowError as exc:
        assert exc.diagnostics
        assert_well_formed(exc.diagnostics, text)
        return
    diagnostics = check_document(doc)
    assert_well_formed(diagnostics, text)
    if isinstance(doc.data, dict):
        assert fast_is_valid(doc.data) is VALIDATOR.is_valid(doc.data)
    if kind in ("add_dependency", "cycle"):
        # An unknown id, a self-dependency, a cycle or a cross-level reference: all errors.
        # (Adding an existing upstream step is harmless, so only unknown ids must fail.)
        step_ids = {s["step_id"] for s in _all_steps(data)}
        unknown = any(
            d not in step_ids for s in _all_steps(data) for d in s.get("dependencies", [])
        )
        if kind == "cycle" or unknown:
            assert diagnostics


@SETTINGS
@given(
    workflows(),
    st.data(),
    st.one_of(
        st.binary(min_size=1, max_size=8),
        st.text(max_size=8).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.sampled_from([b"\t", b": ", b"- ", b"&a ", b"*a", b"---\n", b"{{", b"\xff", b"\x00"]),
    ),
)
def test_random_bytes_in_the_file_never_crash(
    workflow: dict[str, Any], data: st.DataObject, junk: bytes
) -> None:
    raw = dump(workflow).encode("utf-8")
    at = data.draw(st.integers(0, len(raw)))
    broken = raw[:at] + junk + raw[at:]
    try:
        doc = load_text(broken, "broken.yaml")
    except WorkflowError as exc:
        assert exc.diagnostics
        return
    assert_well_formed(check_document(doc), doc.text)


def test_validate_file_never_raises_on_odd_files(tmp_path: Path) -> None:
    cases = {
        "empty.yaml": b"",
        "bom.yaml": b"\xef\xbb\xbf",
        "nul.yaml": b"workflow_id: a\x00\n",
        "list.yaml": b"- 1\n",
        "scalar.yaml": b"just text\n",
        "deep.yaml": b"a: " + b"[" * 200 + b"]" * 200 + b"\n",
        "steps_scalar.yaml": b"workflow_id: a\nname: b\nsteps: 3\n",
        "surrogate.yaml": "name: \ud800\n".encode("utf-8", "surrogatepass"),
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        result = validate_file(path)
        assert not result.ok and result.diagnostics, name
