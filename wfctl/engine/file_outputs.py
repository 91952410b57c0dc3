"""Declared file outputs (`outputs:`): the files a step wrote, read when it succeeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wfctl.engine.attempts import StepFailed
from wfctl.model import FileOutput, Step

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["with_files"]


def with_files(ex: Executor, step: Step, output: Any) -> Any:
    """`output` with `files: {name: content}` of every declared file output."""
    assert step.file_outputs is not None
    ctx = ex.context(step, output=output)
    files = {
        name: _read(ex, name, spec, Path(str(spec.path.render(ctx))))
        for name, spec in step.file_outputs.items()
    }
    if isinstance(output, dict):
        return {**output, "files": files}
    return {"value": output, "files": files}


def _read(ex: Executor, name: str, spec: FileOutput, path: Path) -> Any:
    where = path if path.is_absolute() else ex.workdir / path
    if not where.is_file():
        raise StepFailed(f"outputs.{name}: no file at {path}", "validation")
    size = where.stat().st_size
    if size > spec.max_bytes:
        raise StepFailed(
            f"outputs.{name}: {path} is {size} bytes, over max_bytes ({spec.max_bytes})",
            "validation",
        )
    text = ex.masker.mask(where.read_bytes().decode("utf-8", errors="replace"))
    if spec.format != "json":
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StepFailed(f"outputs.{name}: {path} is not JSON: {exc}", "validation") from None
