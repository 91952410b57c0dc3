"""Tests for wfctl.document.loader: YAML -> JSON data + source map, and every rejection."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wfctl.document import loader
from wfctl.document.loader import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    LoadedDocument,
    Path_,
    format_path,
    load_file,
    load_text,
)
from wfctl.format.diagnostics import Diagnostic, WorkflowError

DATA = Path(__file__).parents[1] / "data" / "loader"
REALISTIC = DATA / "realistic.yaml"


def diagnostics(text: str | bytes) -> list[Diagnostic]:
    with pytest.raises(WorkflowError) as info:
        load_text(text, "wf.yaml")
    assert info.value.diagnostics, "WorkflowError without diagnostics"
    return info.value.diagnostics


def codes(text: str | bytes) -> list[tuple[str, int, int]]:
    return [(d.code, d.line, d.col) for d in diagnostics(text)]


def only(text: str | bytes) -> Diagnostic:
    found = diagnostics(text)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def realistic() -> LoadedDocument:
    return load_file(REALISTIC, "realistic.yaml")


# ------------------------------------------------------------------ data and source map


def test_realistic_workflow_data(realistic: LoadedDocument) -> None:
    data = realistic.data
    assert realistic.file == "realistic.yaml"
    assert realistic.text == REALISTIC.read_text(encoding="utf-8")
    assert data["version"] == "1.10"
    assert data["tags"] == ["release", "ci"]
    assert data["retry_policy"] == {
        "max_attempts": 3,
        "backoff": "exponential",
        "initial_delay": 0.5,
    }
    assert data["steps"][0]["with"]["env"] == {"CHANNEL": "{{ inputs.channel }}", "my key": "on"}
    assert data["steps"][1]["retry_policy"] == data["retry_policy"]
    assert data["steps"][1]["with"]["command"] == "set -e\npytest -q\n"
    assert data["steps"][2]["with"]["message"] == "Ship {{ inputs.channel }}?"
    assert data["steps"][2]["timeout"] is None
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize(
    ("path", "pos"),
    [
        ((), (2, 1)),
        (("workflow_id",), (2, 14)),
        (("name",), (3, 7)),
        (("tags", 1), (5, 17)),
        (("retry_policy", "max_attempts"), (8, 17)),
        (("inputs", "channel", "enum", 1), (15, 22)),
        (("steps",), (19, 3)),
        (("steps", 0), (19, 5)),
        (("steps", 0, "with", "command", 1), (22, 23)),
        (("steps", 0, "with", "env", "my key"), (23, 56)),
        (("steps", 1, "with", "command"), (29, 16)),
        (("steps", 2, "with", "approvers", 1), (40, 11)),
        (("steps", 2, "timeout"), (41, 13)),
    ],
)
def test_value_positions(realistic: LoadedDocument, path: Path_, pos: tuple[int, int]) -> None:
    assert realistic.source_map.has(path)
    assert realistic.source_map.value_pos(path) == pos


@pytest.mark.parametrize(
    ("path", "pos"),
    [
        (("workflow_id",), (2, 1)),
        (("retry_policy", "initial_delay"), (10, 3)),
        (("steps", 0, "with", "env", "my key"), (23, 46)),
        (("steps", 2, "timeout"), (41, 5)),
        # Sequence items have no key: the item's own position.
        (("steps", 2, "with", "approvers", 0), (39, 11)),
    ],
)
def test_key_positions(realistic: LoadedDocument, path: Path_, pos: tuple[int, int]) -> None:
    assert realistic.source_map.key_pos(path) == pos


@pytest.mark.parametrize(
    ("path", "pos"),
    [
        (("steps", 2, "with", "nope"), (36, 7)),
        (("steps", 2, "with", "nope", 3, "deeper"), (36, 7)),
        (("steps", 7), (19, 3)),
        (("no_such_key",), (2, 1)),
    ],
)
def test_missing_path_falls_back_to_nearest_ancestor(
    realistic: LoadedDocument, path: Path_, pos: tuple[int, int]
) -> None:
    assert not realistic.source_map.has(path)
    assert realistic.source_map.value_pos(path) == pos
    assert realistic.source_map.key_pos(path) == pos


def test_alias_root_points_at_alias_and_inner_paths_at_definition(
    realistic: LoadedDocument,
) -> None:
    sm = realistic.source_map
    assert sm.value_pos(("steps", 1, "retry_policy")) == (26, 19)
    assert sm.key_pos(("steps", 1, "retry_policy")) == (26, 5)
    assert sm.value_pos(("steps", 1, "retry_policy", "max_attempts")) == (8, 17)
    assert sm.key_pos(("steps", 1, "retry_policy", "backoff")) == (9, 3)


def test_alias_values_are_copies_not_shared() -> None:
    doc = load_text("a: &x {k: [1]}\nb: *x\nc: *x\n")
    doc.data["b"]["k"].append(2)
    assert doc.data["a"] == {"k": [1]}
    assert doc.data["c"] == {"k": [1]}


def test_alias_of_scalar_and_alias_as_key() -> None:
    doc = load_text("a: &name step_one\n*name : 2\nb: [*name]\n")
    assert doc.data == {"a": "step_one", "step_one": 2, "b": ["step_one"]}
    assert doc.source_map.key_pos(("step_one",)) == (2, 1)
    assert doc.source_map.value_pos(("b", 0)) == (3, 5)


def test_repeated_strings_are_one_object() -> None:
    # A 100k-step file repeats its keys, actions and the ids named in dependencies: one
    # object per distinct text keeps them from taking memory (and cache) once per use.
    doc = load_text(
        "steps:\n"
        "  - {step_id: a, action: noop}\n"
        "  - {step_id: b, action: noop, dependencies: [a]}\n"
        "  - {step_id: c, action: noop, dependencies: [a, b]}\n"
    )
    first, second, third = doc.data["steps"]
    assert second["action"] is first["action"] == "noop"
    assert third["dependencies"][0] is second["dependencies"][0] is first["step_id"] == "a"
    assert next(iter(third)) is next(iter(first)) == "step_id"
    assert doc.data == {
        "steps": [
            {"step_id": "a", "action": "noop"},
            {"step_id": "b", "action": "noop", "dependencies": ["a"]},
            {"step_id": "c", "action": "noop", "dependencies": ["a", "b"]},
        ]
    }


def test_json_path_positions_with_wide_characters() -> None:
    # Columns count code points, not UTF-8 bytes.
    doc = load_text("name: éé😀\nlist: [é, 😀, zz]\n")
    assert doc.source_map.value_pos(("list", 2)) == (2, 14)


def test_crlf_line_endings() -> None:
    doc = load_text("a: 1\r\nb:\r\n  c: x\r\n")
    assert doc.data == {"a": 1, "b": {"c": "x"}}
    assert doc.source_map.value_pos(("b", "c")) == (3, 6)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ((), ""),
        (("steps",), "steps"),
        (("steps", 3, "retry_policy"), "steps[3].retry_policy"),
        (("steps", 0, "with", "my key"), 'steps[0].with["my key"]'),
        (
            ("sla_targets", "step_max_duration", "fetch-data"),
            'sla_targets.step_max_duration["fetch-data"]',
        ),
        ((0, "a"), "[0].a"),
        (("my key", "b"), '["my key"].b'),
        (("a", 'say "hi"'), 'a["say \\"hi\\""]'),
        (("a", "1x"), 'a["1x"]'),
    ],
)
def test_format_path(path: Path_, expected: str) -> None:
    assert format_path(path) == expected


# --------------------------------------------------------------------- scalar resolution


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("True", True),
        ("FALSE", False),
        ("~", None),
        ("null", None),
        ("NULL", None),
        ("", None),
        ("12", 12),
        ("-3", -3),
        ("+7", 7),
        ("0", 0),
        ("0x1F", 31),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("-.5", -0.5),
        ("1.0e3", 1000.0),
        ("1.5E-2", 0.015),
        ("22:22", "22:22"),
        ("1:20:30", "1:20:30"),
        ("1.2.3", "1.2.3"),
        ("tRuE", "tRuE"),
        ("'yes'", "yes"),
        ('"no"', "no"),
        ("'2026-11-24'", "2026-11-24"),
        ('".nan"', ".nan"),
        ("'0755'", "0755"),
        ("'1_000'", "1_000"),
        ("!!str 12", "12"),
        ("! 12", "12"),
        ("!!int '12'", 12),
        ("!!float 1", 1.0),
        ("!!null ''", None),
        ("yes please", "yes please"),
        ("2026-11-24 is a date", "2026-11-24 is a date"),
        ("00", 0),
        ("10:00", "10:00"),
    ],
)
def test_scalar_resolution(text: str, expected: Any) -> None:
    value = load_text(f"v: {text}\n").data["v"]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("yes", "yaml-ambiguous-bool"),
        ("No", "yaml-ambiguous-bool"),
        ("ON", "yaml-ambiguous-bool"),
        ("off", "yaml-ambiguous-bool"),
        ("1e3", "yaml-ambiguous-number"),
        ("0o17", "yaml-ambiguous-number"),
        ("2026-11-24", "yaml-timestamp"),
        ("2026-11-24T10:00:00Z", "yaml-timestamp"),
        ("2026-11-24 10:00:00.5 +01:00", "yaml-timestamp"),
        (".nan", "yaml-non-finite"),
        (".Inf", "yaml-non-finite"),
        ("-.inf", "yaml-non-finite"),
        ("1e999", "yaml-non-finite"),
        ("0755", "yaml-ambiguous-octal"),
        ("-010", "yaml-ambiguous-octal"),
        ("09", "yaml-ambiguous-octal"),
        ("1_000", "yaml-ambiguous-number"),
        ("0b101", "yaml-ambiguous-number"),
    ],
)
def test_yaml11_readings_are_reported_at_the_value(text: str, code: str) -> None:
    diag = only(f"workflow_id: x\nsteps:\n  - with:\n      flag: {text}\n")
    assert (diag.code, diag.line, diag.col) == (code, 4, 13)
    assert diag.path == "steps[0].with.flag"
    assert diag.file == "wf.yaml"
    assert diag.hint


def test_ambiguous_bool_message_and_hint() -> None:
    diag = only("enabled: yes\n")
    assert diag.message == "unquoted 'yes' is a boolean in YAML 1.1 but a string here"
    assert diag.hint == 'quote it ("yes") or write true/false'


def test_non_finite_message_mentions_json() -> None:
    assert "JSON has no NaN/Infinity" in only("limit: .inf\n").message


def test_huge_integers() -> None:
    assert codes("a: " + "1" * 5000 + "\n") == [("number-too-large", 1, 4)]
    assert codes("a: 0" + "7" * 5000 + "\n") == [("number-too-large", 1, 4)]
    assert load_text("a: 0x" + "f" * 5000 + "\n").data["a"] == 16**5000 - 1
    assert load_text("a: " + "9" * 4000 + "\n").data["a"] == 10**4000 - 1


def test_octal_message_gives_both_readings() -> None:
    assert "octal (493)" in only("mode: 0755\n").message
    assert "decimal 755" in only("mode: 0755\n").message


def test_yaml11_readings_in_sequences_are_reported() -> None:
    assert codes("a:\n  - yes\n  - [no, 2026-01-01]\n") == [
        ("yaml-ambiguous-bool", 2, 5),
        ("yaml-ambiguous-bool", 3, 6),
        ("yaml-timestamp", 3, 10),
    ]


def test_yaml11_lookalike_keys_are_plain_strings() -> None:
    doc = load_text("on: push\nyes: 1\nno: 2\n2026-11-24: d\n.nan: x\ny: 3\n")
    assert doc.data == {"on": "push", "yes": 1, "no": 2, "2026-11-24": "d", ".nan": "x", "y": 3}


def test_quoted_yaml11_lookalikes_are_strings() -> None:
    doc = load_text("a: 'yes'\nb: \"2026-11-24\"\nc: '.nan'\nd: \"0755\"\ne: 'off'\n")
    assert doc.data == {"a": "yes", "b": "2026-11-24", "c": ".nan", "d": "0755", "e": "off"}


def test_all_scalar_problems_are_collected_and_sorted() -> None:
    assert codes("a: yes\nb: ok\nc: .nan\nd: [on, 0755]\n") == [
        ("yaml-ambiguous-bool", 1, 4),
        ("yaml-non-finite", 3, 4),
        ("yaml-ambiguous-bool", 4, 5),
        ("yaml-ambiguous-octal", 4, 9),
    ]


@pytest.mark.parametrize(
    ("text", "pos"),
    [
        ("c: !foo x\n", (1, 4)),
        ("c: !!binary aGk=\n", (1, 4)),
        ("c: !!timestamp 2026-01-01\n", (1, 4)),
        ("c: !!set {x}\n", (1, 4)),
        ("c: !!bool yes\n", (1, 4)),
        ("c: !!int 1.5\n", (1, 4)),
    ],
)
def test_unsupported_tags(text: str, pos: tuple[int, int]) -> None:
    diag = only(text)
    assert (diag.code, diag.line, diag.col) == ("unsupported-tag", *pos)


# ---------------------------------------------------------------------------- rejections


def test_duplicate_key_points_at_second_key() -> None:
    diag = only("workflow_id: a\nsteps:\n  - step_id: x\n    name: b\n    step_id: c\n")
    assert (diag.code, diag.line, diag.col) == ("duplicate-key", 5, 5)
    assert diag.message == "duplicate key 'step_id' (first defined at line 3)"
    assert diag.path == "steps[0].step_id"


def test_duplicate_key_via_alias_and_every_duplicate_reported() -> None:
    assert codes("a: &k a\n*k : 2\nb: 1\nb: 2\nb: 3\n") == [
        ("duplicate-key", 2, 1),
        ("duplicate-key", 4, 1),
        ("duplicate-key", 5, 1),
    ]


@pytest.mark.parametrize(
    ("text", "pos"),
    [
        ("a: 1\n1: a\n", (2, 1)),
        ("a: 1\ntrue: b\n", (2, 1)),
        ("a: 1\nnull: c\n", (2, 1)),
        ("a: 1\n~: c\n", (2, 1)),
        ("a: 1\n1.5: c\n", (2, 1)),
        ("a: 1\n0755: c\n", (2, 1)),
        ("a: 1\n? [x, z]\n: c\n", (2, 3)),
        ("a: 1\n? {x: 1}\n: c\n", (2, 3)),
        ("a: {[x]: 1}\n", (1, 5)),
        ("a: &n 1\nb: {*n : 2}\n", (2, 5)),
    ],
)
def test_non_string_keys(text: str, pos: tuple[int, int]) -> None:
    diag = only(text)
    assert (diag.code, diag.line, diag.col) == ("non-string-key", *pos)


def test_non_string_key_message_quotes_the_key() -> None:
    diag = only("a:\n  200: ok\n")
    assert diag.message == "mapping key '200' is an integer; keys must be strings"
    assert diag.hint == 'quote it ("200")'
    assert diag.path == "a"


def test_quoted_keys_that_look_like_numbers_are_fine() -> None:
    assert load_text("'1': a\n\"true\": b\n").data == {"1": "a", "true": "b"}


def test_merge_key_rejected() -> None:
    text = "base: &b {x: 1}\nstep:\n  <<: *b\n  y: 2\n"
    diag = only(text)
    assert (diag.code, diag.line, diag.col) == ("merge-key-unsupported", 3, 3)


def test_quoted_merge_key_is_a_plain_key() -> None:
    assert load_text("'<<': 1\n").data == {"<<": 1}


def test_billion_laughs_rejected() -> None:
    with pytest.raises(WorkflowError) as info:
        load_file(DATA / "billion_laughs.yaml")
    [diag] = info.value.diagnostics
    assert diag.code == "alias-limit"
    # Fails on the alias that pushes the expansion over the limit: the second *e.
    assert (diag.line, diag.col) == (8, 12)
    assert diag.file.endswith("billion_laughs.yaml")


def test_too_many_aliases() -> None:
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    diag = only(text)
    assert diag.code == "alias-limit"
    assert diag.line == 2
    assert diag.col == 5 + 4 * MAX_ALIASES


def test_aliases_within_limits_are_fine() -> None:
    text = "a: &a [1, 2]\nb: [" + ", ".join(["*a"] * MAX_ALIASES) + "]\n"
    assert len(load_text(text).data["b"]) == MAX_ALIASES


@pytest.mark.parametrize(
    ("text", "pos"),
    [
        ("a: &x [*x]\n", (1, 8)),
        ("a: &x {b: *x}\n", (1, 11)),
        ("a: &x\n  b:\n    - c: *x\n", (3, 10)),
    ],
)
def test_recursive_alias(text: str, pos: tuple[int, int]) -> None:
    diag = only(text)
    assert (diag.code, diag.line, diag.col) == ("alias-limit", *pos)


def test_undefined_alias_and_duplicate_anchor() -> None:
    assert codes("a: *nope\n") == [("yaml-syntax", 1, 4)]
    assert codes("a: &x 1\nb: &x 2\n") == [("yaml-syntax", 2, 4)]


def test_nesting_at_the_limit_is_fine() -> None:
    text = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    load_text(text)


def test_too_deep_flow() -> None:
    text = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"
    assert codes(text) == [("too-deep", 1, 3 + MAX_DEPTH)]


def test_too_deep_block() -> None:
    text = "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, MAX_DEPTH + 1))
    assert codes(text) == [("too-deep", MAX_DEPTH + 1, 2 * MAX_DEPTH + 1)]


def test_too_deep_through_alias() -> None:
    deep = "[" * 40 + "]" * 40
    text = f"a: &d {deep}\nb: {'[' * 30}*d{']' * 30}\n"
    assert codes(text) == [("too-deep", 2, 34)]


def test_extremely_deep_nesting_fails_fast_without_crashing() -> None:
    # libyaml's composer recurses in C (segfault near 100k levels) and its flow parser
    # is quadratic in depth; the loader must stop at MAX_DEPTH before either matters.
    # libyaml >= 0.2.6 has its own limit of 1000 that its scanner may hit first.
    n = 1_000_000
    [(code, line, col)] = codes("a: " + "[" * n + "]" * n)
    assert (code, line) == ("too-deep", 1)
    assert col in (3 + MAX_DEPTH, 3 + 1000)
    assert codes("a: " + "{a: " * n + "1" + "}" * n)[0][0] == "too-deep"


def test_invalid_utf8_position() -> None:
    text = "a: 1\nb: 'é\xe9'\n".encode("latin-1")
    diag = only("a: 1\nbé: x\nc: é".encode() + b"\xff\n")
    assert (diag.code, diag.line, diag.col) == ("encoding", 3, 5)
    assert "0xff" in diag.message
    diag = only(text)
    assert (diag.code, diag.line, diag.col) == ("encoding", 2, 5)


def test_utf16_file_is_an_encoding_error() -> None:
    assert codes("a: 1\n".encode("utf-16")) == [("encoding", 1, 1)]


@pytest.mark.parametrize(
    ("text", "pos"),
    [
        ("a: b\x00c\n", (1, 5)),
        ("a: 1\nbé: '\x07'\n", (2, 6)),
        ("a: \x7f\n", (1, 4)),
        ("a: 1\nb: \ud800\n", (2, 4)),
        ("a: \ufffe\n", (1, 4)),
    ],
)
def test_control_characters_rejected(text: str, pos: tuple[int, int]) -> None:
    diag = only(text)
    assert (diag.code, diag.line, diag.col) == ("encoding", *pos)


def test_bom_is_accepted_and_does_not_shift_columns() -> None:
    for text in ("\ufeffa: 1\nb: x\n".encode(), "\ufeffa: 1\nb: x\n"):
        doc = load_text(text)
        assert doc.data == {"a": 1, "b": "x"}
        assert doc.source_map.key_pos(("a",)) == (1, 1)
        assert doc.source_map.value_pos(("a",)) == (1, 4)
        assert not doc.text.startswith("\ufeff")
    assert codes("\ufeffa: yes\n".encode()) == [("yaml-ambiguous-bool", 1, 4)]


@pytest.mark.parametrize(
    ("text", "pos"),
    [
        ("a:\n\tb: 1\n", (2, 1)),
        ("a:\n  \tb: 1\n", (2, 3)),
        ("\ta: 1\n", (1, 1)),
        ("a:\n\t- 1\n", (2, 1)),
        ("a: 1\n\t# comment\nb: 2\n", (2, 1)),
        ("a: 1\n \t\nb: 2\n", (2, 2)),
        ("a: |\n\tx\n", (2, 1)),
        ("a: [\n\t1, 2]\n", (2, 1)),
    ],
)
def test_tab_in_indentation(text: str, pos: tuple[int, int]) -> None:
    diag = only(text)
    assert (diag.code, diag.line, diag.col) == ("tab-indent", *pos)
    assert diag.hint == "indent with spaces"


def test_every_tab_indented_line_is_reported_but_not_block_content() -> None:
    assert codes("a:\n\tb: 1\n\tc: 2\n") == [("tab-indent", 2, 1), ("tab-indent", 3, 1)]
    # The parse stops at line 2; lines 4-5 are block-scalar content, so not reported.
    text = "a:\n\tb: 1\nc: |\n  \tmake\n  \tmake install\nd:\n\t- x\n"
    assert codes(text) == [("tab-indent", 2, 1), ("tab-indent", 7, 1)]
    # A file indented with tabs throughout: block scalar lines are tab-indented too.
    text = "a:\n\tb: |\n\t\tx\n\t\ty\n\tc: 2\n"
    assert [line for _, line, _ in codes(text)] == [2, 3, 4, 5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: |\n  x\n  \ty\n", "x\n\ty\n"),
        ("a: |\n  cat <<-EOF\n  \tbody\n  \tEOF\n", "cat <<-EOF\n\tbody\n\tEOF\n"),
        ('a: "foo\n\tbar"\n', "foo bar"),
        ("a: foo\n \tbar\n", "foo bar"),
        ("a: x\tz\n", "x\tz"),
        ("a:\t1\n", 1),
    ],
)
def test_tabs_that_are_content_or_separators_are_fine(text: str, expected: Any) -> None:
    assert load_text(text).data == {"a": expected}


def test_block_scalar_starting_with_a_tab_needs_an_indentation_indicator() -> None:
    # libyaml rejects this (the pure-Python parser accepts it); "|2" makes both agree.
    diag = only("s: |\n  \tcontent\n")
    assert (diag.code, diag.line, diag.col) == ("tab-indent", 2, 3)
    assert diag.hint is not None
    assert '"|2"' in diag.hint
    assert load_text("s: |2\n  \tcontent\n").data == {"s": "\tcontent\n"}


@pytest.mark.parametrize("prefix", ["", "s: |\n  first\n  \tcontent\n"])
def test_tab_where_a_token_is_expected_says_so(prefix: str) -> None:
    diag = only(prefix + "a:\n  -\t- 1\n  - x\n")
    assert diag.code == "yaml-syntax"
    assert "tab" in diag.message
    assert diag.hint == "use spaces instead of tabs"


@pytest.mark.parametrize(
    ("text", "pos"),
    [
        ("a: 1\n---\nb: 2\n", (2, 1)),
        ("---\na: 1\n---\nb: 2\n", (3, 1)),
        ("a: 1\n--- yes\n", (2, 1)),
        ("a: 1\n...\n---\nb: 2\n", (3, 1)),
        ("a: 1\n---\n", (2, 1)),
    ],
)
def test_multiple_documents(text: str, pos: tuple[int, int]) -> None:
    assert codes(text) == [("multiple-documents", *pos)]


def test_problems_in_the_first_document_are_kept() -> None:
    assert codes("a: yes\n---\nb: 2\n") == [
        ("yaml-ambiguous-bool", 1, 4),
        ("multiple-documents", 2, 1),
    ]


def test_document_after_end_marker_without_start_is_a_syntax_error() -> None:
    assert codes("a: 1\n...\nb: 2\n") == [("yaml-syntax", 3, 1)]


def test_single_explicit_document_is_fine() -> None:
    assert load_text("%YAML 1.1\n---\na: 1\n...\n").data == {"a": 1}


@pytest.mark.parametrize(
    ("text", "kind", "pos"),
    [
        ("- a\n- b\n", "a list", (1, 1)),
        ("# c\n[a]\n", "a list", (2, 1)),
        ("hello\n", "a string", (1, 1)),
        ("'a: b'\n", "a string", (1, 1)),
        ("42\n", "an integer", (1, 1)),
        ("4.5\n", "a number", (1, 1)),
        ("true\n", "a boolean", (1, 1)),
        ('""\n', "a string", (1, 1)),
    ],
)
def test_top_level_not_a_mapping(text: str, kind: str, pos: tuple[int, int]) -> None:
    diag = only(text)
    assert (diag.code, diag.line, diag.col) == ("not-mapping", *pos)
    assert f"top level is {kind}" in diag.message


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "# only a comment\n", "---\n", "--- # c\n...\n", "null\n", "~\n", b"", "\ufeff"],
)
def test_empty(text: str | bytes) -> None:
    assert codes(text) == [("empty", 1, 1)]


@pytest.mark.parametrize(
    ("text", "pos", "needle"),
    [
        ("a: [1, 2\nb: 3\n", (2, 2), "while parsing a flow sequence started at line 1"),
        ("a: b: c\n", (1, 5), "mapping values are not allowed"),
        ("a: 1\n b: 2\n", (2, 3), "mapping values are not allowed"),
        ("a:\n  - x\n  y: 1\n", (3, 3), "did not find expected '-'"),
        ("a: 'unterminated\n", (2, 1), "found unexpected end of stream"),
        ("a: @x\n", (1, 4), "found character that cannot start any token"),
        ("key: value\n- item\n", (2, 1), "did not find expected key"),
    ],
)
def test_yaml_syntax_errors(text: str, pos: tuple[int, int], needle: str) -> None:
    diag = only(text)
    assert (diag.code, diag.line, diag.col) == ("yaml-syntax", *pos)
    assert needle in diag.message
    assert "Traceback" not in diag.message


def test_problems_before_a_syntax_error_are_kept() -> None:
    assert [c for c, _, _ in codes("a: yes\nb: [1\n")] == ["yaml-ambiguous-bool", "yaml-syntax"]


def test_diagnostics_are_capped() -> None:
    found = diagnostics("a:\n" + "  - yes\n" * 1000)
    assert 1 < len(found) <= 100


# --------------------------------------------------------------------------------- files


def test_load_file_reads_and_names(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_bytes("\ufeffworkflow_id: x\nname: é\n".encode())
    doc = load_file(path)
    assert doc.file == str(path)
    assert doc.data == {"workflow_id": "x", "name": "é"}
    assert load_file(str(path), display_name="shown.yaml").file == "shown.yaml"


def test_load_file_diagnostics_use_display_name(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text("a: 1\na: 2\n", encoding="utf-8")
    with pytest.raises(WorkflowError) as info:
        load_file(path, display_name="flows/wf.yaml")
    assert info.value.diagnostics[0].location() == "flows/wf.yaml:2:1"
    assert str(info.value).startswith("flows/wf.yaml:2:1 a: duplicate key 'a'")


def test_too_large_file_rejected_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: stat says big, nothing to read
    with pytest.raises(WorkflowError) as info:
        load_file(path)
    assert [(d.code, d.line, d.col) for d in info.value.diagnostics] == [("too-large", 1, 1)]


def test_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "padded.yaml"
    body = b"a: 1\n"
    path.write_bytes(body + b"#" * (MAX_FILE_BYTES - len(body)))
    assert load_file(path).data == {"a": 1}


def test_too_large_text_rejected() -> None:
    assert codes(b"a" * (MAX_FILE_BYTES + 1)) == [("too-large", 1, 1)]
    assert codes("é" * (MAX_FILE_BYTES // 2 + 1)) == [("too-large", 1, 1)]


def test_missing_file_and_directory_are_workflow_errors(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.yaml", tmp_path):
        with pytest.raises(WorkflowError) as info:
            load_file(path)
        assert info.value.diagnostics[0].code == "io-error"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_rejected_without_blocking(tmp_path: Path) -> None:
    # Opening a FIFO with no writer blocks forever: the loader must stat it first.
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def target() -> None:
        try:
            load_file(fifo)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "load_file blocked on a FIFO"
    [error] = outcome
    assert isinstance(error, WorkflowError)
    assert error.diagnostics[0].code == "io-error"


# --------------------------------------------------------------- the pure-Python parser


class _PureLoader(yaml.SafeLoader):
    yaml_implicit_resolvers = loader.WorkflowYamlLoader.yaml_implicit_resolvers


@pytest.mark.parametrize(
    "text",
    [
        REALISTIC.read_text(encoding="utf-8"),
        "a: yes\nb: 'yes'\nc: [0755, .nan]\nd: 2026-01-01\n",
        "a: &x {k: 1}\nb: *x\n<<: *x\n",
        "a: 1\na: 2\n1: x\n",
        "a: [1, 2\n",
        "a:\n\tb: 1\n",
    ],
)
def test_pure_python_parser_agrees(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    # The fallback when libyaml is missing: same data, same diagnostics. (The C parser
    # reports plain style as '' and the pure one as None; both must count as plain.)
    def outcome() -> Any:
        try:
            doc = load_text(text)
        except WorkflowError as exc:
            return [(d.code, d.line, d.col) for d in exc.diagnostics]
        return doc.data, dict(doc.source_map.values), dict(doc.source_map.keys)

    libyaml = outcome()
    monkeypatch.setattr(loader, "WorkflowYamlLoader", _PureLoader)
    pure = outcome()
    if text.startswith("a: [1, 2"):
        # The two parsers word and place the unclosed-bracket error differently.
        assert [c for c, _, _ in pure] == [c for c, _, _ in libyaml] == ["yaml-syntax"]
    else:
        assert pure == libyaml


def test_loader_class_resolves_like_the_loader() -> None:
    data = yaml.load(
        "a: yes\nb: 22:22\nc: 0o17\nd: 2026-01-01\ne: .nan\n", loader.WorkflowYamlLoader
    )
    assert data == {"a": "yes", "b": "22:22", "c": 15, "d": "2026-01-01", "e": ".nan"}


# -------------------------------------------------------------------------- properties


class _QuotingDumper(yaml.SafeDumper):
    """SafeDumper that also quotes strings the loader's YAML 1.2 resolvers would retype."""


