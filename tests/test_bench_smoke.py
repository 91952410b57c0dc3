"""Smoke test of the benchmark command: it runs every scenario and prints its table.

Timings are never asserted (the machines are noisy); bench/run.py reports them. CI installs
only `.[test]`: rows that need the `bench` extra (check-jsonschema, Prefect) are checked
only when it is installed. Prefect's start-up alone takes 15-20 s here, so the main smoke
run leaves it out; a second test runs one tiny Prefect scenario when Prefect is installed
and WFCTL_BENCH_PREFECT=1 is set (it would double the time of this file otherwise).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "run.py"
RESULTS = ROOT / "bench" / "RESULTS.md"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    before = RESULTS.stat().st_mtime_ns if RESULTS.exists() else None
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # A --quick run never rewrites the recorded results.
    assert (RESULTS.stat().st_mtime_ns if RESULTS.exists() else None) == before
    return proc


def _header(stdout: str) -> list[str]:
    header = next((line for line in stdout.splitlines() if line.startswith("| Scenario")), None)
    assert header is not None, stdout
    return [c.strip() for c in header.strip("|").split("|")]


@pytest.mark.slow
def test_bench_quick_run_prints_the_table() -> None:
    proc = _run(
        "--runs", "1", "--sizes", "12", "--noop-steps", "100", "--shell-steps", "16",
        "--files", "4", "--memory-steps", "100", "--live-steps", "20", "--no-prefect",
    )  # fmt: skip
    out = proc.stdout
    assert _header(out) == ["Scenario", "System", "Median", "Ratio", "Target", "Met"]
    # Every scenario and every compared system made it into the table.
    for text in (
        "critical path, 12 steps",
        "overhead, 100 no-op steps, chain",
        "fan-out",
        "journal cost: wfctl + journal / wfctl",
        "LangGraph",
        "plain asyncio",
        "subprocess, 16 `true` steps, limit 8",
        "plain asyncio create_subprocess_exec",
        "scarce slots",
        "FIFO",
        "wfctl --help",
        "python -c pass",
        "wfctl validate <1 file>",
        "wfctl validate <4 files>",
        "memory, peak RSS (100 no-op steps)",
        "wfctl run, 100 steps fan-out (journal on)",
        "wfctl validate <100-step file>",
        "live view, 20 no-op steps",
        "100-cell matrix of 3-step sub-workflows",
        "Prefect",  # the "not run" row
        "Targets met:",
    ):
        assert text in out, text
    if importlib.util.find_spec("check_jsonschema") is not None:
        assert "check-jsonschema <4 files>" in out
        assert "x check-jsonschema" in out
    else:
        assert re.search(r"\|\s*check-jsonschema\s*\|\s*not installed\s*\|", out), out


@pytest.mark.slow
def test_bench_prefect_peer() -> None:
    if importlib.util.find_spec("prefect") is None:
        pytest.skip("Prefect is in the bench extra: pip install -e '.[bench]'")
    if os.environ.get("WFCTL_BENCH_PREFECT") != "1":
        pytest.skip("Prefect's start-up takes 15-20 s: set WFCTL_BENCH_PREFECT=1 to run this")
    proc = _run("--only", "critical", "--runs", "1", "--sizes", "6")
    assert "Prefect start-up" in proc.stdout, proc.stdout + proc.stderr
    assert "Prefect 3 (local flow, task futures)" in proc.stdout


def test_the_startup_scenarios_renamed_copies_of_every_example_all_validate(
    tmp_path: Path,
) -> None:
    # The start-up rows time `wfctl validate` on these files; an example that calls a
    # sub-workflow (`uses: ./x.yaml`) must still find it beside its renamed copy.
    spec = importlib.util.spec_from_file_location(
        "bench_validate", ROOT / "bench" / "bench_validate.py"
    )
    assert spec is not None and spec.loader is not None
    bench_validate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_validate)
    count = 2 * len(bench_validate.EXAMPLES)
    files = bench_validate.generate(tmp_path, count)
    assert len(files) == count
    proc = subprocess.run(
        [sys.executable, "-m", "wfctl", "validate", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{count} files valid" in proc.stdout + proc.stderr
