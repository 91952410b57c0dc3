"""Engine objects from a validated document: expressions compiled once, defaults from the
schema, one typed body per step type."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from wfctl import graph
from wfctl.expressions import compile_expression, compile_value
from wfctl.format.schema import node as schema_node
from wfctl.model.defaults import defaults
from wfctl.model.enums import StepType, TriggerRule
from wfctl.model.matrix import expand_matrix
from wfctl.model.policies import RetryPolicy, SlaTargets, circuit_breaker_from, retry_policy_from
from wfctl.model.steps import (
    ApprovalBody,
    Body,
    Branch,
    Call,
    ConditionalBody,
    FileOutput,
    ForEachBody,
    LoopBody,
    ParallelBody,
    ReactBody,
    ReactTool,
    Step,
    StepCache,
)
from wfctl.model.workflow import Agent, Workflow
from wfctl.validate._depends import depends_refs

if TYPE_CHECKING:
    from wfctl.document.loader import LoadedDocument
    from wfctl.expressions import Expression

__all__ = ["build_workflow"]

Raw = Mapping[str, Any]
# The defaults of one `outputs:` entry (an inline object of the schema, not a $def).
_FILE_OUTPUT_DEFAULTS: Mapping[str, Any] = {
    name: prop["default"]
    for name, prop in schema_node("/$defs/step/properties/outputs/additionalProperties")[
        "properties"
    ].items()
    if "default" in prop
}


def build_workflow(doc: LoadedDocument) -> Workflow:
    """Engine objects from a document that passed validation."""
    data = doc.data
    builder = _StepBuilder(doc, retry_policy_from(data.get("retry_policy", {})))
    top = tuple(builder.step(raw, ("steps", i), None) for i, raw in enumerate(data["steps"]))
    on_exit = tuple(
        builder.step(raw, ("on_exit", i), None) for i, raw in enumerate(data.get("on_exit", []))
    )
    d = {**defaults(), **data}
    return Workflow(
        workflow_id=data["workflow_id"],
        name=data["name"],
        description=d["description"],
        version=str(d["version"]),
        tags=tuple(d["tags"]),
        created_by=data.get("created_by"),
        inputs=_frozen(d["inputs"]),
        global_variables=_frozen(d["global_variables"]),
        secrets=_frozen(d["secrets"]),
        timeout=float(d["timeout"]),
        max_parallel_steps=int(d["max_parallel_steps"]),
        retry_policy=builder.base_retry,
        circuit_breaker=circuit_breaker_from(data.get("circuit_breaker", {})),
        sla_targets=_sla(d["sla_targets"]),
        agents=tuple(_agent(a) for a in d["agents"]),
        steps=top,
        all_steps=MappingProxyType(builder.all_steps),
        handlers=builder.handlers | frozenset(d["on_sla_breach"]),
        source_file=doc.file,
        sha256=hashlib.sha256(doc.text.encode("utf-8")).hexdigest(),
        on_sla_breach=tuple(d["on_sla_breach"]),
        executor=str(d["executor"]),
        templates=_templates(top),
        on_exit=on_exit,
    )


def _templates(steps: tuple[Step, ...], inside: bool = False) -> frozenset[str]:
    """Ids of the steps inside group loop bodies (nested containers included)."""
    out: set[str] = set()
    for s in steps:
        if inside:
            out.add(s.step_id)
        out |= _templates(s.children, inside)
        out |= _templates(s.body_steps, True)
    return frozenset(out)


def edges_of(steps: list[Raw], container: str | None = None) -> Iterator[graph.StepEdges]:
    """What each raw step (nested ones included) says about others, for `wfctl.graph`."""
    for step in steps:
        branches = step.get("conditions", [])
        tools = step.get("with", {}).get("tools", []) if step.get("step_type") == "react" else []
        yield graph.StepEdges(
            step_id=step["step_id"],
            container=container,
            # `depends` names its dependencies: desugared into them.
            dependencies=(*step.get("dependencies", []), *depends_refs(step.get("depends"))),
            next_steps=(
                *step.get("next_steps", []),
                *(t for b in branches for t in b.get("next_steps", [])),
            ),
            invokes=(
                *step.get("error_handlers", []),
                *step.get("rollback_actions", []),
                *(t["step"] for t in tools if "step" in t),
            ),
        )
        yield from edges_of(step.get("parallel_steps", []), step["step_id"])
        yield from edges_of(_group(step), step["step_id"])


def _group(raw: Raw) -> list[Raw]:
    """A group loop's body steps as written (`steps:` under a loop step), else []."""
    body = raw.get("steps", []) if raw.get("step_type") == "loop" else []
    return body if isinstance(body, list) else []


