"""The react step's agent graph has its own saver: run 50 times in a durable run (a real
`wfctl run` against the scripted OpenAI server on 127.0.0.1), it never writes into the
run's files, nothing waits on a lock, and the journal is complete every time.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import clean_env
from openai_stub import Request, StubServer, answer, calls, serve, tool_call

from wfctl.state.store import StateStore

pytest.importorskip("langchain_openai")

KEY = "sk-stub-0123456789"
RUNS = 50


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with serve() as server:

        def reply(request: Request) -> dict[str, object]:
            # One tool round, then the answer: the agent graph takes several supersteps
            # (each would be a checkpoint, were it writing into the run's saver).
            if not request.tool_results():
                return calls(tool_call("shout", {"text": "hi"}))
            return answer({"ok": True})

        server.route("stub-model", reply)
        yield server


def _workflow() -> str:
    steps = "".join(
        f"""
  - step_id: r{i}
    step_type: react
    with:
      model: openai:stub-model
      prompt: "say hi {i}"
      max_iterations: 4
      tools:
        - name: shout
          description: Say it.
          action: noop
          parameters: {{type: object, properties: {{text: {{type: string}}}}}}
"""
        for i in range(RUNS)
    )
    return f"workflow_id: react50\nname: react 50\nmax_parallel_steps: 4\nsteps:{steps}"


def _tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(db)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {}
        for name in ("checkpoints", "writes"):
            if name in names:
                out[name] = conn.execute(f"SELECT DISTINCT checkpoint_ns FROM {name}").fetchall()
        return out
    finally:
        conn.close()


@pytest.mark.parametrize("engine", ["events", "langgraph"])
def test_fifty_react_steps_in_a_durable_run_keep_the_journal_whole(
    stub: StubServer, tmp_path: Path, engine: str
) -> None:
    (tmp_path / "wf.yaml").write_text(_workflow(), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "wfctl", "run", "wf.yaml", "--no-live", "--engine", engine],
        cwd=tmp_path,
        env=clean_env(OPENAI_BASE_URL=stub.base_url, OPENAI_API_KEY=KEY),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "locked" not in proc.stdout + proc.stderr
    state = tmp_path / ".wfctl" / "state.db"
    # The journal's file holds no LangGraph checkpoint at all.
    assert _tables(state) == {}
    store = StateStore(tmp_path / ".wfctl", create=False)
    try:
        (row,) = store.runs()
        events = [e for _, e in store.events(row.run_id)]
    finally:
        store.close()
    # Every event numbered, none missing: each step ran, then completed.
    ended = {
        e["step_id"]
        for e in events
        if e.get("kind") == "step_state" and e.get("status") == "completed"
    }
    assert ended == {f"r{i}" for i in range(RUNS)}
    assert [e["status"] for e in events if e.get("kind") == "run_finished"] == ["completed"]
    assert len(stub.requests) == 2 * RUNS
    if engine == "langgraph":
        # Only the workflow's own graph checkpoints in its file: no agent namespaces.
        saved = _tables(tmp_path / ".wfctl" / "langgraph" / next(_files(tmp_path)))
        assert {ns for rows in saved.values() for (ns,) in rows} == {""}, saved


def _files(tmp_path: Path) -> Iterator[str]:
    for p in sorted((tmp_path / ".wfctl" / "langgraph").glob("*.sqlite")):
        yield p.name
