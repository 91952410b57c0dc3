"""Tests for wfctl.expressions: the sandboxed expression language."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wfctl.expressions import (
    MAX_LOOP_ITERATIONS,
    MAX_RENDER_LENGTH,
    CompiledValue,
    Expression,
    ExpressionError,
    Template,
    compile_expression,
    compile_template,
    compile_value,
    is_template,
    truthy,
)


def make_context() -> dict[str, Any]:
    return {
        "inputs": {"version": "1.2", "count": 3, "flag": True, "names": ["a", "b"]},
        "vars": {"threshold": 100, "empty": []},
        "steps": {
            "fetch": {
                "output": {
                    "total": 150,
                    "count": 7,
                    "items": [{"n": 1, "ok": True}, {"n": 5, "ok": False}, {"n": 9, "ok": True}],
                    "meta": {"path": "/data/out/report.json"},
                },
                "status": "completed",
                "attempts": 1,
                "error": None,
            },
            "b-c": {"output": None, "status": "failed", "attempts": 3, "error": "boom"},
        },
        "workflow": {"id": "demo"},
        "secrets": {"token": "s3cr3t-T0KEN"},
    }


@pytest.fixture
def ctx() -> dict[str, Any]:
    return make_context()


def ev(source: str, context: Mapping[str, Any] | None = None) -> Any:
    return compile_expression(source).evaluate(make_context() if context is None else context)


def err(source: str, context: Mapping[str, Any] | None = None) -> ExpressionError:
    """The ExpressionError raised by compiling or evaluating ``source``."""
    with pytest.raises(ExpressionError) as info:
        ev(source, context)
    return info.value


def render_err(source: str, context: Mapping[str, Any] | None = None) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_template(source).render(make_context() if context is None else context)
    return info.value


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("steps.fetch.output.total > 100", True),
        ("steps.fetch.output.total > vars.threshold * 2", False),
        ("steps.fetch.status == 'completed' and steps['b-c'].status == 'failed'", True),
        ("steps.fetch.output.items[1].n", 5),
        ("steps.fetch.output.items | selectattr('ok') | map(attribute='n') | list", [1, 9]),
        ("steps.fetch.output.items | map(attribute='n') | sum", 15),
        ("steps.fetch.output.items | length", 3),
        ("'b' in inputs.names", True),
        ("inputs.version ~ '-' ~ inputs.count", "1.2-3"),
        ("inputs.count + 1", 4),
        ("inputs.count ** 2", 9),
        ("2 ** 100", 2**100),
        ("'ab' * 3", "ababab"),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("7 % 3", 1),
        ("(1, 2)", [1, 2]),
        ("steps.fetch.output.meta", {"path": "/data/out/report.json"}),
        ("steps.fetch.output.meta.path | basename", "report.json"),
        ("steps.fetch.output.meta.path | dirname", "/data/out"),
        ("'[1, {\"a\": null}]' | fromjson", [1, {"a": None}]),
        ("{'b': [1, '<x>']} | tojson", '{"b": [1, "<x>"]}'),
        ("{'b': 1} | tojson(indent=2)", '{\n  "b": 1\n}'),
        ("inputs.names | join(',')", "a,b"),
        ("'a-b-c' | replace('-', '+', 1)", "a+b-c"),
        ("inputs.names | map('upper') | list", ["A", "B"]),
        ("inputs.names | map('upper')", ["A", "B"]),  # generators become lists
        ("range(3)", [0, 1, 2]),
        ("'a,b'.split(',')", ["a", "b"]),
        ("inputs.keys() | list", ["version", "count", "flag", "names"]),
        ("'x' if vars.empty else 'y'", "y"),
        ("steps.fetch.error is none", True),
        ("inputs.count is odd and 10 is divisibleby 5", True),
        ("[3, 1, 2] | sort | first", 1),
        ("[[1], [2, 3]] | sum(start=[])", [1, 2, 3]),
        ("1.456 | round(2)", 1.46),
        ("'  hi ' | trim | upper", "HI"),
        ("steps.fetch.output.count", 7),
    ],
)
def test_evaluate(source: str, expected: Any) -> None:
    assert ev(source) == expected


def test_native_types_are_kept(ctx: dict[str, Any]) -> None:
    assert type(ev("steps.fetch.output.total")) is int
    assert type(ev("steps.fetch.output.total / 2")) is float
    assert ev("inputs.flag") is True
    assert ev("steps.fetch.error") is None


def test_dict_keys_win_over_dict_methods() -> None:
    # An output field named like a dict method means the field, not the method.
    context = {"steps": {"s": {"output": {"items": [1, 2], "keys": "k", "get": 3}}}}
    assert ev("steps.s.output.items", context) == [1, 2]
    assert ev("steps.s.output.keys", context) == "k"
    assert ev("steps.s.output.get", context) == 3
    # Methods stay available when no key shadows them.
    assert ev("steps.s.output.values() | list | length", context) == 3


class StepsLike(Mapping[str, Any]):
    """A read-only mapping like the engine's StepsView."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_read_only_mappings_in_the_context() -> None:
    context = {
        "steps": StepsLike({"a": {"status": "ok"}, "items": {"status": "odd"}}),
        "inputs": MappingProxyType({"x": 1}),
    }
    assert ev("steps.a.status == 'ok' and inputs.x == 1", context) is True
    assert ev("steps.items.status", context) == "odd"
    assert ev("steps.get('a').status", context) == "ok"
    assert ev("steps.keys() | list", context) == ["a", "items"]
    assert ev("steps", context) == {"a": {"status": "ok"}, "items": {"status": "odd"}}
    e = err("steps.missing.status", context)
    assert e.kind == "undefined"
    assert "steps has no attribute 'missing'" in e.message