for _first, _resolvers in loader.WorkflowYamlLoader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        _QuotingDumper.add_implicit_resolver(_tag, _regexp, [_first])

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.text(max_size=10), _json, min_size=1, max_size=5),
    st.booleans(),
    st.booleans(),
)
def test_dumped_data_loads_back_equal(data: dict[str, Any], flow: bool, raw: bool) -> None:
    # PyYAML's emitter writes NEL (U+0085) raw inside a single-quoted scalar when
    # allow_unicode=True, and every YAML parser, PyYAML's own included, reads a line break.
    raw = raw and "\x85" not in json.dumps(data, ensure_ascii=False)
    text = yaml.dump(data, Dumper=_QuotingDumper, default_flow_style=flow, allow_unicode=raw)
    doc = load_text(text)
    assert doc.data == data
    assert json.loads(json.dumps(doc.data, allow_nan=False)) == doc.data
    for key in data:
        assert doc.source_map.has((key,))


def test_plain_safe_dump_round_trips_ordinary_data() -> None:
    data = {"workflow_id": "x", "steps": [{"step_id": "a", "with": {"n": 1.5, "on": "yes"}}]}
    assert load_text(yaml.safe_dump(data)).data == data


def test_safe_dump_leaves_yaml12_numbers_unquoted() -> None:
    # PyYAML's dumper only quotes what YAML 1.1 would retype: "1e3" and "0o17" are
    # strings in 1.1, so safe_dump writes them plain; a 1.2 reader would see numbers, so
    # the loader reports them instead of guessing. Writers of workflow files should dump
    # with the loader's resolvers (see _QuotingDumper above).
    text = yaml.safe_dump({"a": "1e3", "b": "0o17"})
    assert text == "a: 1e3\nb: 0o17\n"
    with pytest.raises(WorkflowError) as err:
        load_text(text)
    assert [d.code for d in err.value.diagnostics] == ["yaml-ambiguous-number"] * 2
    assert load_text(yaml.dump({"a": "1e3"}, Dumper=_QuotingDumper)).data == {"a": "1e3"}


