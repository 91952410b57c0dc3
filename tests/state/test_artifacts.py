"""The artifacts directory of a run: under the state directory, private at every level it
makes, found again for the same run id; without a state directory, a temporary one made
on first use."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from wfctl.state.artifacts import TEMP_PREFIX, RunArtifacts, artifacts_path, make_artifacts_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_each_level_it_makes_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)  # a umask that would leave mkdir's mode as asked
    try:
        made = make_artifacts_dir(tmp_path, "r1")
    finally:
        os.umask(old)
    assert made == artifacts_path(tmp_path, "r1") == tmp_path / "runs" / "r1" / "artifacts"
    assert [_mode(p) for p in (made, made.parent, made.parent.parent)] == [0o700] * 3


def test_the_same_run_finds_its_directory_and_files_again(tmp_path: Path) -> None:
    first = RunArtifacts(tmp_path, "r1").get()
    (first / "x.txt").write_text("kept")
    again = RunArtifacts(tmp_path, "r1")
    assert again.made is None  # not made (nor looked for) until asked
    assert again.get() == first == (tmp_path / "runs" / "r1" / "artifacts").resolve()
    assert (again.get() / "x.txt").read_text() == "kept"


def test_without_a_state_directory_it_is_a_temporary_one_made_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    artifacts = RunArtifacts(None, "r1")
    assert artifacts.made is None and list(tmp_path.iterdir()) == []
    made = artifacts.get()
    assert made.parent == tmp_path.resolve() and made.name.startswith(TEMP_PREFIX)
    assert artifacts.get() == artifacts.made == made  # one directory for the run
    assert _mode(made) == 0o700
