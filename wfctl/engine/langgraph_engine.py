"""`--engine langgraph`: the workflow's own compiled LangGraph graph runs the run.

Each node runs its step through the same lifecycle as the event-driven scheduler (its
trigger rule, `when`, the attempt loop with retries, timeouts and breakers, the events
the live table, journal and report read); LangGraph decides when a node runs. What a
node changed (its records, `vars`, completions, collected from the event stream of its
own task) is its state update, checkpointed by LangGraph's SQLite saver with
`durability="sync"` in its own file (one writer per file): resume reads it back.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from wfctl.compile.langgraph import ERROR_RECOVERY, RUNTIMES, build_graphs
from wfctl.compile.plan import Container
from wfctl.engine.langgraph_groups import GroupControl, GroupLimit
from wfctl.engine.langgraph_loops import LoopDriver
from wfctl.engine.lifecycle import execute, handle_failure
from wfctl.engine.scheduler import Scheduler
from wfctl.events import Event, StepStateChanged, VarsChanged
from wfctl.model import Step, StepStatus, StepType
from wfctl.records import Attempt, StepRecord
from wfctl.state.replay import Replayed

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor
    from wfctl.engine.scopes import Scope
    from wfctl.state.store import StateStore

_T = TypeVar("_T", str, Step)
_R = TypeVar("_R")

__all__ = [
    "EngineRuntime",
    "LangGraphScheduler",
    "attach",
    "checkpoint_path",
    "observe",
    "record_from_state",
    "record_to_state",
    "run",
]


_SETTLE_LIMIT = 30.0  # seconds a cancelled run waits for its nodes to record their end


def checkpoint_path(store: StateStore, run_id: str) -> Path:
    """The run's LangGraph checkpoint file (beside the journal, never inside it)."""
    return Path(store.directory) / "langgraph" / f"{run_id}.sqlite"


# -- records as graph state -------------------------------------------------------------
def record_to_state(rec: StepRecord) -> dict[str, Any]:
    """A step record as plain data (what the checkpoint holds)."""
    return {
        "status": rec.status.value,
        "attempts": [
            [a.number, a.started_at, a.ended_at, a.error, a.error_kind] for a in rec.attempts
        ],
        "output": rec.output,
        "error": rec.error,
        "error_kind": rec.error_kind,
        "reason": rec.reason,
        "started_at": rec.started_at,
        "ended_at": rec.ended_at,
        "slot_wait": rec.slot_wait,
        "agent": rec.agent,
        "agent_reason": rec.agent_reason,
        "metrics": dict(rec.metrics),
        "handler_runs": list(rec.handler_runs),
    }


def record_from_state(step_id: str, data: Mapping[str, Any]) -> StepRecord:
    """The record back from its checkpointed data."""
    return StepRecord(
        step_id,
        status=StepStatus(data["status"]),
        attempts=[Attempt(*a) for a in data.get("attempts", ())],
        output=data.get("output"),
        error=data.get("error"),
        error_kind=data.get("error_kind"),
        reason=data.get("reason"),
        started_at=data.get("started_at"),
        ended_at=data.get("ended_at"),
        slot_wait=float(data.get("slot_wait") or 0.0),
        agent=data.get("agent"),
        agent_reason=data.get("agent_reason"),
        metrics=dict(data.get("metrics") or {}),
        handler_runs=list(data.get("handler_runs") or ()),
    )


class _Changes:
    """What one node changed, collected from the events of its task (and of the tasks it
    starts: a parallel step's update holds its children's records too)."""

    __slots__ = ("completed", "parent", "touched", "vars")

    def __init__(self, parent: _Changes | None) -> None:
        self.parent = parent
        self.touched: dict[str, None] = {}
        self.vars: dict[str, Any] = {}
        self.completed: list[str] = []

    def update(self, records: Mapping[str, StepRecord]) -> dict[str, Any]:
        out: dict[str, Any] = {"steps": {s: record_to_state(records[s]) for s in self.touched}}
        if self.vars:
            out["vars"] = self.vars
        if self.completed:
            out["completed"] = self.completed
        return out


_CHANGES: contextvars.ContextVar[_Changes | None] = contextvars.ContextVar(
    "wfctl_node_changes", default=None
)


def observe(event: Event) -> None:
    """Bus subscriber (this engine only): file the change under every running node."""
    changes = _CHANGES.get()
    while changes is not None:
        match event:
            case StepStateChanged(step_id=step_id, status=status):
                changes.touched[step_id] = None
                if status is StepStatus.COMPLETED:
                    changes.completed.append(step_id)
            case VarsChanged(values=values):
                changes.vars.update(values)
        changes = changes.parent


