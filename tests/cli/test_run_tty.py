"""The README's example run as a new user sees it: under a pseudo-terminal, and in a pipe.

`python -m wfctl run release.yaml --approve approve` is spawned with pexpect on a 40x120
pseudo-terminal. Its output is replayed through a minimal terminal emulator (`Screen`:
cursor movement, erase, scrolling; colours ignored) and the final screen is checked: the
header, every step's row with its final glyph, the summary. The same run in a pipe must
print plain lines without a single escape sequence. The runs are started together (one
thread each) by the `runs` fixture; each has its own temporary working directory.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import clean_env as shared_clean_env

pexpect = pytest.importorskip("pexpect")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "run"
EXAMPLES = ROOT / "workflows"
ROWS, COLS = 40, 120
RUN_TIMEOUT = 90
ANSI = re.compile(r"\x1b\[")
SGR = re.compile(r"\x1b\[([0-9;]*)m")
RELEASE_STEPS = {
    "build": "✔",
    "checks": "✔",
    "unit": "✔",
    "lint": "✔",
    "typecheck": "✔",
    "approve": "✔",
    "deploy": "✔",
    "smoke_test": "✔",
    "health_check": "⤼",
    "undeploy": "⤼",
}
STATUS_OF = {"✔": "completed", "⤼": "skipped", "✘": "failed"}


class Screen:
    """Just enough of a VT100 to replay Rich's Live output: the text left on the screen."""

    CSI = re.compile(r"\x1b\[([0-9;?]*)[ -/]*([@-~])")
    OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")

    def __init__(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, cols
        self.grid = [[" "] * cols for _ in range(rows)]
        self.y = self.x = 0

    def feed(self, data: str) -> None:
        i = 0
        while i < len(data):
            ch = data[i]
            if ch == "\x1b":
                m = self.CSI.match(data, i) or self.OSC.match(data, i)
                if m is None:
                    i += 2  # a two-character escape (ESC 7, ESC =, ...)
                    continue
                if m.re is self.CSI:
                    self._csi(m[1], m[2])
                i = m.end()
                continue
            if ch == "\r":
                self.x = 0
            elif ch == "\n":
                self._linefeed()
            elif ch == "\b":
                self.x = max(0, self.x - 1)
            elif ch >= " " and ch != "\x7f":
                if self.x >= self.cols:  # deferred autowrap
                    self.x = 0
                    self._linefeed()
                self.grid[self.y][self.x] = ch
                self.x += 1
            i += 1

    def _linefeed(self) -> None:
        if self.y == self.rows - 1:
            self.grid.pop(0)
            self.grid.append([" "] * self.cols)
        else:
            self.y += 1

    def _csi(self, params: str, final: str) -> None:
        if params.startswith("?"):
            return  # private modes: cursor visibility and the like
        args = [int(p) if p else 0 for p in params.split(";")] if params else []
        n = max(1, args[0]) if args else 1
        if final == "A":
            self.y = max(0, self.y - n)
        elif final == "B":
            self.y = min(self.rows - 1, self.y + n)
        elif final == "C":
            self.x = min(self.cols - 1, self.x + n)
        elif final == "D":
            self.x = max(0, self.x - n)
        elif final == "G":
            self.x = min(self.cols - 1, n - 1)
        elif final in "Hf":
            row = args[0] if args else 1
            col = args[1] if len(args) > 1 else 1
            self.y = min(self.rows - 1, max(1, row) - 1)
            self.x = min(self.cols - 1, max(1, col) - 1)
        elif final == "K":
            mode = args[0] if args else 0
            line = self.grid[self.y]
            lo, hi = {0: (self.x, self.cols), 1: (0, self.x + 1), 2: (0, self.cols)}[mode]
            line[lo:hi] = [" "] * (min(hi, self.cols) - lo)
        elif final == "J":
            mode = args[0] if args else 0
            if mode == 0:
                self.grid[self.y][self.x :] = [" "] * (self.cols - self.x)
                for row in self.grid[self.y + 1 :]:
                    row[:] = [" "] * self.cols
            elif mode in (2, 3):
                self.grid = [[" "] * self.cols for _ in range(self.rows)]

    def text(self) -> str:
        return "\n".join("".join(row).rstrip() for row in self.grid).strip("\n")


def clean_env(**extra: str) -> dict[str, str]:
    """The shared clean environment, as a terminal that understands colour."""
    return shared_clean_env(**{"TERM": "xterm-256color", **extra})


@dataclass
class TtyRun:
    cwd: Path
    rc: int | None
    raw: str  # everything written to the terminal
    screen: str  # the final screen

    def __repr__(self) -> str:
        return f"exit {self.rc}; final screen:\n{self.screen}"


def spawn(cwd: Path, args: list[str], env: dict[str, str]) -> TtyRun:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "wfctl", *args],
        cwd=str(cwd),
        env=env,
        dimensions=(ROWS, COLS),
        encoding="utf-8",
        codec_errors="replace",
        timeout=RUN_TIMEOUT,
    )
    try:
        child.expect(pexpect.EOF)
        raw = child.before
    finally:
        child.close(force=True)
    screen = Screen(ROWS, COLS)
    screen.feed(raw)
    return TtyRun(cwd, child.exitstatus, raw, screen.text())


