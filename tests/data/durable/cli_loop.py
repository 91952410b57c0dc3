"""Run one wfctl command N times in this process, as fast as it goes, and report.

    python cli_loop.py N START_FILE -- wfctl-args...

Waits until START_FILE exists (so several loops start at the same moment), then calls
`wfctl.cli.main(args)` N times. Prints one JSON object: the exit codes, every stderr
text, and every stdout text.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path

from wfctl.cli import main


def once(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue(), err.getvalue()


def run() -> None:
    n = int(sys.argv[1])
    start = Path(sys.argv[2])
    args = sys.argv[sys.argv.index("--") + 1 :]
    deadline = time.monotonic() + 60
    while not start.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    codes, outs, errs = [], [], []
    for _ in range(n):
        code, out, err = once(args)
        codes.append(code)
        outs.append(out)
        errs.append(err)
    sys.__stdout__.write(json.dumps({"codes": codes, "stdout": outs, "stderr": errs}) + "\n")


if __name__ == "__main__":
    run()
