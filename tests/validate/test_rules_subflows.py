"""`wfctl validate` on sub-workflow calls: each misuse at the right file:line, exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cli_helpers import cli

DATA = Path(__file__).parents[1] / "data" / "subflow"


def test_every_misuse_of_a_call_is_reported_at_its_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(DATA, tmp_path, dirs_exist_ok=True)
    res = cli(["validate", "bad/a.yaml"], tmp_path)
    assert res.returncode == 2, res.stdout
    out = res.stdout + res.stderr
    assert "Traceback" not in out
    expected = [
        "bad/a.yaml:7:11 steps[1].uses: sub-workflow file 'bad/nope.yaml' does not exist "
        "(subflow-not-found)",
        "bad/a.yaml:11:15 steps[2].with.target: input 'target' = 3: 3 is not of type 'string' "
        "(subflow-input)",
        "bad/a.yaml:12:7 steps[2].with.colour: unknown input 'colour' of the sub-workflow "
        "(its inputs: replicas, target) (subflow-input)",
        "bad/a.yaml:13:5 steps[3].with: missing required input 'target' of the sub-workflow "
        "(subflow-input)",
        "bad/a.yaml:16:11 steps[4].uses: sub-workflow 'bad/broken.yaml' has 1 problem(s)",
        # The child's own problem, at the child's own line.
        "bad/broken.yaml:6:30 steps[0].with.command: expression refers to unknown step "
        "'nothere' (unknown-step)",
        "bad/b.yaml:5:11 steps[0].uses: sub-workflow cycle: bad/a.yaml -> bad/b.yaml -> "
        "bad/a.yaml (subflow-cycle)",
    ]
    for line in expected:
        assert line in out, (line, out)


def test_valid_calls_recursion_included_pass(tmp_path: Path) -> None:
    shutil.copytree(DATA, tmp_path, dirs_exist_ok=True)
    res = cli(["validate", "release.yaml", "matrix.yaml", "recurse.yaml"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_called_file_also_listed_has_its_problems_once_under_its_own_name(
    tmp_path: Path,
) -> None:
    shutil.copytree(DATA, tmp_path, dirs_exist_ok=True)
    res = cli(["validate", "bad/a.yaml", "bad/broken.yaml", "-f", "json"], tmp_path)
    assert res.returncode == 2, res.stdout
    files = {f["file"]: f["diagnostics"] for f in json.loads(res.stdout)["files"]}
    where = [(f, d["file"], d["line"], d["code"]) for f, ds in files.items() for d in ds]
    # broken.yaml's problem: once, in broken.yaml's own entry (a.yaml keeps its call's).
    assert [w for w in where if w[1] == "bad/broken.yaml"] == [
        ("bad/broken.yaml", "bad/broken.yaml", 6, "unknown-step")
    ]
    assert ("bad/a.yaml", "bad/a.yaml", 16, "subflow-invalid") in where
    # A directory: the same, and both ends of the a <-> b cycle are still reported.
    text = cli(["validate", "bad"], tmp_path).stdout
    assert text.count("bad/broken.yaml:6:30") == 1, text
    assert "bad/b.yaml:5:11 steps[0].uses: sub-workflow cycle" in text
    assert "bad/a.yaml:5:11 steps[0].uses: sub-workflow cycle" in text