class EngineRuntime(GroupControl, LoopDriver):
    """The :class:`wfctl.compile.langgraph.GraphRuntime` (and loop runtime) of one run:
    the graph's nodes run steps here."""

    def __init__(self, ex: Executor, graphs: Mapping[str | None, Any]) -> None:
        super().__init__(ex, graphs)
        self._ex = ex
        self._nodes: dict[str, asyncio.Task[Any]] = {}  # the node tasks of steps running
        self._groups: dict[str, GroupLimit] = {}  # parallel groups' limits
        self._running: set[asyncio.Task[Any]] = set()
        self._in_node: set[str] = set()  # steps run by their own node right now
        self._deferred: set[str] = set()  # failed steps whose handlers their node runs
        self._idle = asyncio.Event()
        self._idle.set()

    async def stop(self) -> None:
        """Cancel the steps still running and wait until each recorded how it stopped:
        a cancelled `ainvoke` returns without cancelling (or awaiting) its node tasks."""
        for task in list(self._running):
            task.cancel()
        await self._idle.wait()

    @property
    def executor(self) -> Executor:
        """The run's executor (records, vars)."""
        return self._ex

    async def run_step(self, step_id: str, subgraph: Any) -> dict[str, Any]:
        ex = self._ex
        record = ex.records[step_id]
        if record.status.terminal:
            # Done before (a resumed run, or a second trigger): the record stands.
            return {"steps": {step_id: record_to_state(record)}}
        self._in_node.add(step_id)
        task = asyncio.current_task()
        if task is not None:
            self._nodes[step_id] = task
        try:
            return await self._tracked(self._run(step_id))
        finally:
            self._in_node.discard(step_id)
            self._nodes.pop(step_id, None)

    async def _tracked(self, work: Awaitable[None]) -> dict[str, Any]:
        """Await a node's work; what it changed, as the node's state update."""
        changes = _Changes(_CHANGES.get())
        token = _CHANGES.set(changes)
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
            self._idle.clear()
        try:
            await work
        finally:
            _CHANGES.reset(token)
            self._running.discard(task)
            if not self._running:
                self._idle.set()
        return changes.update(self._ex.records)

    def defers_handlers(self, step_id: str) -> bool:
        """A failed step run by its node: its node's edge to error recovery runs them."""
        if step_id not in self._in_node:
            return False
        self._deferred.add(step_id)
        return True

    def needs_recovery(self, step_id: str) -> bool:
        return step_id in self._deferred

    async def recover_step(self, step_id: str) -> dict[str, Any]:
        self._deferred.discard(step_id)
        ex = self._ex
        step = ex.workflow.all_steps[step_id]

        async def handle() -> None:
            # The handlers take the step's slot, as they would inside the step.
            ex.scheduler.reserve_slot(step_id, ex.plan.priority.get(step_id, 0.0))
            try:
                await handle_failure(ex, step, ex.records[step_id])
            finally:
                ex.scheduler.drop_slot(step_id)

        return await self._tracked(handle())

    async def _run(self, step_id: str) -> None:
        ex = self._ex
        scheduler = ex.scheduler
        if self._decided(step_id, scheduler.decide):
            async with self._group_limit(ex.workflow.all_steps[step_id]):
                scheduler.reserve_slot(step_id, ex.plan.priority.get(step_id, 0.0))
                try:
                    # Every node LangGraph started in this superstep decides before any
                    # of them runs, as the scheduler decides the steps a finish releases.
                    await asyncio.sleep(0)
                    await execute(ex, ex.workflow.all_steps[step_id])
                finally:
                    scheduler.drop_slot(step_id)

    def _decided(self, key: _T, decide: Callable[[_T], _R]) -> _R:
        """`decide(key)`; inside a container admitted after the run failed (`all_done`),
        as if the run had not failed, like the scheduler's (synchronous: nothing else
        sees the failure cleared)."""
        ex = self._ex
        step = key if isinstance(key, Step) else ex.workflow.all_steps[str(key)]
        scheduler = ex.scheduler
        admitted = getattr(scheduler, "admitted", ())
        if step.container is None or step.container not in admitted:
            return decide(key)
        fatal, ex.fatal = ex.fatal, None
        try:
            return decide(key)
        finally:
            ex.fatal = fatal if ex.fatal is None else ex.fatal

    def waiting(self, step_id: str) -> bool:
        return self._ex.records[step_id].status is StepStatus.WAITING

    def approval_due(self, step_id: str) -> bool:
        return any(self._ex.approval_due(a) for a in self._approvals_waiting(step_id))

    def _approvals_waiting(self, step_id: str) -> list[str]:
        """The waiting approval steps that `step_id` waits for: itself, or (a parallel
        step) its children's, at any depth."""
        ex = self._ex
        step = ex.workflow.all_steps[step_id]
        if step.step_type is StepType.HUMAN_APPROVAL:
            return [step_id]
        found: list[str] = []
        for child in step.children:
            if ex.records[child.step_id].status is StepStatus.WAITING:
                found.extend(self._approvals_waiting(child.step_id))
        return found

    def failed(self) -> bool:
        return self._ex.fatal is not None

    async def recover(self) -> dict[str, Any]:
        changes = _Changes(None)
        token = _CHANGES.set(changes)
        try:
            await self._ex.rollback()
        finally:
            _CHANGES.reset(token)
        return changes.update(self._ex.records)


