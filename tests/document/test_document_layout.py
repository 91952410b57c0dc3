"""The loader's split into modules: the public names stay where importers find them, and
a load leaves nothing for the cyclic garbage collector."""

from __future__ import annotations

import contextlib
import gc
from pathlib import Path

import pytest

from wfctl.document import loader, sourcemap
from wfctl.format.diagnostics import WorkflowError

REALISTIC = Path(__file__).parents[1] / "data" / "loader" / "realistic.yaml"


def test_public_names_of_the_loader() -> None:
    for name in loader.__all__:
        assert hasattr(loader, name), name
    # One class each, wherever it is imported from.
    assert loader.SourceMap is sourcemap.SourceMap
    assert loader.format_path is sourcemap.format_path
    assert loader.Path_ == sourcemap.Path_


@pytest.mark.parametrize(
    "text",
    [
        REALISTIC.read_text(encoding="utf-8"),
        "a: 1\na: 2\n",  # a diagnostic
        "a:\n\tb: 1\n",  # tabs: the second parse
        "a: &x [1, {b: 2}]\nc: *x\n",  # aliases
        "- 1\n",  # fatal
    ],
)
def test_a_load_leaves_no_reference_cycles(text: str) -> None:
    # The loader runs once per file on `wfctl validate`'s path: a cycle through the
    # builder (bound methods kept in an attribute did that) keeps every document's data
    # alive until a collection (measured: loading ~30% slower).
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(3):
            with contextlib.suppress(WorkflowError):
                loader.load_text(text, "wf.yaml")
        assert gc.collect() == 0
    finally:
        if was_enabled:
            gc.enable()
