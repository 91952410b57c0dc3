"""Functions that `python` steps call on Ray workers (tests/engine/test_ray_*.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def _mark(path: str, text: str) -> None:
    """Write `path` whole at once (a watcher may see it the moment it exists)."""
    Path(f"{path}.tmp").write_text(text)
    os.replace(f"{path}.tmp", path)


def hold(marker: str, seconds: float = 60) -> str:
    """Sleep in one system call; `<marker>.started`, then `.stopped` (naming what stopped
    it) or `.finished`."""
    _mark(f"{marker}.started", str(os.getpid()))
    try:
        time.sleep(seconds)
    except BaseException as exc:
        _mark(f"{marker}.stopped", type(exc).__name__)
        raise
    _mark(f"{marker}.finished", "")
    return "slept"


def fail_when(marker: str) -> None:
    """Fail once `marker` exists (waiting for it in short sleeps)."""
    while not Path(marker).exists():
        time.sleep(0.05)
    raise RuntimeError("failed on purpose")