class LangGraphScheduler(Scheduler):
    """A container (a parallel step's children) runs as its own compiled subgraph, and a
    loop as its subgraph with a back-edge (the loop step's `run_loop` hook)."""

    def __init__(
        self, executor: Executor, graphs: Mapping[str | None, Any], runtime: EngineRuntime
    ) -> None:
        super().__init__(executor)
        self._graphs = graphs
        self._runtime = runtime
        #: Containers started after the run had failed (let in by `all_done`): their
        #: steps are decided as if it had not.
        self.admitted: set[str] = set()

    def defers_handlers(self, step_id: str) -> bool:
        """A step run by its own node: the graph's edge to error recovery runs them."""
        return self._runtime.defers_handlers(step_id)

    def stopping(self, container: str) -> None:
        """A fail_fast group's children run as node tasks of its subgraph, outside the
        group's cancel scope: they are stopped here, before a freed slot starts one."""
        why = self.stop_why.get(container, "")
        self._runtime.stop_nodes(self._ex.plan.levels[container], why)

    async def run_loop(self, step: Step, body: Container) -> Any:
        """A loop step's iterations or items, by its subgraph."""
        return await self._runtime.run_loop(step, body)

    async def run_container(
        self, container: Container, scope: Scope | None = None, *, limited: bool = True
    ) -> None:
        if scope is not None:
            # A group loop's iteration: its body's copies run on the event scheduler,
            # inside the loop step's node.
            await super().run_container(container, scope, limited=limited)
            return
        ex = self._ex
        if container.container is not None and ex.fatal is not None:
            self.admitted.add(container.container)
        # The node's config (checkpointer, namespace, durability) is inherited.
        try:
            await self._graphs[container.container].ainvoke({"run_id": ex.run_id})
        except asyncio.CancelledError:
            # While the canceller's reason (`stop_why`) still stands.
            await self._runtime.cancel_nodes(container)
            raise
        if ex.stop_reason is None:
            self._detect_deadlock(container.steps)


# -- a run ---------------------------------------------------------------------------------
def attach(ex: Executor, graphs: Mapping[str | None, Any]) -> EngineRuntime:
    """Make `ex` run on `graphs`: its scheduler, its runtime (registered for the nodes)."""
    runtime = EngineRuntime(ex, graphs)
    ex.scheduler = LangGraphScheduler(ex, graphs, runtime)
    ex.bus.subscribe(observe)
    RUNTIMES[ex.run_id] = runtime
    return runtime


async def run(ex: Executor, store: StateStore | None, journal: Replayed | None) -> None:
    """Run the executor's workflow on its compiled graph to an end (or an interrupt)."""
    async with AsyncExitStack() as stack:
        checkpointer = await _checkpointer(stack, store, ex.run_id)
        graphs = build_graphs(ex.plan, checkpointer)
        runtime = attach(ex, graphs)
        graph = graphs[None]
        config: dict[str, Any] = {
            "configurable": {"thread_id": ex.run_id},
            # One superstep per step at most, plus the approval rounds and the ending.
            "recursion_limit": 100 + 4 * len(ex.workflow.all_steps),
        }
        try:
            graph_input = await _input(graph, config, ex, journal)
            await graph.ainvoke(graph_input, config, durability="sync")
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_SETTLE_LIMIT):
                await runtime.stop()
            RUNTIMES.pop(ex.run_id, None)
        if ex.stop_reason is None:
            ex.scheduler._detect_deadlock(ex.plan.levels[None].steps)


