"""Semantic checks: ids, graph shape, expressions and their positions, actions, inputs."""

from __future__ import annotations

import textwrap
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wfctl.document.loader import LoadedDocument, SourceMap, load_text
from wfctl.expressions.analysis import analyse
from wfctl.format.diagnostics import Diagnostic
from wfctl.validate.semantic import semantic_diagnostics

HEADER = "workflow_id: w\nname: W\n"


def check(body: str) -> list[Diagnostic]:
    text = HEADER + textwrap.dedent(body).lstrip("\n")
    return sorted(semantic_diagnostics(load_text(text, "w.yaml")))


def messages(body: str) -> list[str]:
    return [d.message for d in check(body)]


def one(body: str) -> Diagnostic:
    found = check(body)
    assert len(found) == 1, [(d.line, d.col, d.message) for d in found]
    return found[0]


# -- ids and references ------------------------------------------------------------------


def test_valid_graph_has_no_problems() -> None:
    assert (
        check(
            """
            steps:
              - {step_id: a, action: noop, next_steps: [c]}
              - {step_id: b, action: noop, dependencies: [a]}
              - {step_id: c, action: noop}
              - step_id: d
                dependencies: [b, c]
                action: set
                with: {values: {x: "{{ steps.b.status }}"}}
                input_mapping: {n: steps.a.output}
            """
        )
        == []
    )


def test_duplicate_nested_id_points_at_the_second() -> None:
    d = one(
        """
        steps:
          - step_id: p
            step_type: parallel
            parallel_steps:
              - {step_id: x, action: noop}
              - step_id: q
                step_type: parallel
                parallel_steps:
                  - {step_id: x, action: noop}
        """
    )
    assert d.message == "duplicate step_id 'x' (first defined at line 7)"
    assert (d.line, d.col) == (11, 23)


def test_conditional_branch_target_unknown() -> None:
    d = one(
        """
        steps:
          - step_id: c
            step_type: conditional
            conditions:
              - {when: "true", next_steps: [yes_branch]}
              - next_steps: [no_branch]
          - {step_id: yes_branch, action: noop}
          - {step_id: no_brnch, action: noop}
        """
    )
    assert d.message == "unknown step 'no_branch' in next_steps"
    assert d.hint == "did you mean 'no_brnch'?"
    assert d.path == "steps[0].conditions[1].next_steps[0]"


def test_cross_level_dependency_from_outside_a_parallel_step() -> None:
    d = one(
        """
        steps:
          - step_id: p
            step_type: parallel
            parallel_steps: [{step_id: child, action: noop}]
          - {step_id: after, action: noop, dependencies: [child]}
        """
    )
    assert d.message == (
        "step 'child' is not at the top level: dependencies may only name steps at the same level"
    )
    assert d.hint == "steps after a parallel step depend on the parallel step itself"


def test_unknown_react_tool_step_and_action() -> None:
    found = check(
        """
        steps:
          - step_id: r
            step_type: react
            with:
              model: openai:gpt-4o-mini
              prompt: hi
              tools:
                - {name: one, step: helpr}
                - {name: two, action: shel, with: {command: ls}}
          - {step_id: helper, action: noop}
        """
    )
    assert {(d.message, d.hint) for d in found} == {
        ("unknown step 'helpr' in tool 'one'", "did you mean 'helper'?"),
        ("unknown action 'shel'", "did you mean 'shell'?"),
    }


def test_a_react_tool_step_is_a_handler_without_dependencies() -> None:
    d = one(
        """
        steps:
          - {step_id: first, action: noop}
          - step_id: r
            step_type: react
            dependencies: [first]
            with:
              model: openai:gpt-4o-mini
              prompt: hi
              tools: [{name: t, step: helper}]
          - {step_id: helper, action: noop, dependencies: [first]}
        """
    )
    assert d.message == "step 'helper' is a react tool, so it cannot have dependencies"


def test_duplicate_agent_name() -> None:
    d = one(
        """
        agents:
          - {name: bot, capabilities: [a], action: noop}
          - {name: bot, capabilities: [b], action: noop}
        steps: [{step_id: s, agent_capability: b}]
        """
    )
    assert d.message == "duplicate agent name 'bot' (first defined at line 4)"
    assert (d.line, d.col) == (5, 12)


# -- graph ---------------------------------------------------------------------------------