def test_expression_is_reusable_across_contexts() -> None:
    expr = compile_expression("inputs.n * 2")
    assert [expr.evaluate({"inputs": {"n": n}}) for n in range(5)] == [0, 2, 4, 6, 8]
    assert isinstance(expr, Expression)
    assert expr.source == "inputs.n * 2"
    with pytest.raises(AttributeError):
        expr.source = "x"  # type: ignore[misc]  # frozen


def test_bare_expression_may_be_wrapped_in_braces() -> None:
    assert ev("{{ steps.fetch.output.total > 100 }}") is True
    assert ev("  {{ inputs.count }} ") == 3


# --------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------


def test_single_expression_template_returns_native_value(ctx: dict[str, Any]) -> None:
    assert compile_template("{{ steps.fetch.output.count }}").render(ctx) == 7
    assert compile_template("{{ inputs.names }}").render(ctx) == ["a", "b"]
    assert compile_template("{{ steps.fetch.output.meta }}").render(ctx) == {
        "path": "/data/out/report.json"
    }
    assert compile_template("{{ inputs.flag }}").render(ctx) is True
    assert compile_template("{{ steps.fetch.error }}").render(ctx) is None
    # a string stays a string: no literal_eval like Jinja's NativeEnvironment
    assert compile_template("{{ '5' }}").render(ctx) == "5"


def test_mixed_template_renders_a_string(ctx: dict[str, Any]) -> None:
    assert compile_template("total={{ steps.fetch.output.total }}").render(ctx) == "total=150"
    assert compile_template("{{ inputs.count }}{{ inputs.count }}").render(ctx) == "33"
    assert compile_template(" {{ inputs.count }}").render(ctx) == " 3"
    assert compile_template("{{ inputs.count }}\n").render(ctx) == "3\n"  # newline kept
    source = (
        "{% for i in steps.fetch.output.items %}"
        "{{ i.n }}{% if not loop.last %},{% endif %}"
        "{% endfor %}"
    )
    assert compile_template(source).render(ctx) == "1,5,9"
    assert compile_template("{% if inputs.flag %}yes{% else %}no{% endif %}").render(ctx) == "yes"
    assert compile_template("{% set x = inputs.count * 2 %}{{ x }}!").render(ctx) == "6!"


