"""Prefect 3 as a peer: the same DAG as a local flow whose tasks are submitted as futures.

Prefect runs in its own child process (this file, run as a script), started once per
benchmark run and kept for every scenario that needs it; the parent sends it one DAG at
a time and gets back the wall time of the flow call, measured inside the child around
`dag_flow()` exactly as the other systems are timed around their own run. A separate
process keeps Prefect's background threads (event and log workers, the ephemeral
server's services) from running inside the process where wfctl and the other peers are
timed, and its logging and settings from touching theirs.

Prefect is set up the way a user trying it locally gets it: no PREFECT_API_URL, so the
first flow starts an ephemeral API server backed by SQLite (in a temporary PREFECT_HOME);
analytics and telemetry off (this machine has no internet). The flow uses Prefect's
default task runner (`ThreadPoolTaskRunner`, one thread per submitted task: no
concurrency limit, as wfctl's runs here have none). Each step is a synchronous task that
sleeps its duration (nothing for a no-op), submitted with `wait_for=` its dependencies'
futures. Tasks use `cache_policy=NO_CACHE` (wfctl does not cache step results either,
and hashing inputs would only add to Prefect's time); results are not persisted
(Prefect's default).

Start-up (spawn -> import prefect -> first trivial flow, which starts the ephemeral
server and creates its database) is measured once and reported on its own row.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # the child runs this file as a script: no `scenarios` package there
    from scenarios.common import Dag

STARTUP_TIMEOUT = 300.0  # seconds the child may take to import Prefect and start its server
SETTLE_MAX = 120.0  # seconds to wait, at most, for Prefect's server to go quiet after a run
_IDLE_SHARE = 0.10  # quiet: less than 10% of one core used over a sampling interval
_SAMPLE = 0.5  # seconds
_DROPPED_ENV = ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH")


def available() -> bool:
    return importlib.util.find_spec("prefect") is not None


def prefect_version() -> str:
    try:
        from importlib.metadata import version

        return version("prefect")
    except Exception:
        return "not installed"


class PrefectPeer:
    """The parent's handle on the Prefect child process."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="wfctl-bench-prefect-")
        home = Path(self._tmp.name)
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env.update(
            PREFECT_HOME=str(home / "home"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY="false",
            DO_NOT_TRACK="1",
            PREFECT_LOGGING_LEVEL="WARNING",
            PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="true",
            PYTHONUNBUFFERED="1",
        )
        self.log_path = home / "prefect.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        started = time.perf_counter()
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=home,
            env=env,
            text=True,
        )
        ready = self._receive(STARTUP_TIMEOUT)
        #: seconds from spawn to the end of the first (trivial) flow
        self.startup = time.perf_counter() - started
        #: seconds the child spent importing prefect, and on its first flow
        self.import_seconds = float(ready["import"])
        self.first_flow_seconds = float(ready["first_flow"])
        #: seconds waited after each run for the server to go quiet (see `settle`)
        self.settle_seconds: list[float] = []
        self.settle()

    def run(self, dag: Dag) -> float:
        """Run the DAG as one Prefect flow; seconds the flow call took (inside the child)."""
        assert self._proc.stdin is not None
        message = {"deps": {k: list(v) for k, v in dag.deps.items()}, "durations": dag.durations}
        self._proc.stdin.write(json.dumps(message) + "\n")
        self._proc.stdin.flush()
        reply = self._receive(None)
        self.settle()
        return float(reply["elapsed"])

    def settle(self) -> float:
        """Wait until the Prefect processes (the child and its ephemeral server) stop using
        the CPU; seconds waited. The flow call returns while the server is still recording
        the run's events; on a 2-core machine that backlog would slow whatever is timed
        next. The wait is not counted as Prefect's time (the flow had returned)."""
        started = time.perf_counter()
        previous = self._cpu_seconds()
        while time.perf_counter() - started < SETTLE_MAX:
            time.sleep(_SAMPLE)
            current = self._cpu_seconds()
            if current - previous < _IDLE_SHARE * _SAMPLE:
                break
            previous = current
        waited = time.perf_counter() - started
        self.settle_seconds.append(waited)
        return waited

    def _cpu_seconds(self) -> float:
        """CPU time (user + system) of the child and all its descendants, from /proc."""
        ticks = os.sysconf("SC_CLK_TCK")
        parents: dict[int, int] = {}
        used: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry.name)] = int(fields[1])
            used[int(entry.name)] = int(fields[11]) + int(fields[12])
        family = {self._proc.pid}
        grew = True
        while grew:
            grew = False
            for pid, ppid in parents.items():
                if ppid in family and pid not in family:
                    family.add(pid)
                    grew = True
        return sum(used.get(pid, 0) for pid in family) / ticks

    def _receive(self, timeout: float | None) -> dict[str, Any]:
        assert self._proc.stdout is not None
        if timeout is not None:
            import selectors

            with selectors.DefaultSelector() as sel:
                sel.register(self._proc.stdout, selectors.EVENT_READ)
                if not sel.select(timeout):
                    self.close()
                    raise RuntimeError(f"Prefect did not start in {timeout:.0f} s{self._tail()}")
        line = self._proc.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError(f"the Prefect child exited{self._tail()}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"Prefect run failed: {reply['error']}{self._tail()}")
        return reply

    def _tail(self) -> str:
        self._log.flush()
        text = self.log_path.read_text("utf-8", errors="replace")
        return ":\n" + "\n".join(text.splitlines()[-30:]) if text.strip() else ""

    def close(self) -> None:
        if self._proc.poll() is None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        self._tmp.cleanup()


_PEER: PrefectPeer | None = None


def peer() -> PrefectPeer:
    """The benchmark run's Prefect child, started on first use."""
    global _PEER
    if _PEER is None:
        _PEER = PrefectPeer()
    return _PEER


def started_peer() -> PrefectPeer | None:
    return _PEER


def close_peer() -> None:
    global _PEER
    if _PEER is not None:
        _PEER.close()
        _PEER = None


# -- the child -------------------------------------------------------------------------


def _serve() -> None:
    # The protocol has stdout to itself; anything Prefect prints goes to stderr (the log).
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(message: dict[str, Any]) -> None:
        proto.write(json.dumps(message) + "\n")

    started = time.perf_counter()
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.futures import wait

    imported = time.perf_counter()

    @task(cache_policy=NO_CACHE)
    def step(seconds: float) -> None:
        if seconds:
            time.sleep(seconds)

    current: dict[str, Any] = {}

    @flow(name="wfctl-bench-dag")
    def dag_flow() -> int:
        deps: dict[str, list[str]] = current["deps"]
        durations: dict[str, float] = current["durations"]
        futures: dict[str, Any] = {}
        for name, after in deps.items():
            futures[name] = step.submit(durations[name], wait_for=[futures[d] for d in after])
        wait(list(futures.values()))
        failed = [n for n, f in futures.items() if not f.state.is_completed()]
        if failed:
            raise RuntimeError(f"{len(failed)} Prefect tasks did not complete: {failed[:3]}")
        return len(futures)

    current.update(deps={"a": [], "b": ["a"]}, durations={"a": 0.0, "b": 0.0})
    dag_flow()  # starts the ephemeral server, creates its database
    first = time.perf_counter() - imported
    reply({"ready": True, "import": imported - started, "first_flow": first})
    for line in sys.stdin:
        request = json.loads(line)
        current.update(request)
        try:
            began = time.perf_counter()
            count = dag_flow()
            elapsed = time.perf_counter() - began
        except Exception as exc:  # reported to the parent, which raises
            reply({"error": f"{type(exc).__name__}: {exc}"})
            continue
        if count != len(request["deps"]):
            reply({"error": f"ran {count} of {len(request['deps'])} tasks"})
            continue
        reply({"elapsed": elapsed})


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        _serve()
    else:
        raise SystemExit("usage: prefect_peer.py --serve (started by bench/run.py)")