async def _checkpointer(stack: AsyncExitStack, store: StateStore | None, run_id: str) -> Any:
    """The run's own SQLite saver (WAL, one writer: this process holds the run's lock), or
    an in-memory one for a run without a store (interrupt() needs a saver)."""
    if store is None:
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = checkpoint_path(store, run_id)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    conn = await aiosqlite.connect(str(path))

    async def close() -> None:
        # Shielded: a cancelled run still closes it (else its worker thread outlives the
        # event loop).
        with anyio.CancelScope(shield=True):
            await conn.close()

    stack.push_async_callback(close)
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute("PRAGMA busy_timeout = 30000")
    path.chmod(0o600)
    return AsyncSqliteSaver(conn)


async def _input(graph: Any, config: dict[str, Any], ex: Executor, journal: Replayed | None) -> Any:
    """A fresh run's input, or (resuming) the records restored from the checkpoint and
    what continues the graph from it."""
    fresh = {"run_id": ex.run_id, "vars": dict(ex.vars)}
    if journal is None:
        return fresh
    snapshot = await graph.aget_state(config, subgraphs=True)
    if not snapshot.values:
        return fresh  # killed before the first checkpoint: nothing ran
    _restore(ex, snapshot, journal)
    interrupts = _interrupts(snapshot)
    if interrupts:
        from langgraph.types import Command

        # The decisions are the executor's (recorded by `wfctl approve`); each waiting
        # node asks it again when it resumes.
        return Command(resume={i.id: {"decided": sorted(ex.approvals)} for i in interrupts})
    return None if snapshot.next else fresh


def _interrupts(snapshot: Any) -> list[Any]:
    found = list(snapshot.interrupts)
    for task in snapshot.tasks:
        if task.state is not None and hasattr(task.state, "tasks"):
            found.extend(i for i in _interrupts(task.state) if i not in found)
    return found


def _restore(ex: Executor, snapshot: Any, journal: Replayed) -> None:
    """Take over the checkpointed records (finished tasks' writes and subgraphs included).

    The journal is written as events happen, the checkpoint when a node returns: a step
    the journal saw end (a kill between the two) keeps that end, and a step that did not
    end keeps every attempt the journal saw (the interrupted one included)."""
    from wfctl.engine.resume import restore

    steps: dict[str, Any] = {}
    values: dict[str, Any] = dict(journal.vars)
    completed: list[str] = list(journal.completion_order)
    _fold(snapshot, steps, values, completed)
    order = list(dict.fromkeys(reversed(completed)))[::-1]  # the last completion counts
    records = {s: record_from_state(s, d) for s, d in steps.items() if s in ex.records}
    for step_id, seen in journal.records.items():
        if step_id in ex.records and not (step_id in records and records[step_id].status.terminal):
            records[step_id] = seen
    restore(ex, Replayed(records=records, vars=values, completion_order=order))
    _recovering(ex, snapshot)


def _recovering(ex: Executor, snapshot: Any) -> None:
    """Steps whose `<id>.error_recovery` node was due when the run stopped have not failed
    the run yet: their handlers run when it continues (and may recover them)."""
    suffix = "." + ERROR_RECOVERY
    due = {name[: -len(suffix)] for name in snapshot.next if name.endswith(suffix)}
    if not due or ex.fatal is None:
        return
    ex.fatal = None  # restore took every failed step for one that failed the run
    skip = due | set(ex.workflow.handlers)
    for step_id, record in ex.records.items():
        if record.status is StepStatus.FAILED and step_id not in skip:
            ex.mark_fatal(ex.workflow.all_steps[step_id], record)


def _fold(snapshot: Any, steps: dict[str, Any], values: dict[str, Any], done: list[str]) -> None:
    _merge(snapshot.values, steps, values, done)
    for task in snapshot.tasks:
        if isinstance(task.result, Mapping):
            _merge(task.result, steps, values, done)
        if task.state is not None and hasattr(task.state, "values"):
            _fold(task.state, steps, values, done)


def _merge(
    update: Mapping[str, Any], steps: dict[str, Any], values: dict[str, Any], done: list[str]
) -> None:
    steps.update(update.get("steps") or {})
    values.update(update.get("vars") or {})
    done.extend(update.get("completed") or ())