def test_constant_template(ctx: dict[str, Any]) -> None:
    t = compile_template("plain text with } and { and $HOME")
    assert isinstance(t, Template)
    assert t.is_constant
    assert t.render(ctx) == "plain text with } and { and $HOME"
    assert t.names() == frozenset()
    assert t.step_refs() == frozenset()
    assert not compile_template("{{ 1 }}").is_constant


def test_is_template() -> None:
    assert is_template("a {{ b }}")
    assert is_template("{% if x %}{% endif %}")
    assert not is_template("a { b } {# c #}")
    assert not is_template("")


# --------------------------------------------------------------------------------------
# Sandbox escapes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("().__class__.__mro__", "security"),
        ("''.__class__.__mro__[1].__subclasses__()", "security"),
        ("inputs.__class__", "security"),
        ("self.__init__", "security"),
        ("self._TemplateReference__context", "security"),
        ("steps.fetch.output.items.__len__()", "security"),
        ("'{0.__class__}'.format(1)", "security"),
        ("'{:>999999999}'.format(1)", "security"),
        ("'{x}'.format_map(inputs)", "security"),
        ("vars.update({'a': 1})", "security"),
        ("vars.pop('threshold')", "security"),
        ("inputs.names.append('c')", "security"),
        ("inputs.names.clear()", "security"),
        ("'a'.ljust(10**9)", "security"),
        ("'a'.center(10**9)", "security"),
        ("'a'.zfill(10**9)", "security"),
        ("'-'.join(inputs.names)", "security"),
        ("(1).to_bytes(10**9, 'big')", "security"),
        ("'%999999999s' % 1", "security"),
        # globals Jinja ships and we removed
        ("cycler.__init__.__globals__", "undefined"),
        ("lipsum()", "undefined"),
        ("joiner()", "undefined"),
        ("namespace(a=1)", "undefined"),
        ("dict(a=1)", "undefined"),
        ("range.__globals__", "security"),
    ],
)
def test_sandbox_escapes_are_blocked(source: str, kind: str, ctx: dict[str, Any]) -> None:
    e = err(source, ctx)
    assert e.kind == kind, e.message
    assert "\n" not in e.message
    # The immutable sandbox did not let anything change the context.
    assert ctx == make_context()


def test_escape_in_template_is_blocked() -> None:
    assert render_err("x{{ ().__class__.__base__.__subclasses__() }}").kind == "security"
    assert render_err("{{ ''.__class__ }}").kind == "security"


@pytest.mark.parametrize(
    "source",
    [
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "{% call x() %}{% endcall %}",
        "{% filter upper %}x{% endfilter %}",
        "{% set x %}{{ 'a' * 100 }}{% endset %}{{ x }}",
        "{% include 'other.txt' %}",
        "{% import 'x' as y %}",
        "{% from 'x' import y %}",
        "{% extends 'base' %}",
        "{% block b %}{% endblock %}",
        "{% autoescape true %}x{% endautoescape %}",
        "{% for x in [1] recursive %}{{ loop([]) }}{% endfor %}",
    ],
)
def test_unsupported_statements_are_rejected_at_compile_time(source: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_template(source)
    assert info.value.kind == "syntax"
    assert "not supported" in info.value.message


# --------------------------------------------------------------------------------------
# Resource limits
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "'a' * 10**9",
        "10**9 * 'a'",
        "[1] * 10**8",
        "(1, 2) * 10**8",
        "7 ** 10000000",
        "(-3) ** 1000000",
        "(2 ** 6000) * (2 ** 6000)",
        "('x' * 600000) + ('y' * 600000)",
        "[0] * 600000 + [1] * 600000",
        "('x' * 600000) ~ ('y' * 600000)",
        "'x' * 1000 ~ 'y' * 999999",
        "range(10**9)",
        "range(10**30)",
        "range(20000) | list",
        "10.0 ** 400",
        "[[1] * 1000000] * 1000000",
        "([[1] * 1000000] * 1000000) | string",
        "([[1] * 1000000] * 1000000) | tojson",
        "([[1] * 1000000] * 1000000) ~ ''",
        "('a' * 1000) | replace('a', 'b' * 10000)",
        "('ab' * 1000) | replace('', 'x' * 1000)",
        "(['x' * 100000] * 20) | join",
        "([[0] * 1000] * 1001) | sum(start=[])",
        "1.5 | round(-10**9, 'floor')",
        "5 | round(-10**20)",
        "{'a': 1} | tojson(indent=10**9)",
    ],
)
def test_limits_fail_fast(source: str) -> None:
    started = time.perf_counter()
    e = err(source)
    elapsed = time.perf_counter() - started
    assert e.kind == "limit", e.message
    assert elapsed < 1.0, f"{source!r} took {elapsed:.2f}s before failing"


