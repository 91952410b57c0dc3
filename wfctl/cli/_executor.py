"""`--executor` / `--ray-address`: the backend of a `wfctl run` or `resume`, made ready
before anything is recorded, so a missing Ray or a step no node can place is exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from wfctl.cli._output import err

ExecutorOption = Annotated[
    str | None,
    typer.Option(
        "--executor",
        metavar="NAME",
        envvar="WFCTL_EXECUTOR",
        help="Where steps run: local, or ray (a Ray cluster; pip install 'wfctl[ray]') "
        "[the workflow's executor:, else local].",
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        metavar="ADDR",
        envvar="RAY_ADDRESS",
        help="The Ray cluster of --executor ray [a Ray running here, else a local one].",
    ),
]


def executor_name(executor: str | None, workflow: Any) -> str:
    """--executor (or WFCTL_EXECUTOR), else the workflow's `executor:`."""
    return executor or str(getattr(workflow, "executor", "local"))


def ready_backend(
    executor: str | None, ray_address: str | None, workflow: Any, workdir: str | None
) -> tuple[Any, str | None]:
    """(backend, None) or (None, why it cannot run): connected and checked, the Ray
    start-up announced on stderr."""
    name = executor_name(executor, workflow)
    from wfctl.engine.backends import BackendUnavailable, make_backend

    try:
        backend: Any = make_backend(name, ray_address)
        prepare = getattr(backend, "prepare", None)
        if prepare is not None:
            backend.announce = lambda message: err(f"wfctl: {message}")
            prepare(workflow, Path(workdir) if workdir else Path.cwd())
    except BackendUnavailable as exc:
        return None, str(exc)
    return backend, None
