"""The per-run lock: one process owns a run; the kernel frees it if the owner dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from wfctl.state.store import RunRow


class RunLock:
    """A per-run `flock`: one process owns a run; the kernel frees it if the owner dies."""

    def __init__(self, directory: Path, run_id: str) -> None:
        locks = directory / "locks"
        locks.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = locks / f"{run_id}.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> bool:
        fh = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return True

    def held_elsewhere(self) -> bool:
        """True if another live process owns the run (used by `wfctl runs` / `show`)."""
        if not self.path.exists():
            return False
        with self.path.open("a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return False

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def effective_status(directory: Path, row: RunRow) -> str:
    """A run marked running whose owner is gone was interrupted (crash, kill -9)."""
    if row.status == "running" and not RunLock(directory, row.run_id).held_elsewhere():
        return "interrupted"
    return row.status
