"""`wfctl init`: start a new workflow file that editors complete and `wfctl validate` passes."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from wfctl.cli._output import fail_usage

#: Where the schema copy goes, relative to the new workflow's directory.
SCHEMA_COPY = Path(".wfctl-schema") / "workflow.schema.json"

_TEMPLATE = """\
# yaml-language-server: $schema={schema}
# A new workflow. Check it with `wfctl validate {file}`; run it with `wfctl run {file}`.
# Reference of every field: `wfctl schema` (editors read it through the line above).
workflow_id: {workflow_id}
name: {name}
inputs:
  who: {{type: string, default: world}}
steps:
  - step_id: greet
    action: shell
    with:
      command: ["echo", "hello {{{{ inputs.who }}}}"]
    output_mapping:
      greeting: "output.stdout | trim"
  - step_id: done
    dependencies: [greet]
    action: set
    with:
      values: {{message: "{{{{ vars.greeting }}}}"}}
"""


def _modeline_target(target: Path, schema: str | None) -> str:
    """The `$schema=` of the modeline: the user's, or a copy of the bundled schema beside it.

    A copy (not a path into the install) keeps working when the file is committed and
    opened on another machine, and matches the wfctl version that wrote it.
    """
    if schema is not None:
        return schema
    from wfctl.format.schema import schema_path

    copy = target.parent / SCHEMA_COPY
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(schema_path(), copy)
    return SCHEMA_COPY.as_posix()


def _check_id(workflow_id: str) -> None:
    """The id rule of the schema (`$defs/id`), checked before anything is written."""
    from wfctl.format.schema import load_schema

    rule = load_schema()["$defs"]["id"]
    if not re.search(rule["pattern"], workflow_id):
        fail_usage(f"workflow id {workflow_id!r}: {rule['description'].split('.')[0].lower()}")


def init(
    workflow_id: Annotated[str, typer.Argument(help="Id of the new workflow (its file name).")],
    directory: Annotated[
        Path, typer.Option("--dir", "-d", help="Directory to write it in.", file_okay=False)
    ] = Path(),
    schema: Annotated[
        str | None,
        typer.Option(
            "--schema",
            help="The modeline's schema (a path or URL). Default: a copy of the bundled "
            f"schema in {SCHEMA_COPY.parent}/ beside the file.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write WORKFLOW_ID.yaml: a small valid workflow with an editor modeline."""
    _check_id(workflow_id)
    target = directory / f"{workflow_id}.yaml"
    if target.exists() and not force:
        fail_usage(f"{target} exists (use --force to overwrite it)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        modeline = _modeline_target(target, schema)
        name = workflow_id.replace("-", " ").replace("_", " ").capitalize()
        text = _TEMPLATE.format(
            schema=modeline, file=os.fspath(target), workflow_id=workflow_id, name=name
        )
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail_usage(f"cannot write {target}: {exc.strerror or exc}")
    sys.stdout.write(f"wrote {target}\n")