class _StepBuilder:
    def __init__(
        self,
        doc: LoadedDocument,
        base_retry: RetryPolicy,
        chain: tuple[str, ...] = (),
        docs: dict[str, LoadedDocument] | None = None,
    ) -> None:
        self.doc = doc
        # Sub-workflows (wfctl.model.subflow): the files calling this one, outermost
        # first, and the child files loaded so far (each read once per build).
        self.chain = chain
        self.docs: dict[str, LoadedDocument] = {} if docs is None else docs
        self.base_retry = base_retry
        self.defaults = defaults("step")
        edges = list(edges_of([*doc.data["steps"], *doc.data.get("on_exit", [])]))
        self.deps = graph.desugar(edges)
        self.handlers = graph.invoked_steps(edges)
        self.all_steps: dict[str, Step] = {}

    def step(self, raw: Raw, path: tuple[Any, ...], container: str | None) -> Step:
        r = {**self.defaults, **raw}
        # `uses:` makes a step a sub-workflow call (its step_type may be left out).
        step_type = StepType.WORKFLOW if "uses" in raw else StepType(r["step_type"])
        step = Step(
            step_id=raw["step_id"],
            name=raw.get("name", raw["step_id"]),
            step_type=step_type,
            body=_BODIES[step_type](self, r, path),
            timeout=float(raw["timeout"]) if "timeout" in raw else None,
            when=_expr(raw.get("when")),
            trigger_rule=TriggerRule(r["trigger_rule"]),
            dependencies=self.deps[raw["step_id"]],
            input_mapping=_exprs(r["input_mapping"]),
            input_validation=raw.get("input_validation"),
            output_mapping=_exprs(r["output_mapping"]),
            retry_policy=self.base_retry.merged(raw.get("retry_policy", {})),
            error_handlers=tuple(r["error_handlers"]),
            rollback_actions=tuple(r["rollback_actions"]),
            metrics_enabled=bool(r["metrics_enabled"]),
            custom_metrics=_exprs(r["custom_metrics"]),
            container=container,
            line=self.doc.source_map.value_pos(path)[0],
            resources=_frozen(raw.get("resources", {})),
            depends=_expr(raw.get("depends")),
            recover=bool(r["recover"]),
            recover_output=compile_value(raw["recover_output"])
            if "recover_output" in raw
            else None,
            file_outputs=_file_outputs(raw.get("outputs")),
            cache=_cache(raw),
        )
        self.all_steps[step.step_id] = step
        return step

    def parallel(self, r: Raw, path: tuple[Any, ...]) -> ParallelBody:
        fail_fast = bool(r.get("fail_fast", ParallelBody.fail_fast))
        return ParallelBody(self.nested(r, path, "parallel_steps"), _int_or_none(r), fail_fast)

    def nested(self, r: Raw, path: tuple[Any, ...], key: str) -> tuple[Step, ...]:
        """The steps under `key` of step `r`, each in `r`'s container."""
        return tuple(
            self.step(child, (*path, key, i), r["step_id"]) for i, child in enumerate(r[key])
        )


def _int_or_none(r: Raw) -> int | None:
    return int(r["max_parallel"]) if "max_parallel" in r else None


def _call(r: Raw) -> Call:
    return Call(r.get("action"), compile_value(r["with"]), r.get("agent_capability"))


def _loop(builder: _StepBuilder, r: Raw, path: tuple[Any, ...]) -> LoopBody | ForEachBody:
    # The group form (`steps:`) runs its steps per iteration; the single-action form its call.
    group = builder.nested(r, path, "steps") if "steps" in r else ()
    call = None if group else _call(r)
    if "matrix" in r:
        cells = tuple(expand_matrix(r["matrix"]))
        return ForEachBody(
            call=call,
            items=cells,
            # Cells at once: `max_parallel` (default: every cell, under max_parallel_steps).
            concurrency=int(r.get("max_parallel", max(1, len(cells)))),
            max_iterations=int(r["loop_max_iterations"]),
            delay=float(r["loop_delay"]),
            steps=group,
            fail_fast=bool(r.get("fail_fast", ForEachBody.fail_fast)),
            matrix=True,
            tolerated=_tolerated(r),
        )
    items = r.get("for_each")
    if items is None:
        return LoopBody(
            call, _expr(r.get("loop_condition")), int(r["loop_max_iterations"]),
            float(r["loop_delay"]), steps=group, until=_expr(r.get("until")),
        )  # fmt: skip
    return ForEachBody(
        call=call,
        items=compile_expression(items) if isinstance(items, str) else tuple(items),
        concurrency=int(r["loop_concurrency"]),
        max_iterations=int(r["loop_max_iterations"]),
        delay=float(r["loop_delay"]),
        steps=group,
        fail_fast=bool(r.get("fail_fast", ForEachBody.fail_fast)),
        tolerated=_tolerated(r),
    )


