"""A run without a state store (the Python API) makes its artifacts directory only when a
step asks for it: a kept `wfctl-artifacts-*` temporary directory, the same for every step
of the run; an action reads it from its context, an expression as `workflow.artifacts`."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_workflow, run

from wfctl.actions import registry
from wfctl.state.artifacts import TEMP_PREFIX


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temporary directory for the run's `tempfile.mkdtemp`."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _made(root: Path) -> list[Path]:
    return sorted(root.glob(f"{TEMP_PREFIX}*"))


def test_a_run_whose_steps_never_ask_makes_no_artifacts_directory(temp_root: Path) -> None:
    out = run(make_workflow("steps:\n  - {step_id: a, action: set, with: {values: {x: 1}}}\n"))
    assert out.status == "completed"
    assert out.result.artifacts_dir is None
    assert _made(temp_root) == []


def test_shell_steps_and_expressions_share_one_kept_temporary_directory(temp_root: Path) -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: a
                action: shell
                with: {command: 'echo kept > "$WFCTL_ARTIFACTS/x.txt"'}
              - step_id: b
                action: set
                dependencies: [a]
                with: {values: {where: "{{ workflow.artifacts }}"}}
            """
        )
    )
    assert out.status == "completed"
    (made,) = _made(temp_root)
    assert out.result.artifacts_dir == made.resolve()
    assert out.record("b").output == {"where": str(made.resolve())}
    assert (made / "x.txt").read_text() == "kept\n"  # kept after the run


class _ArtifactWriter:
    """A third-party action that writes a file into the run's artifacts directory."""

    name = "write_artifact"

    async def run(self, args: Any, ctx: Any) -> Any:
        path = ctx.artifacts_dir / "from-plugin.txt"
        path.write_text(ctx.step_id)
        return {"path": str(path)}

    def target(self, args: Any) -> str:
        return "write_artifact"


@pytest.fixture
def writer() -> Iterator[None]:
    registry.register_action(_ArtifactWriter())
    yield
    registry.unregister_action("write_artifact")


@pytest.mark.usefixtures("writer")
def test_an_action_reads_the_artifacts_directory_from_its_context(temp_root: Path) -> None:
    out = run(make_workflow("steps:\n  - {step_id: w, action: write_artifact}\n"))
    assert out.status == "completed", out.result.error
    (made,) = _made(temp_root)
    assert (made / "from-plugin.txt").read_text() == "w"
