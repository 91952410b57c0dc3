"""The tables validation is built from: semantic rules, schema keyword explainers, the
operators the sandbox bounds, and the public expression analysis."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from wfctl.expressions import ExpressionError, compile_expression, compile_template
from wfctl.expressions.analysis import (
    Analysis,
    analyse,
    line_offset,
    name_offset,
    step_ref_offset,
    workflow_attr_offset,
)

ROOT = Path(__file__).resolve().parents[2]
# Keywords that never fail by themselves: jsonschema reports the failing keyword inside.
_STRUCTURAL = frozenset(
    {"$defs", "$id", "$ref", "$schema", "allOf", "if", "then", "else", "items", "properties",
     "patternProperties", "propertyNames", "default", "description", "examples", "title",
     "minContains"}
)  # fmt: skip


def _keywords(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            out.add(key)
            if key in ("properties", "patternProperties", "$defs") and isinstance(value, dict):
                for sub in value.values():
                    _keywords(sub, out)
            elif key not in ("default", "examples", "const", "enum"):
                _keywords(value, out)
    elif isinstance(node, list):
        for item in node:
            _keywords(item, out)
    return out


def test_every_keyword_the_workflow_schema_asserts_has_an_explainer() -> None:
    from wfctl.validate._explain import KEYWORDS

    schema = json.loads((ROOT / "schemas" / "workflow.schema.json").read_text())
    asserted = _keywords(schema, set()) - _STRUCTURAL
    assert asserted, "no keywords found"
    assert asserted <= set(KEYWORDS), sorted(asserted - set(KEYWORDS))


def test_every_rule_module_function_is_in_the_table_once() -> None:
    from wfctl.validate import (
        _rules_actions,
        _rules_containers,
        _rules_expressions,
        _rules_graph,
        _rules_ids,
        _rules_local_workflows,
        _rules_numbers,
        _rules_results,
        _rules_schemas,
        _rules_subflows,
    )
    from wfctl.validate.semantic import RULES

    modules = (
        _rules_ids,
        _rules_graph,
        _rules_expressions,
        _rules_actions,
        _rules_schemas,
        _rules_containers,
        _rules_results,
        _rules_numbers,
        _rules_subflows,
        _rules_local_workflows,
    )
    public_checks = {
        fn
        for module in modules
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if name.startswith("check_") and fn.__module__ == module.__name__
    }
    assert len(RULES) == len(set(RULES))
    assert set(RULES) == public_checks
    # The reachability rule reads the steps the cycle rule found.
    names = [rule.__name__ for rule in RULES]
    assert names.index("check_cycles") < names.index("check_reachable")


def test_the_environment_intercepts_exactly_the_bounded_operators() -> None:
    from wfctl.expressions._environment import SandboxEnvironment
    from wfctl.expressions._limits import BINOPS

    assert SandboxEnvironment.intercepted_binops == frozenset(BINOPS) == {"+", "*", "**", "%"}


@pytest.mark.parametrize(
    ("source", "bare", "expected"),
    [
        (
            "steps.a.output.n > 1 and secrets.TOKEN and workflow.run_id",
            True,
            Analysis(
                frozenset({"steps", "secrets", "workflow"}),
                frozenset({"a"}),
                frozenset({"run_id"}),
                frozenset({"TOKEN"}),
            ),
        ),
        (
            "{{ steps['b'].output }} {{ steps.get('c') }} {{ secrets['KEY'] }}",
            False,
            Analysis(
                frozenset({"steps", "secrets"}),
                frozenset({"b", "c"}),
                frozenset(),
                frozenset({"KEY"}),
            ),
        ),
        ("no template here", False, Analysis(frozenset(), frozenset())),
        (
            "{% for x in inputs.xs %}{{ x }}{% endfor %}",
            False,
            Analysis(frozenset({"inputs"}), frozenset()),
        ),
    ],
)
def test_analysis_says_what_an_expression_reads(
    source: str, bare: bool, expected: Analysis
) -> None:
    assert analyse(source, bare) == expected
    compiled = compile_expression(source) if bare else compile_template(source)
    assert compiled.names() == expected.names
    assert compiled.step_refs() == expected.steps


@pytest.mark.parametrize(
    ("source", "bare"),
    [
        ("inputs.x | shell", True),  # not an allowed filter
        ("{{ x is callable }}", False),  # not an allowed test
        ("{% macro m() %}{% endmacro %}", False),
        ("inputs.x ) ", True),
    ],
)
def test_analysis_rejects_what_compiling_rejects(source: str, bare: bool) -> None:
    with pytest.raises(ExpressionError):
        analyse(source, bare)
    with pytest.raises(ExpressionError):
        compile_expression(source) if bare else compile_template(source)


def test_positions_point_at_what_is_read() -> None:
    source = "vars.x ~ steps.fetch.output ~ workflow['name']"
    assert name_offset(source, "vars") == 0
    assert step_ref_offset(source, "fetch") == source.index("steps")
    assert workflow_attr_offset(source, "name") == source.index("workflow")
    assert name_offset("{{ inputs }} inputs", "inputs") == 3
    assert line_offset("a\n  b\nc", 2) == 4
    assert line_offset("a", 3) is None


def test_a_test_named_by_a_string_is_checked_when_validating() -> None:
    """Issue 12: `selectattr('e', 'equalto', x)` passed validate and failed at run time."""
    doc = (
        "workflow_id: w\nname: W\nsteps:\n"
        "  - step_id: a\n    action: noop\n"
        "    output_mapping:\n"
        "      ok: \"output | selectattr('e', 'equalto', 1) | list\"\n"
        "      bad: \"output | selectattr('e', 'equalt', 1) | list\"\n"
    )
    from wfctl.document.loader import load_text
    from wfctl.validate.semantic import semantic_diagnostics

    found = semantic_diagnostics(load_text(doc, "w.yaml"))
    assert [(d.code, d.path, d.message.split(" (")[0]) for d in found] == [
        (
            "expression-syntax",
            "steps[0].output_mapping.bad",
            "invalid expression: unknown test 'equalt'",
        ),
    ]
    expr = compile_expression("xs | selectattr('e', 'equalto', 1) | map(attribute='e') | list")
    assert expr.evaluate({"xs": [{"e": 1}, {"e": 2}]}) == [1]
    assert compile_expression("xs | select('odd') | list").evaluate({"xs": [1, 2, 3]}) == [1, 3]
    for source in ("xs | reject('callable') | list", "xs | rejectattr('a', 'sameas', 1) | list"):
        with pytest.raises(ExpressionError, match="unknown test"):
            compile_expression(source)
