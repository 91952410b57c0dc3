"""Smoke test of the benchmark command: it runs every scenario and prints its table.

Timings are never asserted (the machines are noisy); bench/run.py reports them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "run.py"


@pytest.mark.slow
def test_bench_quick_run_prints_the_table() -> None:
    results = ROOT / "bench" / "RESULTS.md"
    before = results.stat().st_mtime_ns if results.exists() else None
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--repeat",
            "1",
            "--sizes",
            "12",
            "--noop-steps",
            "100",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next((line for line in lines if line.startswith("| Scenario")), None)
    assert header is not None, proc.stdout
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "Scenario",
        "System",
        "Median",
        "Ratio",
        "Target",
        "Met",
    ]
    # Every scenario and every compared system made it into the table.
    for text in (
        "critical path, 12 steps",
        "overhead, 100 no-op steps, chain",
        "fan-out",
        "scarce slots",
        "wfctl",
        "LangGraph",
        "plain asyncio",
        "FIFO",
    ):
        assert text in proc.stdout, text
    assert "Targets met:" in proc.stdout
    # Without --write the recorded results are left alone.
    assert (results.stat().st_mtime_ns if results.exists() else None) == before
