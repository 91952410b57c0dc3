"""Ask a person at the terminal to approve a step while the rest of the run goes on."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from wfctl.records import ApprovalDecision, ApprovalRequest


class TerminalApprover:
    """An approval handler: one prompt at a time; the live table pauses while it asks."""

    def __init__(self, live: Any = None, identity: str | None = None, enforce: bool = True) -> None:
        self.live = live
        self.identity = identity or getpass.getuser()  # who answers at this terminal
        self.enforce = enforce  # only an approver is asked (see wfctl.durable.trusted_root)
        self._lock = anyio.Lock()

    async def __call__(self, request: ApprovalRequest) -> ApprovalDecision | None:
        from wfctl.records import ApprovalDecision

        if self.enforce and request.approvers and self.identity not in request.approvers:
            # Not this user's decision: say so, and leave it to an approver.
            sys.stderr.write(
                f"\n⏸ step '{request.step_id}' waits for one of {', '.join(request.approvers)}"
                f" (you are {self.identity}): wfctl approve {request.run_id} {request.step_id}\n"
            )
            sys.stderr.flush()
            return None
        async with self._lock:
            if self.live is not None:
                self.live.pause()
            try:
                answer = await anyio.to_thread.run_sync(self._ask, request, abandon_on_cancel=True)
            finally:
                if self.live is not None:
                    self.live.resume()
        if answer is None:
            return None
        approved, comment = answer
        return ApprovalDecision(approved, by=self.identity, comment=comment)

    @staticmethod
    def _ask(request: ApprovalRequest) -> tuple[bool, str] | None:
        out = sys.stderr
        who = f" (approvers: {', '.join(request.approvers)})" if request.approvers else ""
        window = (
            f" [times out in {request.timeout:g}s: {request.on_timeout}]" if request.timeout else ""
        )
        out.write(f"\n⏸ approval needed for step '{request.step_id}'{who}{window}\n")
        out.write(f"  {request.message}\n")
        while True:
            out.write("  approve? [y]es / [n]o / [s]kip (decide later with wfctl approve): ")
            out.flush()
            line = sys.stdin.readline()
            if not line:  # stdin closed: leave the step waiting
                return None
            reply = line.strip().lower()
            if reply in ("y", "yes"):
                approved = True
            elif reply in ("n", "no"):
                approved = False
            elif reply in ("s", "skip", "later"):
                return None
            else:
                continue
            out.write("  comment (optional): ")
            out.flush()
            comment = sys.stdin.readline().strip()
            return approved, comment
