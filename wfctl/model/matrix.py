"""A matrix's cells, with GitHub Actions semantics.

The axes' cartesian product (in the order written: the first axis varies slowest), minus
every cell that matches an `exclude` entry (all the entry's keys equal), then each
`include` entry: merged into every cell whose original axis values it does not change
(its other keys are added), or, when it fits none, appended as a cell of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

__all__ = ["MATRIX_KEYS", "expand_matrix"]

#: Keys of `matrix:` that are not axes.
MATRIX_KEYS = frozenset({"include", "exclude"})


def expand_matrix(matrix: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every cell of `matrix` (a validated `matrix:` mapping), in a stable order."""
    axes = {k: list(v) for k, v in matrix.items() if k not in MATRIX_KEYS}
    cells = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    if not axes:
        cells = []
    excludes = list(matrix.get("exclude", ()))
    cells = [c for c in cells if not any(_matches(c, e) for e in excludes)]
    originals = [dict(c) for c in cells]
    for entry in matrix.get("include", ()):
        _include(cells, originals, set(axes), dict(entry))
    return cells


def _matches(cell: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    return all(k in cell and cell[k] == v for k, v in entry.items())


def _include(
    cells: list[dict[str, Any]],
    originals: list[dict[str, Any]],
    axes: set[str],
    entry: dict[str, Any],
) -> None:
    merged = False
    for cell, original in zip(cells, originals, strict=False):
        # It may add keys, and overwrite what an earlier include added, but not change
        # one of the cell's original axis values.
        if all(original.get(k, v) == v for k, v in entry.items() if k in axes):
            cell.update(entry)
            merged = True
    if not merged:
        cells.append(entry)