def _tolerated(r: Raw) -> int | float:
    """`tolerated_failures`: a count, or a percentage as a fraction."""
    value = r.get("tolerated_failures", 0)
    return float(value[:-1]) / 100 if isinstance(value, str) else int(value)


def _conditional(builder: _StepBuilder, r: Raw, path: tuple[Any, ...]) -> ConditionalBody:
    return ConditionalBody(
        tuple(
            Branch(_expr(b.get("when")), tuple(b["next_steps"]), b.get("name"))
            for b in r["conditions"]
        )
    )


def _approval(builder: _StepBuilder, r: Raw, path: tuple[Any, ...]) -> ApprovalBody:
    raw_with = r["with"]
    approvers = raw_with.get("approvers", ())
    return ApprovalBody(
        compile_value(raw_with),
        tuple(approvers) if isinstance(approvers, list) else (),
    )


def _react(builder: _StepBuilder, r: Raw, path: tuple[Any, ...]) -> ReactBody:
    raw_with = r["with"]
    tool_defaults = defaults("react_tool")
    tools = tuple(
        ReactTool(
            name=str(t["name"]),
            description=str(t.get("description") or t["name"]),
            parameters={**tool_defaults, **t}["parameters"],
            action=t.get("action"),
            step=t.get("step"),
            with_=compile_value({**tool_defaults, **t}["with"]),
        )
        for t in raw_with.get("tools", [])
    )
    model = raw_with.get("model")
    return ReactBody(
        compile_value(raw_with),
        model=str(model) if model is not None else None,
        tools=tools,
        agent_capability=r.get("agent_capability"),
    )


_BODIES: Mapping[StepType, Callable[[_StepBuilder, Raw, tuple[Any, ...]], Body]] = {
    StepType.ACTION: lambda builder, r, path: _call(r),
    StepType.PARALLEL: _StepBuilder.parallel,
    StepType.CONDITIONAL: _conditional,
    StepType.LOOP: _loop,
    StepType.HUMAN_APPROVAL: _approval,
    StepType.REACT: _react,
    StepType.WORKFLOW: lambda builder, r, path: _subflow(builder, r, path),
}


def _subflow(builder: _StepBuilder, r: Raw, path: tuple[Any, ...]) -> Body:
    from wfctl.model.subflow import subflow_body  # it builds the child with this module

    return subflow_body(builder, r, path)


def _file_outputs(raw: Mapping[str, Raw] | None) -> Mapping[str, FileOutput] | None:
    if not raw:
        return None
    d = _FILE_OUTPUT_DEFAULTS
    return MappingProxyType(
        {
            name: FileOutput(
                compile_value(spec["path"]),
                int(spec.get("max_bytes", d["max_bytes"])),
                str(spec.get("format", d["format"])),
            )
            for name, spec in raw.items()
        }
    )


def _cache(raw: Raw) -> StepCache | None:
    """`cache:`, with a hash of the step as written (minus `cache.ttl`: a new ttl keeps
    the entries), so that an edited step misses."""
    spec = raw.get("cache")
    if spec is None:
        return None
    definition = {**raw, "cache": {"key": spec["key"]}}
    text = json.dumps(definition, sort_keys=True, default=str, separators=(",", ":"))
    ttl = spec.get("ttl")
    return StepCache(
        key=compile_value(spec["key"]),
        ttl=None if ttl is None else float(ttl),
        definition=hashlib.sha256(text.encode()).hexdigest(),
    )


def _expr(source: str | None) -> Expression | None:
    return compile_expression(source) if source is not None else None


def _exprs(mapping: Mapping[str, str]) -> Mapping[str, Expression]:
    return MappingProxyType({k: compile_expression(v) for k, v in mapping.items()})


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def _sla(sla: Raw) -> SlaTargets:
    d = {**defaults("sla_targets"), **sla}
    return SlaTargets(
        max_duration=d.get("max_duration"),
        min_success_rate=d.get("min_success_rate"),
        step_max_duration=_frozen(d["step_max_duration"]),
    )


def _agent(a: Raw) -> Agent:
    d = {**defaults("agent"), **a}
    return Agent(
        name=a["name"],
        capabilities=frozenset(a["capabilities"]),
        action=a.get("action"),
        with_=_frozen(d["with"]),
        model=a.get("model"),
        max_concurrency=int(d["max_concurrency"]),
        description=d["description"],
        resources=_frozen(a.get("resources", {})),
    )