def test_cycle_is_reported_once_in_run_order_from_the_first_step_in_the_file() -> None:
    found = check(
        """
        steps:
          - {step_id: b, action: noop, dependencies: [a]}
          - {step_id: c, action: noop, dependencies: [b]}
          - {step_id: a, action: noop, dependencies: [c]}
          - {step_id: after, action: noop, dependencies: [a]}
        """
    )
    assert [d.message for d in found] == ["dependency cycle: b -> c -> a -> b"]
    assert (found[0].line, found[0].col) == (4, 15)


def test_cycle_through_next_steps_and_two_separate_cycles() -> None:
    found = messages(
        """
        steps:
          - {step_id: a, action: noop, next_steps: [b]}
          - {step_id: b, action: noop, next_steps: [a]}
          - {step_id: p1, action: noop, dependencies: [p2]}
          - {step_id: p2, action: noop, dependencies: [p1]}
        """
    )
    assert found == ["dependency cycle: a -> b -> a", "dependency cycle: p1 -> p2 -> p1"]


def test_cycle_inside_a_parallel_step() -> None:
    assert messages(
        """
        steps:
          - step_id: p
            step_type: parallel
            parallel_steps:
              - {step_id: u, action: noop, dependencies: [v]}
              - {step_id: v, action: noop, dependencies: [u]}
        """
    ) == ["dependency cycle: u -> v -> u"]


def test_only_the_first_step_waiting_on_a_handler_is_reported() -> None:
    found = check(
        """
        steps:
          - {step_id: work, action: noop, error_handlers: [fix]}
          - {step_id: fix, action: noop}
          - {step_id: next, action: noop, dependencies: [fix]}
          - {step_id: last, action: noop, dependencies: [next]}
        """
    )
    assert [d.message for d in found] == [
        "step 'next' can never run: it waits on 'fix', which is a handler step"
    ]


def test_handler_with_dependencies_points_at_the_key() -> None:
    d = one(
        """
        steps:
          - {step_id: work, action: noop, rollback_actions: [undo]}
          - step_id: undo
            action: noop
            dependencies: [work]
        """
    )
    assert d.code == "handler-has-dependencies"
    assert (d.line, d.col) == (7, 5)


def test_else_branch_must_be_last() -> None:
    d = one(
        """
        steps:
          - step_id: c
            step_type: conditional
            conditions:
              - next_steps: [a]
              - {when: "true", next_steps: [b]}
          - {step_id: a, action: noop}
          - {step_id: b, action: noop}
        """
    )
    assert d.code == "else-not-last"
    assert d.path == "steps[0].conditions[0]"


def test_long_chain_is_fast_and_does_not_recurse() -> None:
    lines = ["steps:", "  - {step_id: s0, action: noop}"]
    for i in range(1, 1500):
        lines.append(
            f"  - {{step_id: s{i}, action: noop, dependencies: [s{i - 1}], "
            f"when: \"steps.s{i - 1}.status == 'completed' and steps.s0.status\"}}"
        )
    started = time.perf_counter()
    assert check("\n".join(lines) + "\n") == []
    assert time.perf_counter() - started < 10


