"""A fuzz of the loader and the validator (issue 15): whatever the text, they answer with
diagnostics (registered codes, real positions, one printable line each) or with a
workflow the model builds -- never with another exception.

Bounded for CI (a few seconds); a long run is one command (README, "Development"):

    WFCTL_FUZZ_EXAMPLES=100000 python -m pytest tests/hostile/test_fuzz.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wfctl.document.loader import load_text
from wfctl.format.codes import is_registered
from wfctl.format.diagnostics import WorkflowError
from wfctl.model.build import build_workflow
from wfctl.validate.files import check_document

EXAMPLES = int(os.environ.get("WFCTL_FUZZ_EXAMPLES", "30"))
# What a printed diagnostic may not hold: raw control characters, bidi overrides.
_RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a slow example is a finding of the long run, not a CI flake
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 100,  # CI runs the same examples every time
)

SEEDS = [
    *sorted((Path(__file__).parents[2] / "workflows").glob("*.yaml")),
    *sorted((Path(__file__).parent / "corpus").glob("*.yaml")),
]
SEED_TEXTS = [p.read_text(encoding="utf-8") for p in SEEDS]

# Fragments that have broken YAML loaders, validators or printers.
_FRAGMENTS = [
    "{{", "}}", "{%", "%}", "&a", "*a", "<<: *a", "!!python/object", "? ", "- ", ": ",
    "\t", "\r", "\x1b[2K", "\u202e", "\ufeff", "'", '"', "\\", "\n", "  ", "#", "|", ">",
    "step_id", "steps", "dependencies", "inputs", "pattern", "'^(a+)+$'", "range(10**9)",
    "yes", "no", "on", "2026-01-01", "22:22", ".nan", "1e999", "99999999999999999999",
    "[" * 70, "{" * 70, "null", "~", "@", "`",
]  # fmt: skip


def _check(text: str) -> None:
    try:
        doc = load_text(text, "fuzz.yaml")
    except WorkflowError as exc:
        _check_diagnostics(exc.diagnostics)
        return
    problems = check_document(doc)
    if problems:
        _check_diagnostics(problems)
    else:
        build_workflow(doc)  # valid workflows build


def _check_diagnostics(diagnostics: list[object] | tuple[object, ...]) -> None:
    from wfctl.validate.output import diagnostic_line

    assert diagnostics
    for d in diagnostics:
        assert is_registered(d.code), d  # type: ignore[attr-defined]
        assert d.line >= 1 and d.col >= 1, d  # type: ignore[attr-defined]
        line = diagnostic_line(d)  # type: ignore[arg-type]
        assert _RAW_CONTROL.search(line) is None, repr(line)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A real workflow with a few insertions, deletions and replacements."""
    text = draw(st.sampled_from(SEED_TEXTS))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        match draw(st.sampled_from(["insert", "delete", "replace"])):
            case "insert":
                piece = draw(st.sampled_from(_FRAGMENTS) | st.text(max_size=8))
                text = text[:at] + piece + text[at:]
            case "delete":
                text = text[:at] + text[at + draw(st.integers(1, 40)) :]
            case _:
                piece = draw(st.sampled_from(_FRAGMENTS))
                text = text[:at] + piece + text[at + len(piece) :]
    return text


@FUZZ
@given(mutated())
def test_mutated_workflows_get_diagnostics_or_build(text: str) -> None:
    _check(text)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_gets_diagnostics(text: str) -> None:
    _check(text)