def test_values_below_the_limits_still_work() -> None:
    assert len(ev("'a' * 1000000")) == 1_000_000
    assert ev("2 ** 10000") == 2**10000
    assert ev("range(10000) | list | length") == 10_000
    assert ev("([[0] * 1000] * 1000) | sum(start=[]) | length") == 1_000_000


def test_template_render_length_is_bounded() -> None:
    started = time.perf_counter()
    e = render_err("{% set x = 'a' * 900000 %}{% for i in range(5) %}{{ x }}{% endfor %}")
    assert e.kind == "limit"
    assert str(MAX_RENDER_LENGTH // 1000) in e.message.replace(",", "")
    e = render_err("{{ [[1] * 1000000] * 1000000 }}")
    assert e.kind == "limit"
    assert time.perf_counter() - started < 2.0


def test_template_loop_iterations_are_bounded() -> None:
    started = time.perf_counter()
    e = render_err("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}")
    assert e.kind == "limit"
    assert "loop iterations" in e.message
    assert time.perf_counter() - started < 2.0
    # the budget is per render, not per process
    ok = compile_template(
        "{% for a in range(300) %}{% for b in range(300) %}{% endfor %}{% endfor %}."
    )
    for _ in range(3):
        assert ok.render({}) == "."
    assert MAX_LOOP_ITERATIONS > 300 * 300


# --------------------------------------------------------------------------------------
# Filters and tests
# --------------------------------------------------------------------------------------


def test_unknown_filter_is_a_compile_time_syntax_error() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("inputs.version | foo")
    assert info.value.kind == "syntax"
    assert info.value.message.startswith("unknown filter 'foo'")
    assert "tojson" in info.value.message  # lists what is available
    # Jinja defers this check to runtime inside {% if %}: we do not.
    with pytest.raises(ExpressionError, match="unknown filter 'foo'"):
        compile_template("{% if x %}{{ y | foo }}{% endif %}")
    with pytest.raises(ExpressionError, match="unknown filter 'bar'"):
        compile_expression("1 if x | bar else 2")


@pytest.mark.parametrize(
    "name", ["attr", "format", "indent", "center", "wordwrap", "random", "batch", "safe", "xmlattr"]
)
def test_unsafe_or_unbounded_jinja_filters_are_not_available(name: str) -> None:
    with pytest.raises(ExpressionError, match=f"unknown filter '{name}'"):
        compile_expression(f"'x' | {name}")


def test_filters_named_through_map_are_allow_listed_too() -> None:
    assert err("inputs.names | map('center', 10**9) | list").kind == "type"


def test_unknown_test() -> None:
    with pytest.raises(ExpressionError, match="unknown test 'callable'") as info:
        compile_expression("inputs is callable")
    assert info.value.kind == "syntax"


def test_tojson_is_plain_json() -> None:
    # Jinja's tojson escapes < > & ' for HTML; a workflow wants the data as is.
    assert ev("'<a & b>' | tojson") == '"<a & b>"'
    assert ev("'é' | tojson") == '"é"'


# --------------------------------------------------------------------------------------
# Undefined values
# --------------------------------------------------------------------------------------


def test_typo_is_an_error_not_false() -> None:
    e = err("inputs.verison == '1.2'")
    assert e.kind == "undefined"
    assert "inputs has no attribute 'verison'" in e.message
    assert "did you mean 'version'" in e.message
    assert e.expression == "inputs.verison == '1.2'"


def test_undefined_top_level_name_is_an_error() -> None:
    # Environment.compile_expression would return None here (undefined_to_none=True).
    e = err("inptus")
    assert e.kind == "undefined"
    assert "'inptus' is undefined" in e.message
    assert "did you mean 'inputs'" in e.message
    assert err("not inptus.version").kind == "undefined"


def test_undefined_messages_name_the_path() -> None:
    assert "steps.fetch.output has no attribute 'totl'" in err("steps.fetch.output.totl").message
    assert "steps['b-c'] has no attribute 'x'" in err("steps['b-c'].x > 1").message
    assert "has no item 5 (length 2)" in err("inputs.names[5]").message
    assert err("steps.nope.output").message.startswith("steps has no attribute 'nope'")


def test_undefined_inside_results_and_templates() -> None:
    assert err("[inputs.missing, 1]").kind == "undefined"
    assert err("{'a': inputs.missing}").kind == "undefined"
    assert err("inputs.names | map(attribute='missing') | list").kind == "undefined"
    assert err("inputs.missing | tojson").kind == "undefined"
    assert render_err("x={{ inputs.missing }}").kind == "undefined"
    assert render_err("{{ inputs.missing }}").kind == "undefined"
    assert render_err("{% for x in inputs.missing %}{% endfor %}").kind == "undefined"


def test_defined_and_default_still_work() -> None:
    assert ev("inputs.missing is defined") is False
    assert ev("inputs.version is defined") is True
    assert ev("inputs.missing is undefined") is True
    assert ev("inputs.missing | default(1)") == 1
    assert ev("inputs.missing | d('x')") == "x"
    assert ev("inputs.version | default('x')") == "1.2"
    # a missing intermediate part is fine for these too
    assert ev("inputs.missing.deeper is defined") is False
    assert ev("inputs.missing['k'].deeper | default(2)") == 2
    assert ev("missing_name | default(3)") == 3
    assert ev("inputs.missing is defined and inputs.missing > 1") is False


# --------------------------------------------------------------------------------------
# Errors never escape as anything else
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("1 / 0", "type"),
        ("1 // 0", "type"),
        ("1 < 'a'", "type"),
        ("'a' + 1", "type"),
        ("'abc' | fromjson", "type"),
        ("[1, 'a'] | sort", "type"),
        ("inputs.names.index('zzz')", "type"),
        ("inputs.keys", "type"),  # a method, not a value
        ("3 is divisibleby 0", "type"),
        ("('[' * 100000) | fromjson", "limit"),
    ],
)
def test_evaluation_errors_become_expression_errors(source: str, kind: str) -> None:
    e = err(source)
    assert e.kind == kind, e.message
    assert e.message and "\n" not in e.message
    assert "Traceback" not in e.message
    assert e.__cause__ is None and e.__suppress_context__