# -- expressions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Children of a finished parallel step are upstream of what follows it.
        (
            """
            steps:
              - step_id: p
                step_type: parallel
                parallel_steps: [{step_id: child, action: noop}]
              - {step_id: after, action: noop, dependencies: [p], when: "steps.child.status"}
            """,
            [],
        ),
        # A child sees what is upstream of its parallel step.
        (
            """
            steps:
              - {step_id: first, action: noop}
              - step_id: p
                step_type: parallel
                dependencies: [first]
                parallel_steps: [{step_id: child, action: noop, when: "steps.first.output"}]
            """,
            [],
        ),
        # ...but not its siblings unless it depends on them.
        (
            """
            steps:
              - step_id: p
                step_type: parallel
                parallel_steps:
                  - {step_id: one, action: noop}
                  - {step_id: two, action: noop, when: "steps.one.output"}
            """,
            [
                "expression refers to step 'one', which is not upstream of 'two' "
                "(it may not have run yet)"
            ],
        ),
        # Its own container is still running.
        (
            """
            steps:
              - step_id: p
                step_type: parallel
                parallel_steps: [{step_id: c, action: noop, when: "steps.p.status"}]
            """,
            [
                "expression refers to step 'p', which is not upstream of 'c' "
                "(it may not have run yet)"
            ],
        ),
        # Branch targets come after their conditional step.
        (
            """
            steps:
              - step_id: c
                step_type: conditional
                conditions: [{next_steps: [t]}]
              - {step_id: t, action: noop, when: "steps.c.output.branch == 0"}
            """,
            [],
        ),
        # Handlers may read any step; `error` is theirs alone.
        (
            """
            steps:
              - {step_id: a, action: noop, error_handlers: [h]}
              - {step_id: b, action: noop, when: "error.kind"}
              - step_id: h
                action: set
                with: {values: {x: "{{ error.message }} {{ steps.b.status }}"}}
            """,
            ["unknown name 'error' in expression"],
        ),
        # `output` in output_mapping/custom_metrics only; own result only there.
        (
            """
            steps:
              - step_id: a
                action: noop
                input_mapping: {x: output.value}
                output_mapping: {y: "steps.a.output", z: output}
                custom_metrics: {m: output.n}
            """,
            ["unknown name 'output' in expression"],
        ),
        (
            """
            steps:
              - {step_id: a, action: noop, when: "steps.a.status"}
            """,
            ["step 'a' refers to its own result before it has one"],
        ),
        # `loop` in loop steps only.
        (
            """
            steps:
              - step_id: l
                step_type: loop
                action: set
                for_each: [1, 2]
                with: {values: {i: "{{ loop.index }} {{ loop.item }}"}}
              - {step_id: later, action: noop, when: "loop.index > 0"}
            """,
            ["unknown name 'loop' in expression"],
        ),
        # Names bound inside a template are not unknown names.
        (
            """
            steps:
              - step_id: a
                action: set
                with:
                  values:
                    x: "{% for i in range(3) %}{{ i }}{% endfor %}{% set y = 1 %}{{ y }}"
            """,
            [],
        ),
    ],
)
def test_expression_scopes(body: str, expected: list[str]) -> None:
    assert messages(body) == expected


def test_unknown_filter_is_reported() -> None:
    d = one(
        """
        steps:
          - {step_id: a, action: noop, when: "vars.x | no_such_filter"}
        """
    )
    assert d.code == "expression-syntax"
    assert d.message.startswith("invalid expression: unknown filter 'no_such_filter'")


def test_every_template_error_in_with_is_reported_at_its_own_path() -> None:
    found = check(
        """
        steps:
          - step_id: a
            action: shell
            with:
              command: ["echo", "{{ vars.x ) }}", "{{ }}"]
              env: {A: "{{ vars.y"}
        """
    )
    assert [d.path for d in found] == [
        "steps[0].with.command[1]",
        "steps[0].with.command[2]",
        "steps[0].with.env.A",
    ]
    assert all(d.message.startswith("syntax error in template: ") for d in found)


def test_positions_inside_expressions() -> None:
    found = check(
        """
        steps:
          - {step_id: fetch, action: noop}
          - step_id: use
            dependencies: [fetch]
            when: "steps.fetch.status == 'completed' and var.ok"
            input_mapping:
              n: 'steps.fech.output'
            with_nothing_here: 1
            action: noop
        """
    )
    got = {(d.line, d.col, d.message) for d in found}
    assert got == {
        (7, 50, "unknown name 'var' in expression"),
        (9, 11, "expression refers to unknown step 'fech'"),
    }


def test_positions_inside_literal_block_scalars() -> None:
    found = check(
        """
        steps:
          - step_id: report
            action: shell
            with:
              command: |
                echo one

                echo "{{ secrets.token }}"
                echo "{% if %}"
        secrets: {token: TOKEN}
        """
    )
    # A syntax error has a line but no column: the start of that line's text.
    assert [(d.line, d.col, d.code) for d in found] == [(11, 9, "expression-syntax")]
    found = check(
        """
        steps:
          - step_id: report
            action: shell
            with:
              command: |
                echo one

                echo "{{ secrets.token }}"
        secrets: {token: TOKEN}
        """
    )
    assert [(d.line, d.col, d.code) for d in found] == [(10, 18, "secret-in-shell")]


def test_folded_and_multi_line_scalars_fall_back_to_the_value() -> None:
    found = check(
        """
        steps:
          - step_id: a
            action: noop
            when: >-
              vars.a and
              var.b
        """
    )
    assert [(d.line, d.col, d.message) for d in found] == [
        (6, 11, "unknown name 'var' in expression")
    ]


