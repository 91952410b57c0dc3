"""The run journal's writer: every event appended to the state store before anyone shows it.

(`wfctl.state.replay` reads it back.)
"""

from __future__ import annotations

import asyncio
import json

from wfctl.events import Event, RunFinished, StepStateChanged
from wfctl.model import StepStatus
from wfctl.state.output_cap import DEFAULT_OUTPUT_LIMIT, OutputCap
from wfctl.state.store import MAX_BATCH, StateStore, StoreError

# One encoder for every event: json.dumps(default=...) builds a new one per call.
_encode = json.JSONEncoder(default=str, separators=(",", ":")).encode


class Journal:
    """Event subscriber: subscribe it first, so an event is journaled before it is shown.

    Writes are grouped: the events of one event-loop tick are written as one row and
    committed at its end (per event, a commit costs ~10x an insert and an insert ~3x the
    encoding), except that a step's `running` event is committed at once, with everything
    before it, because the step's side effects follow it. So a killed process has done at
    most one unjournaled attempt per in-flight step; what it only showed in its last tick
    may be missing from the journal. `pure_steps` (steps whose action changes nothing
    outside the run) need no such barrier. Of each step attempt's output lines, the
    last `output_limit` bytes are kept (wfctl.state.output_cap).
    """

    def __init__(
        self,
        store: StateStore,
        run_id: str,
        pure_steps: frozenset[str] = frozenset(),
        output_limit: int | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.seq = store.next_seq(run_id)  # of the first event not yet written
        self.pure_steps = pure_steps
        self._pending: list[Event] = []
        # What is kept of each attempt's output lines.
        self.cap = OutputCap(DEFAULT_OUTPUT_LIMIT if output_limit is None else output_limit)

    def __call__(self, event: Event) -> None:
        self._pending.append(event)
        if (
            isinstance(event, StepStateChanged)
            and event.status is StepStatus.RUNNING
            and event.step_id not in self.pure_steps
        ) or isinstance(event, RunFinished):
            self.flush()
        elif len(self._pending) >= MAX_BATCH:
            self.flush()  # a long synchronous stretch (a chain of no-ops) still writes often
        elif len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop: nothing to group with
                self.flush()

    def flush(self) -> None:
        """Write and commit the events not yet written."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            used = self._write(pending)
        except StoreError:
            if self.store.on_write_error is None:
                raise  # nobody was told: the caller must see it
            # Told already (the run is stopping): these events are lost, loudly.
            return
        self.seq += used

    def _write(self, pending: list[Event]) -> int:
        """Write `pending`; the number of seqs used."""
        plan = self.cap.plan(pending, self.seq, Event.to_json)
        rows = [(seq, ts, kind, step, _encode(data)) for seq, ts, kind, step, data in plan.rows]
        self.store.write_rows(self.run_id, rows, plan.deleted)
        return plan.next_seq - self.seq