@pytest.mark.parametrize(
    "source", ["a >", "x y", "(", "steps.", "steps.a.", "1 +* 2", "", "   ", "{{", "a ? b : c"]
)
def test_syntax_errors(source: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    e = info.value
    assert e.kind == "syntax"
    assert e.message.startswith("syntax error: ")
    assert "print statement" not in e.message
    assert e.expression == source


def test_expression_error_survives_pickling() -> None:
    e = err("inputs.nope")
    copy = pickle.loads(pickle.dumps(e.with_path(("with", 0))))
    assert (copy.message, copy.kind, copy.expression, copy.path) == (
        e.message,
        "undefined",
        "inputs.nope",
        ("with", 0),
    )


def test_template_syntax_error_has_a_line_number() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_template("line one\nline two {{ a > }}\n")
    assert info.value.kind == "syntax"
    assert info.value.lineno == 2


def test_non_string_and_overlong_sources() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(True)  # type: ignore[arg-type]
    assert info.value.kind == "syntax"
    with pytest.raises(ExpressionError) as info:
        compile_expression("1 + " * 50_000 + "1")
    assert info.value.kind == "limit"
    with pytest.raises(ExpressionError) as info:
        compile_expression("(" * 5000 + "1" + ")" * 5000)
    assert info.value.kind in ("limit", "syntax")


def test_secret_values_are_masked_in_error_messages() -> None:
    e = err("inputs.names.index(secrets.token)")
    assert "s3cr3t-T0KEN" not in e.message
    assert "***" in e.message
    e = err("inputs[secrets.token]")
    assert "s3cr3t-T0KEN" not in e.message


# --------------------------------------------------------------------------------------
# Static analysis: names and step references
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "refs"),
    [
        ("steps.a.output", {"a"}),
        ("steps['b-c'].status", {"b-c"}),
        ('steps["x"]', {"x"}),
        ("steps.a", {"a"}),
        ("steps.a.status == 'ok' and steps['b'].output.n > 1", {"a", "b"}),
        (
            "steps.x.output | map(attribute='n') | select('gt', steps.y.output.min) | list",
            {"x", "y"},
        ),
        ("(steps.p.output | default(steps.q.output)) | length", {"p", "q"}),
        ("steps.get('g').status", {"g"}),
        ("steps[inputs.name].status", set()),  # dynamic: not a static reference
        ("steps | length", set()),
        ("inputs.steps.a", set()),
    ],
)
def test_step_refs(source: str, refs: set[str]) -> None:
    assert compile_expression(source).step_refs() == frozenset(refs)