def test_secret_in_shell_command_but_not_in_env() -> None:
    found = check(
        """
        secrets: {token: API_TOKEN}
        agents:
          - name: bot
            capabilities: [call]
            action: shell
            with: {command: ["curl", "-H", "Bearer {{ secrets.token }}"]}
        steps:
          - step_id: a
            action: shell
            with:
              command: ["curl", "-H", "Bearer $TOKEN"]
              env: {TOKEN: "{{ secrets.token }}"}
          - step_id: b
            action: shell
            with: {command: "echo {{ secrets.token }}"}
          - {step_id: c, agent_capability: call}
        """
    )
    assert [(d.path, d.code) for d in found] == [
        ("agents[0].with.command[2]", "secret-in-shell"),
        ("steps[1].with.command", "secret-in-shell"),
    ]
    assert (
        found[0].hint == "secrets reach shell steps as environment variables (token): "
        'write "$NAME" in the command'
    )


def test_agent_templates_see_input_but_not_typos() -> None:
    found = check(
        """
        agents:
          - name: bot
            capabilities: [c]
            action: set
            with: {values: {a: "{{ input.text }}", b: "{{ inptu.text }}", c: "{{ steps.nope }}"}}
        steps: [{step_id: s, agent_capability: c}]
        """
    )
    assert [(d.message, d.hint) for d in found] == [
        ("unknown name 'inptu' in template", "did you mean 'input'?"),
        ("expression refers to unknown step 'nope'", None),
    ]


# -- actions, agents, inputs ------------------------------------------------------------------


def test_capability_hints() -> None:
    d = one("steps: [{step_id: s, agent_capability: summarize}]\n")
    assert d.hint == "declare an agent providing it under `agents:`"
    d = one(
        """
        agents: [{name: a, capabilities: [summarise], action: noop}]
        steps: [{step_id: s, agent_capability: summarize}]
        """
    )
    assert d.hint == "did you mean 'summarise'?"


def test_input_schemas() -> None:
    found = check(
        """
        inputs:
          ok: {type: string, default: x, secret: true}
          level: {type: string, enum: [low, high], default: medium}
          nested: {type: object, properties: {port: {type: integer}}, default: {port: "80"}}
          broken: {type: strin}
        steps:
          - step_id: a
            action: noop
            input_validation: {type: 5}
        """
    )
    assert [(d.path, d.message) for d in found] == [
        (
            "inputs.level.default",
            "default of input 'level' violates its own schema: "
            "must be one of: low, high (got 'medium')",
        ),
        (
            "inputs.nested.default",
            "default of input 'nested' violates its own schema: "
            "port: must be of type integer (got '80')",
        ),
        ("inputs.broken", found[2].message),
        ("steps[0].input_validation", found[3].message),
    ]
    assert found[2].message.startswith("schema of input 'broken': ")
    assert found[3].message.startswith("input_validation is not a valid JSON Schema: ")


# -- robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"steps": 5},
        {"steps": [1, "x", None, {"step_id": 3}, {"step_id": "a", "dependencies": "b"}]},
        {"steps": [{"step_id": "a", "conditions": "x", "with": 5, "next_steps": [1, None]}]},
        {"steps": [{"step_id": "a", "conditions": [1, {"next_steps": "a"}]}]},
        {"steps": [{"step_id": "a", "step_type": "parallel", "parallel_steps": {"x": 1}}]},
        {"agents": [1, {"name": 1, "capabilities": "x", "with": {"a": "{{"}}]},
        {"inputs": {"x": {"type": "integer", "default": "a"}, "y": 3}, "secrets": [1]},
        {"sla_targets": {"step_max_duration": [1]}, "steps": [{"step_id": "a", "when": 1}]},
        {"steps": [{"step_id": "a", "step_type": "react", "with": {"tools": [1, {"step": 2}]}}]},
    ],
)
def test_malformed_data_never_crashes(data: dict[str, Any]) -> None:
    doc = LoadedDocument("w.yaml", "", data, SourceMap({}, {}))
    for d in semantic_diagnostics(doc):
        assert d.line >= 1 and d.col >= 1


# -- the fast expression analysis agrees with the compiler -----------------------------------