def _raises_only_workflow_error(text: str | bytes) -> None:
    try:
        doc = load_text(text)
    except WorkflowError as exc:
        assert exc.diagnostics
        for diag in exc.diagnostics:
            assert diag.line >= 1
            assert diag.col >= 1
    else:
        assert isinstance(doc.data, dict)
        json.dumps(doc.data, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_workflow_error(data: bytes) -> None:
    _raises_only_workflow_error(data)


_YAMLISH = st.text(
    alphabet=st.sampled_from(
        list(" \t\n\r:-[]{}?&*!|>'\"%@`#,.~yesno0179x_\x00\x85\u2028\ufeffé😀")
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(_YAMLISH)
def test_random_yamlish_text_raises_only_workflow_error(text: str) -> None:
    _raises_only_workflow_error(text)


_SEED = REALISTIC.read_text(encoding="utf-8")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_SEED)),
            st.integers(0, 8),
            st.text(alphabet=st.sampled_from(list(" \t\n:-[]{}&*!|>'\"#yes0\x00")), max_size=4)
            | st.text(max_size=4),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_workflow_raises_only_workflow_error(
    edits: list[tuple[int, int, str]],
) -> None:
    text = _SEED
    for at, cut, insert in edits:
        at = min(at, len(text))
        text = text[:at] + insert + text[at + cut :]
    _raises_only_workflow_error(text)
    _raises_only_workflow_error(text.encode("utf-8", "surrogatepass"))