def test_names() -> None:
    assert compile_expression("steps.a.output.total > inputs.min").names() == {"steps", "inputs"}
    assert compile_expression("inputs").names() == {"inputs"}
    assert compile_expression("range(3) | list").names() == frozenset()  # globals excluded
    assert compile_expression("[x, y | default(vars.z)]").names() == {"x", "y", "vars"}


def test_template_names_and_refs() -> None:
    t = compile_template(
        "{% for s in steps.a.output %}{{ s.n }} {{ loop.index }}{% endfor %}"
        "{% set local = inputs.x %}{{ local }} {{ steps['b'].status }}"
    )
    assert t.names() == {"steps", "inputs"}
    assert t.step_refs() == {"a", "b"}
    t = compile_template("{{ steps.c.output }}")
    assert t.names() == {"steps"}
    assert t.step_refs() == {"c"}
    assert compile_template("echo {{ secrets.token }}").names() == {"secrets"}


# --------------------------------------------------------------------------------------
# with: structures
# --------------------------------------------------------------------------------------


WITH: dict[str, Any] = {
    "url": "https://example.test/{{ inputs.version }}/x",
    "headers": {"X-Count": "{{ steps.fetch.output.count }}", "Accept": "application/json"},
    "args": [1, "{{ inputs.names }}", {"deep": "{% if inputs.flag %}yes{% endif %}"}, None],
    "timeout": 5.5,
    "enabled": False,
    "literal": "no {braces} here",
}


def test_compile_value_renders_nested_structures(ctx: dict[str, Any]) -> None:
    compiled = compile_value(WITH)
    assert isinstance(compiled, CompiledValue)
    assert compiled.has_templates
    assert compiled.render(ctx) == {
        "url": "https://example.test/1.2/x",
        "headers": {"X-Count": 7, "Accept": "application/json"},
        "args": [1, ["a", "b"], {"deep": "yes"}, None],
        "timeout": 5.5,
        "enabled": False,
        "literal": "no {braces} here",
    }
    assert compiled.names() == {"inputs", "steps"}
    assert compiled.step_refs() == {"fetch"}


def test_compile_value_lists_templates_with_paths() -> None:
    found = {path: t.source for path, t in compile_value(WITH).templates()}
    assert found == {
        ("url",): WITH["url"],
        ("headers", "X-Count"): WITH["headers"]["X-Count"],
        ("args", 1): "{{ inputs.names }}",
        ("args", 2, "deep"): "{% if inputs.flag %}yes{% endif %}",
    }