ANALYSED_SOURCES = [
    "steps.fetch.output.total > 100",
    "steps['build-app'].status == 'completed' and inputs.x",
    "steps.get('a') and steps.keys()",
    "{{ vars.x > 1 }}",
    "{{ a }} and {{ b }}",
    "output.stdout | trim if output is mapping else output",
    "vars.x | no_such_filter",
    "vars.x is no_such_test",
    "x.y(z=1, z=2)",
    "f(a=1, b)",
    "(1 + ",
    "a b",
    "",
    "lambda: 1",
    "[loop.index for x in y]",
    "((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))",
    "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))",
]
ANALYSED_TEMPLATES = [
    "plain text",
    "{{ steps.a.output }}",
    "n={{ vars.n }} of {{ inputs.total | default(0) }}",
    "{% for i in range(3) %}{{ i }}{% endfor %}",
    "{% for loop in [1] %}{% endfor %}",
    "{% for a, loop in x %}{% endfor %}",
    "{% set y = vars.x %}{{ y }}{{ z }}",
    "{% macro m() %}{% endmacro %}",
    "{% include 'x' %}",
    "{% for x in y recursive %}{{ loop(x) }}{% endfor %}",
    "{{ x.y(a=1, a=2) }}",
    "{{ x | replace('a', 'b', count=1, count=2) }}",
    "{% if %}",
    "{{ vars.x ) }}",
    "{{",
    "{% break %}",
    "line one\n{{ vars.ok }}\n{{ vars.bad ) }}",
    "{{ steps['x'].output }} {{ steps.get('y') }}",
]


def _outcome(source: str, bare: bool, fast: bool) -> tuple[str, Any]:
    from wfctl.expressions import ExpressionError, compile_expression, compile_template
    from wfctl.expressions.analysis import _analyse_cached

    try:
        if fast:
            _analyse_cached.cache_clear()
            result = analyse(source, bare)
            return ("ok", (result.names, result.steps))
        compiled = compile_expression(source) if bare else compile_template(source)
        compiled.prepare()  # the code generator too (it runs at first evaluation otherwise)
        return ("ok", (frozenset(compiled.names()), frozenset(compiled.step_refs())))
    except ExpressionError:
        # The wording may differ: the compiler reports a repeated keyword argument as
        # "too complex to compile (SyntaxError)"; the analysis says what it is.
        return ("error", None)


@pytest.mark.parametrize(
    ("source", "bare"),
    [(s, True) for s in ANALYSED_SOURCES] + [(s, False) for s in ANALYSED_TEMPLATES],
)
def test_analysis_accepts_and_rejects_like_the_compiler(source: str, bare: bool) -> None:
    assert _outcome(source, bare, fast=True) == _outcome(source, bare, fast=False)


def test_analysis_of_every_example_expression_matches_the_compiler() -> None:
    from pathlib import Path

    from wfctl.validate._context import Context, collect_steps
    from wfctl.validate._rules_expressions import step_sites

    root = Path(__file__).resolve().parents[2]
    count = 0
    for path in sorted((root / "workflows").glob("*.yaml")):
        doc = load_text(path.read_bytes(), str(path))
        ctx = Context(doc)
        collect_steps(ctx, doc.data.get("steps"), ("steps",), None)
        for info in ctx.steps.values():
            for site in step_sites(ctx, info):
                count += 1
                assert _outcome(site.source, site.bare, True) == _outcome(
                    site.source, site.bare, False
                ), site
    assert count > 50


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [
                "steps",
                ".",
                "a",
                "['b']",
                "(",
                ")",
                "[",
                "]",
                "{{",
                "}}",
                "{%",
                "%}",
                " ",
                "|",
                "trim",
                "upper",
                "if",
                "else",
                "for",
                "in",
                "loop",
                "endfor",
                "set",
                "=",
                "1",
                "'s'",
                ",",
                "x=1",
                "and",
                "not",
                "~",
                "+",
                "is",
                "defined",
                "range",
                "get",
                "inputs",
                "vars",
                "endif",
                "\n",
                ":",
                "{",
                "}",
                "lambda",
                "**",
            ]
        ),
        max_size=14,
    ),
    st.booleans(),
)
def test_analysis_matches_the_compiler_on_random_token_soup(tokens: list[str], bare: bool) -> None:
    source = "".join(tokens)
    assert _outcome(source, bare, fast=True) == _outcome(source, bare, fast=False)


# -- input schemas: the light validity check never accepts what the metaschema rejects ----


