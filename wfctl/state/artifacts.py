"""A run's artifacts directory: where its steps leave files for later steps (and people).

A durable run's is ``<state dir>/runs/<run id>/artifacts``, made when the run starts and
found again by `wfctl resume` (same run id, same directory). A run without a state store
(the Python API) gets a kept ``wfctl-artifacts-*`` temporary directory, made only when a
step first asks for it, so library runs leave no empty directories behind.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Final

__all__ = ["TEMP_PREFIX", "RunArtifacts", "artifacts_path", "make_artifacts_dir"]

#: The prefix of a store-less run's temporary artifacts directory.
TEMP_PREFIX: Final = "wfctl-artifacts-"


def artifacts_path(state_dir: str | os.PathLike[str], run_id: str) -> Path:
    """Where the artifacts of run `run_id` in `state_dir` live (made or not)."""
    return Path(state_dir) / "runs" / run_id / "artifacts"


def make_artifacts_dir(state_dir: str | os.PathLike[str], run_id: str) -> Path:
    """The run's artifacts directory, made if missing; each level it makes is 0700 (step
    outputs can be as private as the journal)."""
    path = artifacts_path(state_dir, run_id)
    for level in (path.parent.parent, path.parent, path):
        try:
            level.mkdir(mode=0o700)
        except FileExistsError:
            continue
        level.chmod(0o700)  # mkdir's mode is narrowed by the umask, never widened: be exact
    return path


class RunArtifacts:
    """One run's artifacts directory, made the first time it is asked for (thread-safe:
    a `python` step asks from a worker thread)."""

    def __init__(self, state_dir: str | os.PathLike[str] | None, run_id: str) -> None:
        self._state_dir = None if state_dir is None else Path(state_dir)
        self._run_id = run_id
        self._path: Path | None = None
        self._lock = threading.Lock()

    def get(self) -> Path:
        """The directory (absolute), made now if it was not yet."""
        with self._lock:
            if self._path is None:
                self._path = self._make()
            return self._path

    @property
    def made(self) -> Path | None:
        """The directory if it was made, else None (nothing asked for it)."""
        return self._path

    def _make(self) -> Path:
        if self._state_dir is not None:
            return make_artifacts_dir(self._state_dir, self._run_id).resolve()
        # Kept after the run: its files are the run's results (mkdtemp makes it 0700).
        return Path(tempfile.mkdtemp(prefix=TEMP_PREFIX)).resolve()