def test_compile_value_returns_fresh_containers(ctx: dict[str, Any]) -> None:
    compiled = compile_value({"a": {"b": [1, 2]}, "c": "{{ inputs.count }}"})
    first = compiled.render(ctx)
    first["a"]["b"].append(3)
    assert compiled.render(ctx) == {"a": {"b": [1, 2]}, "c": 3}


def test_compile_value_scalars_and_constants(ctx: dict[str, Any]) -> None:
    assert compile_value("{{ inputs.count }}").render(ctx) == 3
    assert compile_value(42).render(ctx) == 42
    constant = compile_value({"a": ["x", 1]})
    assert not constant.has_templates
    assert list(constant.templates()) == []
    assert constant.render(ctx) == {"a": ["x", 1]}


def test_compile_value_errors_carry_the_path(ctx: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_value({"a": [1, {"b": "{{ oops( }}"}]})
    assert info.value.kind == "syntax"
    assert info.value.path == ("a", 1, "b")
    with pytest.raises(ExpressionError) as info:
        compile_value({"x": {"y": "{{ inputs.nope }}"}}).render(ctx)
    assert info.value.kind == "undefined"
    assert info.value.path == ("x", "y")


# --------------------------------------------------------------------------------------
# truthy
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        (0, False),
        (0.0, False),
        ("", False),
        ([], False),
        ({}, False),
        (True, True),
        (1, True),
        ("false", True),  # a non-empty string is true, whatever it says
        ([0], True),
        ({"a": 0}, True),
    ],
)
def test_truthy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_condition_round_trip(ctx: dict[str, Any]) -> None:
    assert truthy(ev("steps.fetch.output.items | selectattr('ok') | list", ctx))
    assert not truthy(ev("vars.empty", ctx))


# --------------------------------------------------------------------------------------
# Robustness, performance, import cost
# --------------------------------------------------------------------------------------

_JINJA_BITS = st.sampled_from(
    [
        "steps", "inputs", "vars", ".", "[", "]", "(", ")", "{", "}", "{{", "}}", "{%", "%}",
        "|", "~", "+", "*", "**", "%", "/", "//", "-", " ", "'", '"', "a", "1", "0", "9" * 20,
        ",", ":", " if ", " else ", " and ", " or ", " not ", " in ", " is ", "defined",
        "__class__", "_", "range", "self", "loop", "length", "join", "replace", "tojson",
        "fromjson", "default", "map", "sum", "round", "for", "set", "endfor", "=", "==",
        "<", ">", "\n", "\\", "fetch", "output", "items", "b-c",
    ]
)  # fmt: skip
_SOURCES = st.one_of(st.text(max_size=60), st.lists(_JINJA_BITS, max_size=25).map("".join))


def _must_only_raise_expression_error(call: Any) -> None:
    try:
        call()
    except ExpressionError as e:
        assert e.kind in ("syntax", "undefined", "type", "limit", "security")
        assert isinstance(e.message, str) and "\n" not in e.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=_SOURCES)
def test_random_text_only_ever_raises_expression_error(source: str) -> None:
    context = make_context()

    def expression() -> None:
        compile_expression(source).evaluate(context)

    def template() -> None:
        compile_template(source).render(context)

    _must_only_raise_expression_error(expression)
    _must_only_raise_expression_error(template)


def test_simple_condition_is_cheap(ctx: dict[str, Any]) -> None:
    expr = compile_expression("steps.fetch.output.total > 100 and inputs.flag")
    expr.evaluate(ctx)
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        expr.evaluate(ctx)
    per_call = (time.perf_counter() - started) / n
    # ~3 us on a laptop; a generous bound that still catches a per-call compile.
    assert per_call < 200e-6, f"{per_call * 1e6:.1f} us per evaluation"


def test_import_is_light_and_environment_lazy() -> None:
    code = (
        "import sys, wfctl.expressions, wfctl.expressions._environment as m\n"
        "assert m.environment.cache_info().currsize == 0, 'environment built at import'\n"
        "heavy = {'langgraph', 'httpx', 'jsonschema', 'yaml', 'rich', 'jinja2.meta'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