_schema_leaf = st.one_of(
    st.booleans(),
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.one_of(
                st.sampled_from(["string", "integer", "number", "object", "array", "strin"]),
                st.lists(st.sampled_from(["string", "null", "integer"]), max_size=3),
                st.integers(),
            ),
            "minimum": st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=2)),
            "minLength": st.one_of(st.integers(min_value=-2, max_value=5), st.floats(0, 3)),
            "pattern": st.sampled_from(["^a+$", "[", "(?P<x>", "\\d"]),
            "enum": st.one_of(st.lists(st.integers(), max_size=3), st.integers()),
            "required": st.lists(st.sampled_from(["a", "b", 1]), max_size=3),
            "description": st.one_of(st.text(max_size=3), st.integers()),
            "uniqueItems": st.one_of(st.booleans(), st.integers(0, 1)),
            "default": st.integers(),
            "secret": st.booleans(),
        },
    ),
)
_schemas = st.recursive(
    _schema_leaf,
    lambda inner: st.fixed_dictionaries(
        {},
        optional={
            "items": inner,
            "properties": st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
            "type": st.just("object"),
        },
    ),
    max_leaves=5,
)


@settings(max_examples=200, deadline=None)
@given(_schemas)
def test_plain_schema_check_is_sufficient(schema: Any) -> None:
    from jsonschema import Draft202012Validator

    from wfctl.validate._rules_schemas import meta_validator as _meta_validator
    from wfctl.validate._rules_schemas import plainly_valid_schema as _plainly_valid_schema

    if _plainly_valid_schema(schema):
        assert _meta_validator().is_valid(schema), schema
        Draft202012Validator.check_schema(schema)


@settings(max_examples=200, deadline=None)
@given(
    _schemas,
    st.one_of(
        st.integers(),
        st.text(max_size=3),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
    ),
)
def test_compiled_input_check_agrees_with_jsonschema(schema: Any, value: Any) -> None:
    from jsonschema import Draft202012Validator

    from wfctl.validate._rules_schemas import meta_validator as _meta_validator
    from wfctl.validate.schema_messages import compile_schema_check

    if not _meta_validator().is_valid(schema):
        return
    check = compile_schema_check(schema)
    if check is not None:
        assert check(value) is Draft202012Validator(schema).is_valid(value), (schema, value)


def test_unknown_workflow_attribute_is_reported_where_it_is_read() -> None:
    found = one(
        """
        steps:
          - step_id: a
            action: noop
            with: {note: "run {{ workflow.run_id }} of {{ workflow['workflow_id'] }}"}
        """
    )
    assert (found.code, found.message) == (
        "unknown-name",
        "workflow has no attribute 'workflow_id'",
    )
    assert (found.line, found.col) == (6, 51)
    assert "workflow.id" in (found.hint or "")


def test_workflow_artifacts_is_known_and_a_near_miss_is_told_it() -> None:
    found = one(
        """
        steps:
          - step_id: a
            action: shell
            with: {command: ["ls", "{{ workflow.artifacts }}", "{{ workflow.artifact }}"]}
        """
    )
    assert (found.code, found.message) == ("unknown-name", "workflow has no attribute 'artifact'")
    assert found.hint == "did you mean 'artifacts'?"


def test_a_cache_key_template_is_checked_like_any_other_at_its_line() -> None:
    found = check(
        """
        steps:
          - {step_id: a, action: noop}
          - step_id: b
            action: noop
            dependencies: [a]
            cache: {key: "{{ inputs.n }}-{{ steps.a.output }}-{{ nothere.x }}"}
          - step_id: c
            action: noop
            cache: {key: "{{ vars.x | }}"}
        """
    )
    got = [(d.line, d.code, d.path) for d in found]
    assert got == [
        (8, "unknown-name", "steps[1].cache.key"),
        (11, "expression-syntax", "steps[2].cache.key"),
    ], [(d.line, d.code, d.message) for d in found]
    assert "'nothere'" in found[0].message


def test_a_workflows_outputs_templates_are_checked_at_their_lines() -> None:
    found = check(
        """
        inputs: {target: {type: string}}
        outputs:
          url: "https://{{ inputs.target }}/{{ steps.build.output.stdout }}"
          typo: "{{ input.target }}"
          gone: "{{ steps.biuld.output }}"
          broken: "{{ vars.x | }}"
        steps:
          - {step_id: build, action: noop}
        """
    )
    got = [(d.line, d.code, d.path) for d in found]
    assert got == [
        (6, "unknown-name", "outputs.typo"),
        (7, "unknown-step", "outputs.gone"),
        (8, "expression-syntax", "outputs.broken"),
    ], [(d.line, d.code, d.message) for d in found]
    assert found[1].hint == "did you mean 'build'?"
