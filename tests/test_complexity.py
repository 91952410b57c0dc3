"""Functions small enough to read at once: the redesign's complexity and size budget.

At most 3 % of blocks above cyclomatic complexity 10 (radon rank C or worse), none above
20, and no module over 500 lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import wfctl

radon_complexity = pytest.importorskip("radon.complexity", reason="radon is in the test extra")

ROOT = Path(wfctl.__file__).parent
SOURCES = sorted(ROOT.rglob("*.py"))


def _blocks() -> list[tuple[str, str, int]]:
    found = []
    for path in SOURCES:
        code = path.read_text(encoding="utf-8")
        for block in radon_complexity.cc_visit(code):
            found.append((str(path.relative_to(ROOT)), block.fullname, block.complexity))
    return found


def test_complexity_budget() -> None:
    blocks = _blocks()
    complex_ = [b for b in blocks if b[2] > 10]
    assert len(blocks) > 500
    assert len(complex_) <= 0.03 * len(blocks), complex_
    assert not [b for b in blocks if b[2] > 20]


def test_no_module_over_500_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in SOURCES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert long == {}
