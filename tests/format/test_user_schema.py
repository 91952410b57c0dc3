"""User-schema patterns run by RE2 in linear time (issue 15): a backtracking `^(a+)+$`
took 45 s on 31 characters in Python's `re`."""

from __future__ import annotations

import pytest

from wfctl.format.user_schema import pattern_problem, pattern_search, user_validator


def test_a_catastrophic_pattern_is_matched_by_re2() -> None:
    assert not pattern_search("^(a+)+$", "a" * 5000 + "b")
    assert pattern_search("^(a+)+$", "a" * 5000)


def test_lookaround_and_backreferences_are_problems() -> None:
    for pattern in ("^(?=a)a+$", r"(a)\1", "(?<!x)y"):
        problem = pattern_problem(pattern)
        assert problem is not None and "linear time" in problem, pattern
    assert pattern_problem(r"^\d+\.\d+\.\d+$") is None


def test_the_validator_checks_pattern_and_pattern_properties_with_re2() -> None:
    schema = {
        "type": "object",
        "properties": {"v": {"type": "string", "pattern": "^(a+)+$"}},
        "patternProperties": {"^x_(a+)+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    validator = user_validator(schema)
    assert not list(validator.iter_errors({"v": "aaa", "x_aa": 1}))
    messages = [e.message for e in validator.iter_errors({"v": "a" * 40 + "b", "x_aa": "no"})]
    assert any("does not match" in m for m in messages), messages
    assert any("is not of type 'integer'" in m for m in messages), messages
    extra = [e.message for e in validator.iter_errors({"zzz": 1})]
    assert extra == ["Additional properties are not allowed ('zzz' was unexpected)"]


@pytest.mark.parametrize("pattern", ["^(?=a)a$", r"(a)\1"])
def test_an_unsupported_pattern_fails_validation_instead_of_hanging(pattern: str) -> None:
    errors = list(user_validator({"pattern": pattern}).iter_errors("aa"))
    assert len(errors) == 1 and "linear time" in errors[0].message
