"""The registry of diagnostic codes: complete, documented, and enforced by Diagnostic."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from wfctl.format.codes import CODE_NAMES, CODES, Stage, is_registered
from wfctl.format.diagnostics import Diagnostic

WFCTL = Path(__file__).resolve().parents[2] / "wfctl"
_CODE_SHAPE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def _string_constants() -> set[str]:
    """Every string literal in wfctl/ outside the registry itself."""
    found: set[str] = set()
    for path in WFCTL.rglob("*.py"):
        if path == WFCTL / "format" / "codes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_an_unregistered_code_is_refused() -> None:
    with pytest.raises(ValueError, match="unregistered diagnostic code 'made-up'"):
        Diagnostic("wf.yaml", 1, 1, "made-up", "message")
    with pytest.raises(ValueError, match="unregistered"):
        Diagnostic(file="wf.yaml", line=1, col=1, code="io", message="cannot read file")


def test_a_registered_code_is_accepted() -> None:
    d = Diagnostic("wf.yaml", 2, 3, "duplicate-key", "duplicate key 'a'")
    assert d.code == "duplicate-key"
    assert is_registered("duplicate-key")
    assert not is_registered("io")


def test_every_code_is_documented_once() -> None:
    assert set(CODES) == CODE_NAMES
    assert len(CODES) == len(CODE_NAMES)
    for name, code in CODES.items():
        assert code.name == name
        assert _CODE_SHAPE.match(name), name
        assert code.stages, name
        assert all(isinstance(stage, Stage) for stage in code.stages), name
        assert code.meaning.endswith("."), name
        assert "\n" not in code.meaning and len(code.meaning) <= 100, name


def test_every_registered_code_is_emitted_somewhere() -> None:
    # A code nobody emits would be documented for nothing.
    unused = CODE_NAMES - _string_constants()
    assert not unused, f"registered but never used in wfctl/: {sorted(unused)}"


def test_the_codes_emitted_today_are_registered() -> None:
    # The literal codes passed to the diagnostic builders of each stage (positional or
    # `code=`): the registry must know all of them (Diagnostic would raise at run time).
    position = {"report": 1, "add": 2, "_add": 2, "_fatal": 1, "diag": 3, "Diagnostic": 3}
    emitted: set[str] = set()
    for path in WFCTL.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in position:
                continue
            args = [kw.value for kw in node.keywords if kw.arg == "code"]
            starred = any(isinstance(a, ast.Starred) for a in node.args)
            at = position[name] - (1 if starred else 0)  # `*pos` stands for line, col
            if not args and len(node.args) > at:
                args = [node.args[at]]
            emitted |= {a.value for a in args if isinstance(a, ast.Constant)}
    assert emitted, "the scan found no diagnostic codes: update this test"
    assert emitted <= CODE_NAMES, sorted(emitted - CODE_NAMES)


def test_io_and_io_error_are_one_code() -> None:
    assert "io-error" in CODE_NAMES
    assert "io" not in CODE_NAMES
    assert set(CODES["io-error"].stages) == {Stage.DOCUMENT, Stage.FILES}
