"""`wfctl run --dry-run`: the plan printed, nothing run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from wfctl.model import ReactBody


def _what(s: Any) -> str:
    return (
        s.action
        or (f"agent:{s.agent_capability}" if s.agent_capability else "")
        or (_react(s.body) if isinstance(s.body, ReactBody) else "")
    )


def _react(body: ReactBody) -> str:
    """The model, and how often its client retries by itself (0: the retry policy decides)."""
    raw = body.with_.value
    retries = raw.get("provider_retries", 0) if isinstance(raw, Mapping) else 0
    return f"{body.model or ''}, provider_retries {retries}".lstrip(", ")


def _line(s: Any, wave: int, indent: str) -> str:
    after = f" after {', '.join(s.dependencies)}" if s.dependencies else ""
    what = _what(s)
    kind = s.step_type.value + (f" {what}" if what else "")
    rule = f" [{s.trigger_rule.value}]" if s.trigger_rule.value != "all_success" else ""
    cond = f" when {s.when.source}" if s.when is not None else ""
    return f"{indent}{wave}. {s.step_id} ({kind}){after}{rule}{cond}\n"


def _entries(plan: Any, container: str | None) -> list[tuple[Any, int, str | None]]:
    """(step, wave, container) in plan order: each wave waits only on earlier ones."""
    from wfctl import graph

    level = plan.levels[container]
    steps = {s.step_id: s for s in level.steps}
    # Dependencies outside this container are met before it starts.
    deps = {sid: [d for d in s.dependencies if d in steps] for sid, s in steps.items()}
    found: list[tuple[Any, int, str | None]] = []
    for wave, ids in enumerate(graph.waves(deps), start=1):
        for sid in sorted(ids, key=lambda i: -plan.rank[i]):
            found.append((steps[sid], wave, container))
            if steps[sid].children:
                found += _entries(plan, sid)
    return found


def _tools(workflow: Any) -> set[str]:
    """Steps that react steps call as tools (invoked by the model, not on failure)."""
    return {
        tool.step
        for step in workflow.all_steps.values()
        if isinstance(step.body, ReactBody)
        for tool in step.body.tools
        if tool.step
    }


#: Stands for the run id a real run would get (it is made when the run starts).
RUN_ID_PLACEHOLDER = "RUN_ID"


def _as_data(
    workflow: Any, entries: list[tuple[Any, int, str | None]], artifacts: str
) -> dict[str, Any]:
    tools = _tools(workflow)
    return {
        "workflow": {"id": workflow.workflow_id, "name": workflow.name},
        "artifacts_dir": artifacts,
        "steps": [
            {
                "step_id": s.step_id,
                "type": s.step_type.value,
                "does": _what(s) or None,
                "wave": wave,
                "container": container,
                "after": list(s.dependencies),
                "trigger_rule": s.trigger_rule.value,
                "when": s.when.source if s.when is not None else None,
            }
            for s, wave, container in entries
        ],
        "handlers": sorted(workflow.handlers - tools),
        "tools": sorted(tools),
        "on_exit": [s.step_id for s in workflow.on_exit],
    }


def _print_text(
    workflow: Any, entries: list[tuple[Any, int, str | None]], artifacts: str, out: IO[str]
) -> None:
    depth: dict[str | None, int] = {None: 0}
    out.write(f"plan for {workflow.name} ({len(workflow.all_steps)} steps), nothing was run:\n")
    for s, wave, container in entries:
        depth[s.step_id] = depth[container] + 1
        out.write(_line(s, wave, "  " + "   " * depth[container]))
    tools = _tools(workflow)
    handlers = sorted(workflow.handlers - tools)
    if handlers:
        out.write(f"  handlers (run on failure/rollback): {', '.join(handlers)}\n")
    if tools:
        out.write(f"  react tools (run when a model calls them): {', '.join(sorted(tools))}\n")
    if workflow.on_exit:
        hooks = ", ".join(s.step_id for s in workflow.on_exit)
        out.write(f"  on_exit (run last, in order, whatever the outcome): {hooks}\n")
    out.write(f"  artifacts (WFCTL_ARTIFACTS): {artifacts}\n")


def dry_run(
    workflow: Any,
    out: IO[str],
    env: Mapping[str, str],
    state_dir: Path,
    as_json: bool = False,
) -> bool:
    """Print the plan (text, or JSON with `as_json`): each step with what it waits on, in
    an order that could run, and the artifacts directory a run would use (under
    `state_dir`, RUN_ID standing for its id). False (after saying why) if a secret the
    run needs is not in `env`, as the run itself would stop."""
    from wfctl.compile.plan import compile_plan
    from wfctl.state.artifacts import artifacts_path

    missing = workflow.missing_secrets(env)
    if missing:
        from wfctl.cli._output import err

        err(
            f"error: {workflow.source_file}: missing secret environment variable "
            f"{', '.join(missing)} (a run would stop here)"
        )
        return False
    entries = _entries(compile_plan(workflow), None)
    artifacts = str(artifacts_path(state_dir, RUN_ID_PLACEHOLDER).resolve())
    if as_json:
        out.write(json.dumps(_as_data(workflow, entries, artifacts), indent=2) + "\n")
    else:
        _print_text(workflow, entries, artifacts, out)
    return True
