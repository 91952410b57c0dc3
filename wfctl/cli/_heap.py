"""The cyclic garbage collector around what a command builds in one go."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused(keep: bool) -> Iterator[None]:
    """No cyclic collection while the block builds one workflow's objects.

    CPython walks every tracked object each time the survivors grow by a quarter, so a
    load that only adds objects pays a full walk again and again (a third of a 100k-step
    load). What the block drops is still freed by reference counting. `keep`: what
    survives lives to the end of the process (one command's workflow), so it is frozen
    out of every later walk; else the collector takes it back as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if keep:
            gc.freeze()
        if enabled:
            gc.enable()
