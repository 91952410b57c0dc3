"""Functions that `python` steps call on Ray workers (tests/engine/test_ray_*.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def hold(marker: str, seconds: float = 60) -> str:
    """Sleep in one system call; `<marker>.started`, then `.stopped` (naming what stopped
    it) or `.finished`."""
    Path(f"{marker}.started").write_text(str(os.getpid()))
    try:
        time.sleep(seconds)
    except BaseException as exc:
        Path(f"{marker}.stopped").write_text(type(exc).__name__)
        raise
    Path(f"{marker}.finished").write_text("")
    return "slept"


def fail_when(marker: str) -> None:
    """Fail once `marker` exists (waiting for it in short sleeps)."""
    while not Path(marker).exists():
        time.sleep(0.05)
    raise RuntimeError("failed on purpose")