TTY_SCENARIOS: dict[str, tuple[str, list[str], dict[str, str]]] = {
    "release": ("release.yaml", ["--approve", "approve", "--report", "r.json"], {}),
    "no_color": ("release.yaml", ["--approve", "approve"], {"NO_COLOR": "1"}),
    "ci": ("release.yaml", ["--approve", "approve"], {"CI": "true"}),
    "dumb": ("release.yaml", ["--approve", "approve"], {"TERM": "dumb"}),
    "failed": ("fail.yaml", [], {}),
    "sla": ("sla.yaml", [], {}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TtyRun]:
    base = tmp_path_factory.mktemp("tty")
    results: dict[str, TtyRun] = {}
    errors: list[BaseException] = []

    def one(name: str, workflow: str, extra: list[str], env: dict[str, str]) -> None:
        cwd = base / name
        cwd.mkdir()
        src = DATA / workflow if (DATA / workflow).exists() else EXAMPLES / workflow
        shutil.copy(src, cwd / workflow)
        try:
            results[name] = spawn(cwd, ["run", workflow, *extra], clean_env(**env))
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    threads = [
        threading.Thread(target=one, args=(name, *spec)) for name, spec in TTY_SCENARIOS.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN_TIMEOUT + 10)
    if errors:
        raise errors[0]
    return results


def step_rows(screen: str) -> dict[str, list[tuple[str, str]]]:
    """step id -> [(glyph, status)] for every table row on the screen."""
    rows: dict[str, list[tuple[str, str]]] = {}
    for m in re.finditer(
        r"^(\S) +(\S+) +(completed|skipped|failed|running|pending|waiting)\b", screen, re.M
    ):
        rows.setdefault(m[2], []).append((m[1], m[3]))
    return rows


def test_live_table_final_screen_shows_every_step(runs: dict[str, TtyRun]) -> None:
    run = runs["release"]
    assert run.rc == 0, run
    screen = run.screen
    header = screen.splitlines()[0]
    assert header.startswith("Release pipeline"), run
    assert re.search(r"run \d{8}T\d{6}Z-\w+", header) and "completed" in header, run
    assert re.search(r"10/10 done \(100%\)", screen), run
    rows = step_rows(screen)
    for step, glyph in RELEASE_STEPS.items():
        assert rows.get(step) == [(glyph, STATUS_OF[glyph])], f"{step}:\n{run}"
    assert re.search(r"^✔ 8 completed +⤼ 2 skipped", screen, re.M), run
    assert re.search(r"^completed: 8 completed, 2 skipped in [\d.]+s$", screen, re.M), run
    assert screen.rstrip().endswith("report: r.json"), run
    assert "\x1b[" in run.raw, "a terminal should get the live table, not plain lines"
    # nested steps are indented under their parallel container
    assert re.search(r"^✔ {3}unit\b", screen, re.M), run


def test_live_table_shows_a_failure(runs: dict[str, TtyRun]) -> None:
    run = runs["failed"]
    assert run.rc == 1, run
    rows = step_rows(run.screen)
    assert rows["ok"] == [("✔", "completed")]
    assert rows["boom"] == [("✘", "failed")]
    assert rows["after"] == [("⤼", "skipped")]
    assert re.search(r"^✘ +boom +failed .*boom on purpose", run.screen, re.M), run
    assert "failed: 1 completed, 1 failed, 1 skipped" in run.screen


def test_live_table_shows_the_sla_alert_once(runs: dict[str, TtyRun]) -> None:
    run = runs["sla"]
    assert run.rc == 0, run
    alerts = [ln for ln in run.screen.splitlines() if "SLA ALERT" in ln]
    assert len(alerts) == 1 and "slow" in alerts[0], run
    assert step_rows(run.screen)["slow"] == [("✔", "completed")]


def test_no_color_on_a_terminal_has_no_colours(runs: dict[str, TtyRun]) -> None:
    run = runs["no_color"]
    assert run.rc == 0, run
    colours = set()
    for m in SGR.finditer(run.raw):
        codes = [int(c) for c in m[1].split(";") if c]
        colours |= {c for c in codes if 30 <= c <= 49 or 90 <= c <= 107}
    assert not colours, f"NO_COLOR set but colour codes {sorted(colours)} were written"
    rows = step_rows(run.screen)
    for step, glyph in RELEASE_STEPS.items():
        assert rows.get(step) == [(glyph, STATUS_OF[glyph])], f"{step}:\n{run}"


def test_ci_on_a_terminal_prints_plain_lines(runs: dict[str, TtyRun]) -> None:
    run = runs["ci"]
    assert run.rc == 0, run
    assert not ANSI.search(run.raw), "CI set: no control codes even on a terminal"
    lines = [ln for ln in run.raw.replace("\r\n", "\n").splitlines() if ln.strip()]
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} run \S+ started: Release pipeline", lines[0])
    for step, glyph in RELEASE_STEPS.items():
        assert re.search(rf"^\S+ {glyph} {step} {STATUS_OF[glyph]}", run.raw, re.M), step


