"""Issue 15: a whole evaluation is bounded in time and allocation, not only each operation;
constant operands over a limit are found without running the expression."""

from __future__ import annotations

import pytest

from wfctl.expressions import (
    MAX_ALLOCATION,
    ExpressionError,
    compile_expression,
    compile_template,
    evaluation_time_limit,
)
from wfctl.expressions.analysis import analyse

# Each stays under every per-operation cap (a million characters, 100,000 loop iterations)
# yet, on today's main, ran for minutes or took gigabytes.
_MEMORY_HOG = (
    "{% set s = 'a' * 1000000 %}{% set l = [s, s, s, s, s, s, s, s, s, s] %}"
    "{{ [l, l, l, l, l, l, l, l, l, l] | map('map', 'upper') | map('list') | list | length }}"
)
_CPU_HOG = (
    "{% set s = 'a' * 1000000 %}"
    "{% for i in range(10000) %}{% if s.count('b') %}x{% endif %}{% endfor %}"
)


def _render_error(source: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_template(source).render({})
    return info.value


def test_allocation_over_a_whole_evaluation_is_bounded() -> None:
    error = _render_error(_MEMORY_HOG)
    assert error.kind == "limit"
    assert f"produced more than {MAX_ALLOCATION:,}" in error.message


def test_repeating_references_to_a_long_value_counts_the_value() -> None:
    error = _render_error("{{ (['a' * 1000000] * 1000) | length }}")
    assert error.kind == "limit"
    assert "repetition size" in error.message
    # Small repeats of short values are still fine.
    assert compile_expression("(['ab'] * 1000) | join | length").evaluate({}) == 2000


def test_evaluation_time_is_bounded_by_the_time_limit() -> None:
    with evaluation_time_limit(0.2), pytest.raises(ExpressionError) as info:
        compile_template(_CPU_HOG).render({})
    assert info.value.kind == "limit"
    assert "evaluation took longer than 0.2 s" in info.value.message


def test_time_limit_is_restored_after_the_block() -> None:
    with evaluation_time_limit(0.2):
        pass
    with evaluation_time_limit(None):
        # None keeps the default cap: a cheap loop runs to its end.
        text = compile_template("{% for i in range(1000) %}{{ i % 7 }}{% endfor %}").render({})
    assert len(text) == 1000


def test_metered_filters_keep_working() -> None:
    expr = compile_expression("xs | map(attribute='a') | select('odd') | sum")
    assert expr.evaluate({"xs": [{"a": n} for n in range(10)]}) == 25
    assert compile_expression("'a,b' | replace(',', ';') | upper").evaluate({}) == "A;B"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ range(100000) | list }}", "range size"),
        ("{{ 'a' * 10**9 }}", "repetition length"),
        ("{{ 7 ** 10000000 }}", "integer size in bits"),
        ("{{ 'ab' * 600000 }}", "repetition length"),
    ],
)
def test_constant_operands_over_a_limit_are_found_statically(source: str, expected: str) -> None:
    limits = analyse(source, bare=False).limits
    assert limits and expected in limits[0], limits


def test_operands_from_the_context_are_not_judged_statically() -> None:
    assert analyse("{{ range(inputs.n) | list }}", bare=False).limits == ()
    assert analyse("'a' * 10", bare=True).limits == ()
