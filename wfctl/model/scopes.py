"""Iteration ids: how the records of a loop's iterations and of their steps are named.

A group loop (`steps:` under a loop step) runs its body once per iteration or item, each
time under ids of its own, so that events, the live table, the journal, the report and
`resume` tell the iterations apart:

* ``each[2]`` is iteration (or item) 2 of loop step ``each`` (0-based, like ``loop.index``);
* ``each[2].fetch`` is body step ``fetch`` in that iteration;
* nested loops compose: ``outer[1].inner[0].fetch``.

Step ids cannot contain ``[`` or ``.`` (the schema's id pattern), so these never clash
with a step written in the file.
"""

from __future__ import annotations

__all__ = ["is_scoped", "iteration_id", "local_id", "parent_of", "scoped_id", "template_of"]


def iteration_id(loop_id: str, index: int) -> str:
    """The record id of iteration `index` of loop `loop_id` (itself maybe scoped)."""
    return f"{loop_id}[{index}]"


def scoped_id(iteration: str, template: str) -> str:
    """The record id of body step `template` in `iteration`."""
    return f"{iteration}.{template}"


def is_scoped(step_id: str) -> bool:
    """Whether `step_id` names an iteration or a step inside one."""
    return "[" in step_id


def template_of(step_id: str) -> str:
    """The step of the file a record id stands for: ``each[2].fetch`` -> ``fetch``,
    ``each[2]`` -> ``each`` (an iteration stands for its loop step)."""
    # A sub-workflow's steps have dotted ids of their own (``deploy.build``): only the
    # part after the innermost iteration is the template.
    if step_id.endswith("]"):
        return template_of(step_id[: step_id.rindex("[")])
    return step_id.rsplit("].", 1)[-1]


def local_id(template: str) -> str:
    """The id a step has in its own file: ``deploy.build`` (a sub-workflow's) -> ``build``."""
    return template.rsplit(".", 1)[-1]


def parent_of(step_id: str) -> str | None:
    """The record an iteration id is nested under: ``each[2].fetch`` -> ``each[2]``,
    ``each[2]`` -> ``each``; None for an id of the file."""
    if not is_scoped(step_id):
        return None
    if step_id.endswith("]"):
        return step_id[: step_id.rindex("[")]
    return step_id.rsplit(".", 1)[0]