def test_a_dumb_terminal_gets_plain_lines_not_a_blank_screen(runs: dict[str, TtyRun]) -> None:
    run = runs["dumb"]
    assert run.rc == 0, run
    assert not ANSI.search(run.raw), "TERM=dumb cannot draw a table or colours"
    for step, glyph in RELEASE_STEPS.items():
        assert re.search(rf"^\S+ {glyph} {step} {STATUS_OF[glyph]}", run.raw, re.M), step


def test_same_run_in_a_pipe_prints_plain_lines(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "release.yaml", tmp_path / "release.yaml")
    env = clean_env()
    env.pop("TERM")
    proc = subprocess.run(
        [sys.executable, "-m", "wfctl", "run", "release.yaml", "--approve", "approve"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not ANSI.search(proc.stdout) and not ANSI.search(proc.stderr)
    body = proc.stdout.splitlines()
    for step, glyph in RELEASE_STEPS.items():
        finals = [ln for ln in body if re.search(rf" [✔⤼✘] {step} ", ln)]
        assert len(finals) == 1, f"{step}: {finals}"
        assert re.match(rf"^\d\d:\d\d:\d\d\.\d{{3}} {glyph} {step} {STATUS_OF[glyph]}", finals[0])
    assert re.search(r"^completed: 8 completed, 2 skipped", proc.stdout, re.M)


def test_screen_emulator_replays_redraws() -> None:
    """The emulator itself: a frame redrawn in place leaves only the last one."""
    screen = Screen(5, 20)
    screen.feed("\x1b[?25lhead\r\n\x1b[32mrow 1\x1b[0m\r\x1b[2K\x1b[1A\x1b[2Khead 2\r\nrow B")
    screen.feed("\x1b[?25h\r\ndone\r\n")
    assert screen.text() == "head 2\nrow B\ndone"
    wrap = Screen(3, 4)
    wrap.feed("abcd\r\nef")
    assert wrap.text() == "abcd\nef"
